// Files and directories the tests make under the temporary directory. A
// test binary whose run passes removes them at exit; after a failure they
// stay for a look (and LOYALTY_KEEP_SCRATCH=1 keeps them always).
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace loyalty::test {

struct Scratch {
  std::mutex mutex;
  std::vector<std::filesystem::path> paths;
};

inline Scratch& scratch() {
  static Scratch s;
  return s;
}

// `path` goes when the run passes; for an SQLite file, its -wal, -shm and
// -journal files too.
inline const std::filesystem::path& remove_after_run(const std::filesystem::path& path) {
  std::lock_guard lock(scratch().mutex);
  scratch().paths.push_back(path);
  return path;
}

inline void remove_scratch() {
  std::lock_guard lock(scratch().mutex);
  for (const auto& p : scratch().paths) {
    std::error_code ec;
    std::filesystem::remove_all(p, ec);
    for (const char* suffix : {"-wal", "-shm", "-journal"})
      std::filesystem::remove(p.string() + suffix, ec);
  }
  scratch().paths.clear();
}

}  // namespace loyalty::test
