// A fault-injecting SQLite VFS for the deterministic simulation: it wraps
// the default VFS and asks a decider, before every write, truncate and sync
// of a database, its WAL or its rollback journal (not temporary files),
// whether that call fails and how:
// a full disk (SQLITE_FULL) or an I/O error (SQLITE_IOERR_WRITE,
// SQLITE_IOERR_FSYNC). The decider draws from the simulation's seeded
// generator, so the same seed fails the same calls.
//
// While a FaultVfs lives it is SQLite's default VFS for the whole process
// (every connection opened meanwhile goes through it); at destruction the
// previous default is restored. One at a time.
#pragma once

#include <sqlite3.h>

#include <cstring>
#include <functional>
#include <stdexcept>

namespace loyalty::test {

enum class IoCall { kWrite, kTruncate, kSync };

class FaultVfs {
 public:
  // Returns SQLITE_OK to let the call through, or the error to report.
  using Decider = std::function<int(IoCall)>;

  explicit FaultVfs(Decider decide) : decide_(std::move(decide)) {
    real_ = sqlite3_vfs_find(nullptr);
    if (real_ == nullptr || self_ != nullptr) throw std::logic_error("FaultVfs: no default VFS");
    self_ = this;
    std::memset(&vfs_, 0, sizeof vfs_);
    vfs_.iVersion = 2;
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.mxPathname = real_->mxPathname;
    vfs_.zName = "loyalty-sim-faults";
    vfs_.xOpen = &open;
    vfs_.xDelete = [](sqlite3_vfs*, const char* n, int sync) {
      return real()->xDelete(real(), n, sync);
    };
    vfs_.xAccess = [](sqlite3_vfs*, const char* n, int f, int* out) {
      return real()->xAccess(real(), n, f, out);
    };
    vfs_.xFullPathname = [](sqlite3_vfs*, const char* n, int size, char* out) {
      return real()->xFullPathname(real(), n, size, out);
    };
    vfs_.xDlOpen = [](sqlite3_vfs*, const char* n) { return real()->xDlOpen(real(), n); };
    vfs_.xDlError = [](sqlite3_vfs*, int n, char* msg) { real()->xDlError(real(), n, msg); };
    vfs_.xDlSym = [](sqlite3_vfs*, void* h, const char* s) { return real()->xDlSym(real(), h, s); };
    vfs_.xDlClose = [](sqlite3_vfs*, void* h) { real()->xDlClose(real(), h); };
    vfs_.xRandomness = [](sqlite3_vfs*, int n, char* out) {
      return real()->xRandomness(real(), n, out);
    };
    vfs_.xSleep = [](sqlite3_vfs*, int us) { return real()->xSleep(real(), us); };
    vfs_.xCurrentTime = [](sqlite3_vfs*, double* t) { return real()->xCurrentTime(real(), t); };
    vfs_.xGetLastError = [](sqlite3_vfs*, int n, char* msg) {
      return real()->xGetLastError(real(), n, msg);
    };
    vfs_.xCurrentTimeInt64 = [](sqlite3_vfs*, sqlite3_int64* t) {
      return real()->xCurrentTimeInt64(real(), t);
    };
    if (sqlite3_vfs_register(&vfs_, 1) != SQLITE_OK) throw std::runtime_error("FaultVfs: register");
  }
  ~FaultVfs() {
    sqlite3_vfs_unregister(&vfs_);
    sqlite3_vfs_register(real_, 1);
    self_ = nullptr;
  }
  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  long injected() const { return injected_; }

 private:
  struct File {
    sqlite3_file base;
    sqlite3_file* real;
    bool durable;  // a database, WAL or journal: the files a commit must reach
  };

  static inline FaultVfs* self_ = nullptr;
  static sqlite3_vfs* real() { return self_->real_; }
  static sqlite3_file* inner(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }
  static int fault(sqlite3_file* f, IoCall call) {
    if (!reinterpret_cast<File*>(f)->durable) return SQLITE_OK;
    const int rc = self_->decide_(call);
    if (rc != SQLITE_OK) ++self_->injected_;
    return rc;
  }

  static int open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
    auto* file = reinterpret_cast<File*>(f);
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->durable =
        (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) != 0;
    const int rc = real()->xOpen(real(), name, file->real, flags, out);
    file->base.pMethods = file->real->pMethods != nullptr ? &kMethods : nullptr;
    return rc;
  }

  static constexpr sqlite3_io_methods kMethods = {
      3,
      [](sqlite3_file* f) { return inner(f)->pMethods->xClose(inner(f)); },
      [](sqlite3_file* f, void* buf, int n, sqlite3_int64 at) {
        return inner(f)->pMethods->xRead(inner(f), buf, n, at);
      },
      [](sqlite3_file* f, const void* buf, int n, sqlite3_int64 at) {
        if (int rc = fault(f, IoCall::kWrite); rc != SQLITE_OK) return rc;
        return inner(f)->pMethods->xWrite(inner(f), buf, n, at);
      },
      [](sqlite3_file* f, sqlite3_int64 size) {
        if (int rc = fault(f, IoCall::kTruncate); rc != SQLITE_OK) return rc;
        return inner(f)->pMethods->xTruncate(inner(f), size);
      },
      [](sqlite3_file* f, int flags) {
        if (int rc = fault(f, IoCall::kSync); rc != SQLITE_OK) return rc;
        return inner(f)->pMethods->xSync(inner(f), flags);
      },
      [](sqlite3_file* f, sqlite3_int64* size) {
        return inner(f)->pMethods->xFileSize(inner(f), size);
      },
      [](sqlite3_file* f, int lock) { return inner(f)->pMethods->xLock(inner(f), lock); },
      [](sqlite3_file* f, int lock) { return inner(f)->pMethods->xUnlock(inner(f), lock); },
      [](sqlite3_file* f, int* out) {
        return inner(f)->pMethods->xCheckReservedLock(inner(f), out);
      },
      [](sqlite3_file* f, int op, void* arg) {
        return inner(f)->pMethods->xFileControl(inner(f), op, arg);
      },
      [](sqlite3_file* f) { return inner(f)->pMethods->xSectorSize(inner(f)); },
      [](sqlite3_file* f) { return inner(f)->pMethods->xDeviceCharacteristics(inner(f)); },
      [](sqlite3_file* f, int page, int size, int extend, void volatile** out) {
        return inner(f)->pMethods->xShmMap(inner(f), page, size, extend, out);
      },
      [](sqlite3_file* f, int offset, int n, int flags) {
        return inner(f)->pMethods->xShmLock(inner(f), offset, n, flags);
      },
      [](sqlite3_file* f) { inner(f)->pMethods->xShmBarrier(inner(f)); },
      [](sqlite3_file* f, int del) { return inner(f)->pMethods->xShmUnmap(inner(f), del); },
      [](sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
        return inner(f)->pMethods->xFetch(inner(f), at, n, out);
      },
      [](sqlite3_file* f, sqlite3_int64 at, void* p) {
        return inner(f)->pMethods->xUnfetch(inner(f), at, p);
      },
  };

  Decider decide_;
  sqlite3_vfs* real_ = nullptr;
  sqlite3_vfs vfs_{};
  long injected_ = 0;
};

}  // namespace loyalty::test
