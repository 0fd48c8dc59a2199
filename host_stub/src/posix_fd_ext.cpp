// ext/posix_fd.h on top of FdWatches.
#include "extensions.hpp"
#include "fd_watches.hpp"
#include "plugin_host_table.hpp"

namespace hdp::host {
namespace {

hdp_status_t register_fd(const hdp_host_t* host, int fd, uint32_t flags, hdp_fd_callback_t callback, void* user_data) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_register("register_fd"); s != HDP_OK) return s;
  if (callback == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  return context->services().fds.add(context->owner(), fd, flags, [callback, user_data](int ready_fd, uint32_t ready) {
    callback(user_data, ready_fd, ready);
  });
}

hdp_status_t modify_fd(const hdp_host_t* host, int fd, uint32_t flags) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_use("modify_fd"); s != HDP_OK) return s;
  return context->services().fds.modify(context->owner(), fd, flags);
}

hdp_status_t unregister_fd(const hdp_host_t* host, int fd) {
  PluginContext* context = PluginContext::from(host);
  if (context == nullptr) return HDP_ERR_INVALID_ARGUMENT;
  if (const hdp_status_t s = context->check_may_use("unregister_fd"); s != HDP_OK) return s;
  return context->services().fds.remove(context->owner(), fd);
}

const hdp_host_posix_fd_t kPosixFd = {
    sizeof(hdp_host_posix_fd_t),
    register_fd,
    modify_fd,
    unregister_fd,
};

}  // namespace

const hdp_host_posix_fd_t* posix_fd_extension() {
  return &kPosixFd;
}

}  // namespace hdp::host
