// What a SQLite database in WAL mode looks like on disk, for the tests of its checkpoints (the
// plugin's store and the stub host's, both through sqlite_wal): the file's size, the frames its
// WAL holds, and a wait for the file to grow. Header only. Assumes 4 KiB pages.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <system_error>
#include <thread>

namespace testsupport {

inline constexpr std::uintmax_t kSqlitePage = 4096;

// The size of path, or 0 when it does not exist.
inline std::uintmax_t file_size_or_zero(const std::filesystem::path& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// The frames the WAL of database holds (its header is 32 bytes, each frame's 24).
inline std::uintmax_t wal_frames(const std::filesystem::path& database) {
  const std::uintmax_t size = file_size_or_zero(database.string() + "-wal");
  return size <= 32 ? 0 : (size - 32) / (kSqlitePage + 24);
}

// Polls until database is larger than `than` bytes, or `within` passes.
inline bool file_grows_past(const std::filesystem::path& database, std::uintmax_t than, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (file_size_or_zero(database) > than) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace testsupport
