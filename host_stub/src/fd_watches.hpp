// Level-triggered watches of file descriptors that belong to someone else (a plugin), on the
// main loop. Waits with asio::posix::stream_descriptor::async_wait; after every callback the fd
// is polled (poll(2), no timeout) and, while it is still ready for the interest, the callback
// runs again on the next loop turn. The descriptor is release()d, never closed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <hdp/ext/posix_fd.h>
#include <hdp/status.h>

namespace hdp::host {

class FdWatches {
 public:
  // flags: the HDP_FD_* that are ready now.
  using Callback = std::function<void(int fd, uint32_t flags)>;

  explicit FdWatches(boost::asio::io_context& io);
  FdWatches(const FdWatches&) = delete;
  FdWatches& operator=(const FdWatches&) = delete;
  ~FdWatches();

  // HDP_ERR_ALREADY_EXISTS when fd is watched already (by anyone: one epoll registration per
  // fd), HDP_ERR_INVALID_ARGUMENT for a negative fd or unknown flag bits. [main-thread]
  hdp_status_t add(uint64_t owner, int fd, uint32_t flags, Callback callback);
  // HDP_ERR_NOT_FOUND when owner does not watch fd. [main-thread]
  hdp_status_t modify(uint64_t owner, int fd, uint32_t flags);
  hdp_status_t remove(uint64_t owner, int fd);
  void remove_owner(uint64_t owner);
  void remove_all();

  size_t count() const { return watches_.size(); }
  size_t count(uint64_t owner) const;

  // The HDP_FD_* flags of fd that are ready now for interest (HDP_FD_ERROR always reported).
  static uint32_t poll_ready(int fd, uint32_t interest);

 private:
  struct Watch {
    explicit Watch(boost::asio::io_context& io) : descriptor(io) {}
    uint64_t owner = 0;
    uint64_t serial = 0;      // tells this watch from a later one on the same fd number
    uint64_t generation = 0;  // bumped on every re-arm; older completions are ignored
    uint32_t interest = 0;
    Callback callback;
    boost::asio::posix::stream_descriptor descriptor;
  };

  void arm(Watch& watch);
  void on_ready(int fd, uint64_t serial, uint64_t generation);
  void release(Watch& watch);

  boost::asio::io_context& io_;
  std::map<int, std::unique_ptr<Watch>> watches_;
  uint64_t next_serial_ = 1;
  // Handlers check this before touching the object.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace hdp::host
