// The SQL the HQ ledger needs, over either backend: the embedded SQLite file
// (the default) or PostgreSQL (production). Statements use ?1, ?2 ...
// placeholders; the PostgreSQL connection rewrites them to $1, $2. Values
// travel as text or integers only, so both backends see the same data.
//
// Failures throw SqlError; hq code catches it at its boundary and answers
// with a core::Error (kUnavailable), rolling back the transaction.
//
// Thread-safety: a connection belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "platform/log.h"

namespace loyalty::hq {

class SqlError : public std::runtime_error {
 public:
  SqlError(std::string what, bool unique_violation = false)
      : std::runtime_error(std::move(what)), unique_(unique_violation) {}
  bool unique_violation() const { return unique_; }

 private:
  bool unique_;
};

using SqlParam = std::variant<std::nullptr_t, std::int64_t, std::string>;
using SqlParams = std::vector<SqlParam>;

struct SqlRow {
  std::vector<std::optional<std::string>> cols;
  const std::string& text(std::size_t i) const;  // "" for NULL
  std::int64_t integer(std::size_t i) const;     // 0 for NULL
  bool is_null(std::size_t i) const { return !cols.at(i).has_value(); }
};

class SqlConn {
 public:
  virtual ~SqlConn() = default;
  virtual std::vector<SqlRow> query(std::string_view sql, const SqlParams& params = {}) = 0;
  // Returns the number of rows changed.
  virtual std::int64_t exec(std::string_view sql, const SqlParams& params = {}) = 0;
  // A write whose answer the caller does not read. A backend may send it
  // without waiting (PostgreSQL's pipeline); its error then surfaces at the
  // next statement or at commit, and the transaction rolls back as usual.
  virtual void defer(std::string_view sql, const SqlParams& params = {}) { exec(sql, params); }
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;
  virtual std::string backend() const = 0;  // "sqlite" or "postgres"
  // DDL differs a little between the two (autoincrement keys).
  virtual std::string autoincrement_key() const = 0;
  // in_transaction()s open on this connection (more than one when nested).
  int transaction_depth = 0;
};

// "sqlite:PATH" or "postgres:CONNINFO" (libpq key=value or URI).
[[nodiscard]] core::Result<std::unique_ptr<SqlConn>> open_sql(const std::string& target);

// Runs `f` in a transaction; commits when it returns a value, rolls back on
// an error or an SqlError (which becomes kUnavailable). Called inside
// another, `f` joins the outer transaction: it commits or rolls back with
// it (an idempotent admin write stores its answer with what it wrote).
template <typename F>
auto in_transaction(SqlConn& db, F&& f) -> decltype(f()) {
  struct Depth {
    SqlConn& db;
    explicit Depth(SqlConn& c) : db(c) { ++db.transaction_depth; }
    ~Depth() { --db.transaction_depth; }
  };
  if (db.transaction_depth > 0) {
    Depth nested(db);
    return f();  // an error or exception rolls the outer one back
  }
  try {
    Depth depth(db);
    db.begin();
    auto r = f();
    if (r) {
      db.commit();
    } else {
      db.rollback();
    }
    return r;
  } catch (const SqlError& e) {
    try {
      db.rollback();
    } catch (const SqlError&) {
    }
    return core::fail(core::ErrorCode::kUnavailable, std::string("HQ database: ") + e.what());
  } catch (const core::DataLoss& e) {
    platform::fail_stop(e.what());
  } catch (const std::exception& e) {
    // A bug or input nobody validated: nothing of it may stay half-written.
    try {
      db.rollback();
    } catch (const SqlError&) {
    }
    return core::fail(core::ErrorCode::kInternal, std::string("rolled back: ") + e.what());
  }
}

}  // namespace loyalty::hq
