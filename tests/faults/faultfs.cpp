// A fault-injecting layer under SQLite for tests of the real binaries,
// loaded with LD_PRELOAD (the binary is not changed): it wraps the libc
// calls SQLite writes and syncs through, and fails them for files whose path
// contains LOYALTY_FAULT_MATCH while the file named by LOYALTY_FAULT_CONTROL
// says so:
//   "full"  writes fail with ENOSPC (a full disk);
//   "eio"   writes and syncs fail with EIO (a failing disk);
//   "sync"  only fsync/fdatasync fail with EIO (a lost flush);
//   anything else, or no file: no fault.
// Every injected fault is counted in LOYALTY_FAULT_CONTROL + ".count".
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

enum class Mode { kNone, kFull, kEio, kSync };

std::atomic<long> injected{0};

Mode mode() {
  const char* control = std::getenv("LOYALTY_FAULT_CONTROL");
  if (control == nullptr) return Mode::kNone;
  char buf[16] = {};
  FILE* f = std::fopen(control, "r");
  if (f == nullptr) return Mode::kNone;
  const auto n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  if (std::strncmp(buf, "full", 4) == 0) return Mode::kFull;
  if (std::strncmp(buf, "eio", 3) == 0) return Mode::kEio;
  if (std::strncmp(buf, "sync", 4) == 0) return Mode::kSync;
  return Mode::kNone;
}

bool matches(int fd) {
  const char* match = std::getenv("LOYALTY_FAULT_MATCH");
  if (match == nullptr || *match == '\0') return false;
  char link[64], path[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const auto n = ::readlink(link, path, sizeof path - 1);
  if (n <= 0) return false;
  path[n] = '\0';
  return std::strstr(path, match) != nullptr;
}

void count() {
  const long total = ++injected;
  const char* control = std::getenv("LOYALTY_FAULT_CONTROL");
  char name[PATH_MAX];
  std::snprintf(name, sizeof name, "%s.count", control);
  if (FILE* f = std::fopen(name, "w")) {
    std::fprintf(f, "%ld\n", total);
    std::fclose(f);
  }
}

// The fault for a write (`sync` false) or a sync on `fd`, as an errno; 0
// for none.
int fault_for(int fd, bool sync) {
  const Mode m = mode();
  if (m == Mode::kNone || !matches(fd)) return 0;
  int err = 0;
  if (m == Mode::kFull && !sync) err = ENOSPC;
  if (m == Mode::kEio) err = EIO;
  if (m == Mode::kSync && sync) err = EIO;
  if (err != 0) count();
  return err;
}

template <typename F>
F next(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  if (const int e = fault_for(fd, false)) {
    errno = e;
    return -1;
  }
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  static auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  if (const int e = fault_for(fd, false)) {
    errno = e;
    return -1;
  }
  return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  static auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite64");
  if (const int e = fault_for(fd, false)) {
    errno = e;
    return -1;
  }
  return real(fd, buf, n, off);
}

int fsync(int fd) {
  static auto real = next<int (*)(int)>("fsync");
  if (const int e = fault_for(fd, true)) {
    errno = e;
    return -1;
  }
  return real(fd);
}

int fdatasync(int fd) {
  static auto real = next<int (*)(int)>("fdatasync");
  if (const int e = fault_for(fd, true)) {
    errno = e;
    return -1;
  }
  return real(fd);
}

}  // extern "C"
