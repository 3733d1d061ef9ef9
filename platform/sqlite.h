// SQLite RAII wrapper: a connection, prepared statements with bound
// parameters only, IMMEDIATE transactions, and versioned migrations.
//
// Failures of the library (I/O error, full disk, constraint) throw
// SqliteError; callers at a layer boundary turn it into a core::Error. This is
// the one place exceptions carry runtime failures (DESIGN.md: library calls
// wrapped at the boundary).
//
// Thread-safety: a Db and its statements belong to one thread at a time
// (SQLITE_OPEN_NOMUTEX); use one Db per thread or guard it with a mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace loyalty::platform {

class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& what, bool at_commit = false)
      : std::runtime_error(what), code_(code), at_commit_(at_commit) {}
  int code() const { return code_; }
  // Raised by COMMIT: unless the disk was full, the log may already hold
  // the transaction, so its outcome is unknown until the next open.
  bool at_commit() const { return at_commit_; }
  // SQLITE_CONSTRAINT and friends: the statement was refused, not the disk.
  bool is_constraint() const { return (code_ & 0xff) == SQLITE_CONSTRAINT; }

 private:
  int code_;
  bool at_commit_;
};

class Db;

// A prepared statement. Statements are cached per connection: constructing
// the same SQL again reuses the compiled statement, so callers can write
// `Stmt s(db, "...")` on every call without paying for preparation.
class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Parameters are 1-based, as in SQLite.
  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, *v) : bind_null(i); }

  // True while a row is available.
  bool step();
  // Runs to completion; returns the number of rows changed.
  int exec();
  void reset();

  std::int64_t integer(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;
  sqlite3_stmt* handle() const { return stmt_; }

 private:
  Db& db_;
  std::string sql_;
  sqlite3_stmt* stmt_ = nullptr;
};

struct Migration {
  int version;      // PRAGMA user_version after it runs
  const char* sql;  // may hold several statements
};

class Db {
 public:
  // Opens (creating if asked) with WAL, synchronous=FULL, foreign keys on and
  // a busy timeout.
  static core::Result<Db> open(const std::string& path, bool create = true);
  Db(Db&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)), cache_(std::move(other.cache_)) {}
  Db& operator=(Db&&) = delete;
  Db(const Db&) = delete;
  ~Db();

  void exec(std::string_view sql);
  sqlite3* handle() const { return db_; }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
  [[noreturn]] void raise(int rc, std::string_view what) const;

  // Applies the migrations above PRAGMA user_version, each in its own
  // transaction. A file from a newer schema than `migrations` knows is
  // refused: an older binary must not write to it.
  [[nodiscard]] core::Status migrate(std::span<const Migration> migrations);
  int user_version();

 private:
  friend class Stmt;
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3_stmt* take_cached(const std::string& sql);
  void give_back(std::string sql, sqlite3_stmt* stmt);

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> cache_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK unless commit() ran.
class Tx {
 public:
  explicit Tx(Db& db);
  ~Tx();
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace loyalty::platform
