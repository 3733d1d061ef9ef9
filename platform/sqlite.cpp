#include "platform/sqlite.h"

#include <climits>

namespace loyalty::platform {

Stmt::Stmt(Db& db, std::string_view sql) : db_(db), sql_(sql) {
  stmt_ = db_.take_cached(sql_);
  if (stmt_ != nullptr) return;
  const int rc =
      sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) db_.raise(rc, sql);
}

Stmt::~Stmt() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  db_.give_back(std::move(sql_), stmt_);
}

sqlite3_stmt* Db::take_cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end() || it->second.empty()) return nullptr;
  auto* s = it->second.back();
  it->second.pop_back();
  return s;
}

void Db::give_back(std::string sql, sqlite3_stmt* stmt) {
  auto& slot = cache_[std::move(sql)];
  if (slot.size() < 4) {
    slot.push_back(stmt);
  } else {
    sqlite3_finalize(stmt);
  }
}

Stmt& Stmt::bind(int i, std::int64_t v) {
  if (int rc = sqlite3_bind_int64(stmt_, i, v); rc != SQLITE_OK) db_.raise(rc, "bind");
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  if (int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      rc != SQLITE_OK)
    db_.raise(rc, "bind");
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  if (int rc = sqlite3_bind_null(stmt_, i); rc != SQLITE_OK) db_.raise(rc, "bind");
  return *this;
}

bool Stmt::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3_reset(stmt_);
  db_.raise(rc, sqlite3_sql(stmt_));
}

int Stmt::exec() {
  while (step()) {
  }
  const int changed = sqlite3_changes(db_.handle());
  reset();
  return changed;
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Stmt::integer(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

bool Stmt::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

core::Result<Db> Db::open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return core::fail(core::ErrorCode::kUnavailable, "cannot open " + path + ": " + msg);
  }
  Db db(raw);
  sqlite3_extended_result_codes(raw, 1);
  try {
    sqlite3_busy_timeout(raw, 5000);
    Stmt mode(db, "PRAGMA journal_mode=WAL");
    if (!mode.step() || mode.text(0) != "wal")
      return core::fail(core::ErrorCode::kUnavailable, path + ": cannot switch to WAL mode");
    db.exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  } catch (const SqliteError& e) {
    return core::fail(core::ErrorCode::kUnavailable, path + ": " + e.what());
  }
  return db;
}

Db::~Db() {
  for (auto& [sql, stmts] : cache_)
    for (auto* st : stmts) sqlite3_finalize(st);
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

void Db::raise(int rc, std::string_view what) const {
  std::string msg = sqlite3_errmsg(db_);
  if (msg == "not an error" || msg.empty()) msg = sqlite3_errstr(rc);
  throw SqliteError(rc, msg + " (" + std::string(what.substr(0, 80)) + ")");
}

void Db::exec(std::string_view sql) {
  char* err = nullptr;
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(rc, msg);
  }
}

int Db::user_version() {
  Stmt s(*this, "PRAGMA user_version");
  s.step();
  return static_cast<int>(s.integer(0));
}

core::Status Db::migrate(std::span<const Migration> migrations) {
  try {
    const int known = migrations.empty() ? 0 : migrations.back().version;
    const int have = user_version();
    if (have > known)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "the database has schema version " + std::to_string(have) +
                            " but this build knows only up to " + std::to_string(known) +
                            "; it was written by a newer release, install that release");
    for (const auto& m : migrations) {
      if (m.version <= have) continue;
      Tx tx(*this);
      exec(m.sql);
      exec("PRAGMA user_version=" + std::to_string(m.version));
      tx.commit();
    }
  } catch (const SqliteError& e) {
    return core::fail(core::ErrorCode::kUnavailable, std::string("migration failed: ") + e.what());
  }
  return {};
}

Tx::Tx(Db& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

Tx::~Tx() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Tx::commit() {
  try {
    Stmt(db_, "COMMIT").exec();
  } catch (const SqliteError& e) {
    throw SqliteError(e.code(), e.what(), true);
  }
  done_ = true;
}

}  // namespace loyalty::platform
