// A fresh directory under the system temp dir for one test, removed with everything in it.
#pragma once

#include <filesystem>
#include <string>

namespace testsupport {

class TempDir {
 public:
  // <temp dir>/<prefix>-XXXXXX; throws std::runtime_error when it cannot be made.
  explicit TempDir(const std::string& prefix = "hdp-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace testsupport
