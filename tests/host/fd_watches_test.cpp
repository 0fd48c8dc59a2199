// FdWatches: level-triggered callbacks, changes from inside callbacks, and the fd staying open
// (it belongs to the plugin).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include <boost/asio/io_context.hpp>

#include "fd_watches.hpp"

namespace hdp::host {
namespace {

class Pipe {
 public:
  Pipe() {
    EXPECT_EQ(::pipe(fds_), 0);
    ::fcntl(fds_[0], F_SETFL, ::fcntl(fds_[0], F_GETFL) | O_NONBLOCK);
  }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void write(size_t n) const {
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(::write(fds_[1], "x", 1), 1);
  }

 private:
  int fds_[2] = {-1, -1};
};

bool is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

TEST(FdWatches, LevelTriggeredUntilDrained) {
  boost::asio::io_context io;
  FdWatches watches(io);
  Pipe pipe;
  int reads = 0;
  ASSERT_EQ(watches.add(1, pipe.read_end(), HDP_FD_READ,
                        [&](int fd, uint32_t flags) {
                          EXPECT_TRUE(flags & HDP_FD_READ);
                          char byte;
                          if (::read(fd, &byte, 1) == 1) ++reads;  // one byte per callback
                        }),
            HDP_OK);
  pipe.write(3);  // already readable before the first wait: no new edge will come
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reads, 3);
  pipe.write(1);
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reads, 4);
  EXPECT_EQ(watches.remove(1, pipe.read_end()), HDP_OK);
  EXPECT_TRUE(is_open(pipe.read_end()));
}

TEST(FdWatches, DuplicatesUnknownAndOtherOwners) {
  boost::asio::io_context io;
  FdWatches watches(io);
  Pipe pipe;
  auto ignore = [](int, uint32_t) {};
  EXPECT_EQ(watches.add(1, pipe.read_end(), HDP_FD_READ, ignore), HDP_OK);
  EXPECT_EQ(watches.add(1, pipe.read_end(), HDP_FD_READ, ignore), HDP_ERR_ALREADY_EXISTS);
  EXPECT_EQ(watches.add(2, pipe.read_end(), HDP_FD_READ, ignore), HDP_ERR_ALREADY_EXISTS);
  EXPECT_EQ(watches.add(1, -1, HDP_FD_READ, ignore), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(watches.add(1, pipe.write_end(), 1U << 7, ignore), HDP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(watches.modify(2, pipe.read_end(), 0), HDP_ERR_NOT_FOUND);
  EXPECT_EQ(watches.remove(2, pipe.read_end()), HDP_ERR_NOT_FOUND);
  EXPECT_EQ(watches.remove(1, pipe.read_end()), HDP_OK);
  EXPECT_EQ(watches.remove(1, pipe.read_end()), HDP_ERR_NOT_FOUND);
}

TEST(FdWatches, UnregisterFromInsideItsOwnCallback) {
  boost::asio::io_context io;
  FdWatches watches(io);
  Pipe pipe;
  int calls = 0;
  watches.add(1, pipe.read_end(), HDP_FD_READ, [&](int fd, uint32_t) {
    ++calls;
    EXPECT_EQ(watches.remove(1, fd), HDP_OK);  // without reading: still readable
  });
  pipe.write(1);
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(is_open(pipe.read_end()));
}

TEST(FdWatches, PauseWithZeroInterestAndResume) {
  boost::asio::io_context io;
  FdWatches watches(io);
  Pipe pipe;
  int calls = 0;
  watches.add(1, pipe.read_end(), HDP_FD_READ, [&](int fd, uint32_t) {
    ++calls;
    EXPECT_EQ(watches.modify(1, fd, 0), HDP_OK);  // pause from inside
  });
  pipe.write(1);
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(watches.modify(1, pipe.read_end(), HDP_FD_READ), HDP_OK);
  io.restart();  // it ran out of work while paused
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls, 2);
}

TEST(FdWatches, WriteInterestAndCallbacksChangingOtherWatches) {
  boost::asio::io_context io;
  FdWatches watches(io);
  Pipe pipe;
  int writes = 0;
  int reads = 0;
  watches.add(1, pipe.read_end(), HDP_FD_READ, [&](int, uint32_t) { ++reads; });
  watches.add(1, pipe.write_end(), HDP_FD_WRITE, [&](int fd, uint32_t flags) {
    EXPECT_TRUE(flags & HDP_FD_WRITE);
    ++writes;
    EXPECT_EQ(::write(fd, "y", 1), 1);
    // Remove both watches, the other one included, from inside this callback.
    EXPECT_EQ(watches.remove(1, pipe.read_end()), HDP_OK);
    EXPECT_EQ(watches.remove(1, fd), HDP_OK);
  });
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(reads, 0);
  EXPECT_EQ(watches.count(), 0U);
}

TEST(FdWatches, HangUpIsReportedAsReadable) {
  boost::asio::io_context io;
  FdWatches watches(io);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  uint32_t seen = 0;
  watches.add(1, fds[0], HDP_FD_READ, [&](int fd, uint32_t flags) {
    seen = flags;
    watches.remove(1, fd);
  });
  ::close(fds[1]);
  io.run_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(seen & HDP_FD_READ);
  ::close(fds[0]);
}

TEST(FdWatches, RemoveOwnerReleasesWithoutClosing) {
  boost::asio::io_context io;
  Pipe pipe;
  {
    FdWatches watches(io);
    watches.add(3, pipe.read_end(), HDP_FD_READ, [](int, uint32_t) {});
    watches.add(3, pipe.write_end(), HDP_FD_WRITE, [](int, uint32_t) {});
    watches.remove_owner(3);
    EXPECT_EQ(watches.count(), 0U);
    watches.add(4, pipe.read_end(), HDP_FD_READ, [](int, uint32_t) {});
  }  // destroyed with a watch still registered
  io.run_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(is_open(pipe.read_end()));
  EXPECT_TRUE(is_open(pipe.write_end()));
}

}  // namespace
}  // namespace hdp::host
