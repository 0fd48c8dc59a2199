#include "fd_watches.hpp"

#include <poll.h>

#include <utility>
#include <vector>

#include <boost/asio/post.hpp>

namespace hdp::host {
namespace {

constexpr uint32_t kAllFlags = HDP_FD_READ | HDP_FD_WRITE | HDP_FD_ERROR;

}  // namespace

FdWatches::FdWatches(boost::asio::io_context& io) : io_(io) {}

FdWatches::~FdWatches() {
  *alive_ = false;
  remove_all();
}

uint32_t FdWatches::poll_ready(int fd, uint32_t interest) {
  pollfd p{};
  p.fd = fd;
  if ((interest & HDP_FD_READ) != 0) p.events |= POLLIN;
  if ((interest & HDP_FD_WRITE) != 0) p.events |= POLLOUT;
  if (::poll(&p, 1, 0) <= 0) return 0;
  uint32_t flags = 0;
  if ((p.revents & POLLIN) != 0 && (interest & HDP_FD_READ) != 0) flags |= HDP_FD_READ;
  if ((p.revents & POLLOUT) != 0 && (interest & HDP_FD_WRITE) != 0) flags |= HDP_FD_WRITE;
  // A hang-up is readable (the reader sees end of file); without read interest it is an error.
  if ((p.revents & POLLHUP) != 0) flags |= (interest & HDP_FD_READ) != 0 ? HDP_FD_READ : HDP_FD_ERROR;
  if ((p.revents & (POLLERR | POLLNVAL)) != 0) flags |= HDP_FD_ERROR;
  return flags;
}

hdp_status_t FdWatches::add(uint64_t owner, int fd, uint32_t flags, Callback callback) {
  if (fd < 0 || (flags & ~kAllFlags) != 0 || !callback) return HDP_ERR_INVALID_ARGUMENT;
  if (watches_.contains(fd)) return HDP_ERR_ALREADY_EXISTS;
  auto watch = std::make_unique<Watch>(io_);
  boost::system::error_code ec;
  watch->descriptor.assign(fd, ec);
  if (ec) return HDP_ERR_INVALID_ARGUMENT;
  watch->owner = owner;
  watch->serial = next_serial_++;
  watch->interest = flags;
  watch->callback = std::move(callback);
  Watch& ref = *watch;
  watches_.emplace(fd, std::move(watch));
  arm(ref);
  return HDP_OK;
}

hdp_status_t FdWatches::modify(uint64_t owner, int fd, uint32_t flags) {
  if ((flags & ~kAllFlags) != 0) return HDP_ERR_INVALID_ARGUMENT;
  const auto it = watches_.find(fd);
  if (it == watches_.end() || it->second->owner != owner) return HDP_ERR_NOT_FOUND;
  Watch& watch = *it->second;
  watch.interest = flags;
  arm(watch);
  return HDP_OK;
}

hdp_status_t FdWatches::remove(uint64_t owner, int fd) {
  const auto it = watches_.find(fd);
  if (it == watches_.end() || it->second->owner != owner) return HDP_ERR_NOT_FOUND;
  release(*it->second);
  watches_.erase(it);
  return HDP_OK;
}

void FdWatches::remove_owner(uint64_t owner) {
  std::vector<int> fds;
  for (const auto& [fd, watch] : watches_) {
    if (watch->owner == owner) fds.push_back(fd);
  }
  for (const int fd : fds) remove(owner, fd);
}

void FdWatches::remove_all() {
  for (auto& [fd, watch] : watches_) release(*watch);
  watches_.clear();
}

size_t FdWatches::count(uint64_t owner) const {
  size_t n = 0;
  for (const auto& [fd, watch] : watches_) n += watch->owner == owner ? 1 : 0;
  return n;
}

void FdWatches::release(Watch& watch) {
  // release() deregisters from epoll and aborts pending waits, and leaves the fd open: it is
  // the plugin's. (Destroying an open descriptor would close it.)
  ++watch.generation;
  boost::system::error_code ignored;
  watch.descriptor.cancel(ignored);
  (void)watch.descriptor.release();
}

void FdWatches::arm(Watch& watch) {
  const uint64_t generation = ++watch.generation;
  // Waits of the previous arming would complete later with a stale generation; abort them now
  // so they do not pile up.
  boost::system::error_code ignored;
  watch.descriptor.cancel(ignored);
  if (watch.interest == 0) return;

  const int fd = watch.descriptor.native_handle();
  auto handler = [this, alive = std::weak_ptr<bool>(alive_), fd, serial = watch.serial,
                  generation](const boost::system::error_code& ec) {
    if (alive.expired() || ec == boost::asio::error::operation_aborted) return;
    on_ready(fd, serial, generation);
  };
  // epoll in asio is edge-triggered: readiness that is already there gives no new edge, so ask
  // poll(2) first and go round the loop while the fd stays ready.
  if (poll_ready(fd, watch.interest) != 0) {
    boost::asio::post(io_, [handler] { handler(boost::system::error_code{}); });
    return;
  }
  using boost::asio::posix::descriptor_base;
  if ((watch.interest & HDP_FD_READ) != 0) watch.descriptor.async_wait(descriptor_base::wait_read, handler);
  if ((watch.interest & HDP_FD_WRITE) != 0) watch.descriptor.async_wait(descriptor_base::wait_write, handler);
  if ((watch.interest & (HDP_FD_READ | HDP_FD_WRITE)) == 0) {
    watch.descriptor.async_wait(descriptor_base::wait_error, handler);
  }
}

void FdWatches::on_ready(int fd, uint64_t serial, uint64_t generation) {
  auto it = watches_.find(fd);
  if (it == watches_.end() || it->second->serial != serial || it->second->generation != generation) return;
  Watch& watch = *it->second;
  const uint32_t flags = poll_ready(fd, watch.interest);
  if (flags == 0) {  // woken but no longer ready: wait again
    arm(watch);
    return;
  }
  // Invalidate the other waits of this arming before the callback, which may modify or remove
  // this or any watch.
  ++watch.generation;
  const Callback callback = watch.callback;
  callback(fd, flags);
  it = watches_.find(fd);
  if (it != watches_.end() && it->second->serial == serial) arm(*it->second);
}

}  // namespace hdp::host
