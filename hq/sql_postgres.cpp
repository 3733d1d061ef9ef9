// SqlConn over PostgreSQL (libpq). Parameters go out as text, to prepared
// statements (PQprepare, PQexecPrepared), never spliced into the SQL.
#include <libpq-fe.h>

#include <cctype>
#include <map>
#include <optional>
#include <utility>

#include "hq/sql.h"
#include "platform/log.h"

namespace loyalty::hq {

namespace {

// ?1 -> $1 (outside string literals; our SQL has none with '?').
std::string to_dollar(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  for (std::size_t i = 0; i < sql.size(); ++i) {
    if (sql[i] == '?' && i + 1 < sql.size() &&
        std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      out += '$';
    } else {
      out += sql[i];
    }
  }
  return out;
}

// Parameters as libpq wants them: text, or NULL.
class PgParams {
 public:
  explicit PgParams(const SqlParams& params) : values_(params.size()), ptrs_(params.size()) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        values_[i] = std::to_string(*v);
        ptrs_[i] = values_[i].c_str();
      } else if (const auto* t = std::get_if<std::string>(&params[i])) {
        ptrs_[i] = t->c_str();
      }
    }
  }
  int size() const { return static_cast<int>(ptrs_.size()); }
  const char* const* data() const { return ptrs_.data(); }

 private:
  std::vector<std::string> values_;
  std::vector<const char*> ptrs_;
};

class PgConn : public SqlConn {
 public:
  explicit PgConn(PGconn* c) : conn_(c) {}
  ~PgConn() override { PQfinish(conn_); }

  std::vector<SqlRow> query(std::string_view sql, const SqlParams& params) override {
    PGresult* res = run(sql, params);
    std::vector<SqlRow> rows;
    const int n = PQntuples(res), m = PQnfields(res);
    for (int r = 0; r < n; ++r) {
      SqlRow row;
      for (int c = 0; c < m; ++c)
        row.cols.push_back(PQgetisnull(res, r, c)
                               ? std::nullopt
                               : std::optional<std::string>(PQgetvalue(res, r, c)));
      rows.push_back(std::move(row));
    }
    PQclear(res);
    return rows;
  }

  std::int64_t exec(std::string_view sql, const SqlParams& params) override {
    PGresult* res = run(sql, params);
    const char* n = PQcmdTuples(res);
    const std::int64_t changed = (n && *n) ? std::stoll(n) : 0;
    PQclear(res);
    return changed;
  }

  // Inside a transaction, sent in libpq's pipeline mode: HQ goes on without
  // waiting for the server, which works through the queue meanwhile. The
  // queue is drained (and its first error thrown) before any statement
  // whose answer HQ reads, at commit, and every kMaxQueued statements.
  void defer(std::string_view sql, const SqlParams& params) override {
    const auto it = prepared_.find(sql);
    if (!in_txn_ || it == prepared_.end()) {
      exec(sql, params);  // prepares it for next time
      return;
    }
    if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQenterPipelineMode(conn_) != 1)
      throw SqlError(std::string("PostgreSQL pipeline: ") + PQerrorMessage(conn_));
    const PgParams values(params);
    if (PQsendQueryPrepared(conn_, it->second.c_str(), values.size(), values.data(), nullptr,
                            nullptr, 0) != 1) {
      std::string msg = PQerrorMessage(conn_);
      drain();
      throw SqlError("PostgreSQL: " + msg);
    }
    if (++queued_ >= kMaxQueued) drain();
  }

  // Writers from every process (serve, the CLI) take one advisory lock, so
  // they apply in order as SQLite's BEGIN IMMEDIATE does, and change-feed
  // cursors commit in the order they were handed out.
  void begin() override {
    exec("BEGIN", {});
    in_txn_ = true;
    exec("SELECT pg_advisory_xact_lock(7243)", {});
  }
  void commit() override {
    drain();          // throws the first deferred error: the caller rolls back
    in_txn_ = false;  // committed or, on an error, rolled back by the server
    exec("COMMIT", {});
  }
  void rollback() override {
    in_txn_ = false;
    try {
      drain();
    } catch (const SqlError&) {  // what is being rolled back
    }
    if (PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
  }
  std::string backend() const override { return "postgres"; }
  std::string autoincrement_key() const override { return "BIGSERIAL PRIMARY KEY"; }

 private:
  // Reads every queued statement's result and leaves pipeline mode. Throws
  // the first error (a later statement only reports the pipeline aborted).
  void drain() {
    if (PQpipelineStatus(conn_) == PQ_PIPELINE_OFF) return;
    const int queued = std::exchange(queued_, 0);
    if (PQstatus(conn_) != CONNECTION_OK || PQpipelineSync(conn_) != 1)
      throw SqlError("the connection to PostgreSQL was lost mid-transaction");
    std::optional<SqlError> first;
    for (int q = 0; q < queued && PQstatus(conn_) == CONNECTION_OK; ++q) {
      while (PGresult* res = PQgetResult(conn_)) {
        const auto st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_ABORTED || first) {
          PQclear(res);
          continue;
        }
        try {
          check(res);
          PQclear(res);
        } catch (SqlError& e) {  // check freed it
          first = std::move(e);
        }
      }
    }
    // Then the sync point, and out of pipeline mode.
    PGresult* sync = PQgetResult(conn_);
    const bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || PQstatus(conn_) != CONNECTION_OK)
      throw SqlError("the connection to PostgreSQL was lost mid-transaction");
    if (PQexitPipelineMode(conn_) != 1)
      throw SqlError(std::string("PostgreSQL pipeline: ") + PQerrorMessage(conn_));
    if (first) throw *first;
  }

  PGresult* run(std::string_view sql, const SqlParams& params) {
    if (PQstatus(conn_) == CONNECTION_OK) drain();  // what was deferred comes first
    if (PQstatus(conn_) != CONNECTION_OK) {
      // The server restarted, failed over, or an administrator ended the
      // session. Inside a transaction that transaction is gone: this
      // statement fails and the caller's rollback reports it (nothing of it
      // was committed). Between transactions HQ connects again, so one
      // lost connection does not leave it refusing every batch until it is
      // restarted itself.
      if (in_txn_) throw SqlError("the connection to PostgreSQL was lost mid-transaction", false);
      PQreset(conn_);
      prepared_.clear();  // they died with the old session
      queued_ = 0;
      if (PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) (void)PQexitPipelineMode(conn_);
      if (PQstatus(conn_) != CONNECTION_OK)
        throw SqlError(std::string("cannot reconnect to PostgreSQL: ") + PQerrorMessage(conn_),
                       false);
      PQclear(PQexec(conn_, "SET client_min_messages = warning"));
      platform::log_warn("the PostgreSQL session was lost; reconnected");
    }
    const std::string text = to_dollar(sql);
    const PgParams values(params);
    const std::string* name = prepared(sql, text, values.size());
    PGresult* res = name != nullptr ? PQexecPrepared(conn_, name->c_str(), values.size(),
                                                     values.data(), nullptr, nullptr, 0)
                                    : PQexecParams(conn_, text.c_str(), values.size(), nullptr,
                                                   values.data(), nullptr, nullptr, 0);
    check(res);
    return res;
  }

  // Throws the server's error for a failed statement (and frees it).
  static void check(PGresult* res) {
    const auto st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const bool unique = state != nullptr && std::string_view(state) == "23505";
    std::string msg = PQresultErrorMessage(res);
    PQclear(res);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw SqlError(msg, unique);
  }

  // The server-side prepared statement for `sql`, prepared on first use:
  // the server then parses and plans each statement once per session, not
  // at every call (ingest runs the same few statements thousands of times
  // a second). Statements with parameters only (DDL and BEGIN run as they
  // are), and at most kMaxPrepared of them; a new session starts afresh.
  const std::string* prepared(std::string_view sql, const std::string& text, int n) {
    if (n == 0) return nullptr;
    if (auto it = prepared_.find(sql); it != prepared_.end()) return &it->second;
    if (prepared_.size() >= kMaxPrepared) return nullptr;
    std::string name = "loyalty_" + std::to_string(prepared_.size());
    PGresult* res = PQprepare(conn_, name.c_str(), text.c_str(), n, nullptr);
    check(res);
    PQclear(res);
    return &prepared_.emplace(std::string(sql), std::move(name)).first->second;
  }

  static constexpr std::size_t kMaxPrepared = 512;
  // Results of this many statements are at most a few KB: neither side
  // can fill its socket buffer and wait on the other.
  static constexpr int kMaxQueued = 256;

  PGconn* conn_;
  bool in_txn_ = false;
  int queued_ = 0;
  std::map<std::string, std::string, std::less<>> prepared_;
};

}  // namespace

core::Result<std::unique_ptr<SqlConn>> open_postgres_conn(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    return core::fail(core::ErrorCode::kUnavailable, "cannot connect to PostgreSQL: " + msg);
  }
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  return std::unique_ptr<SqlConn>(new PgConn(c));
}

core::Result<std::unique_ptr<SqlConn>> open_sqlite_conn(const std::string& path);

core::Result<std::unique_ptr<SqlConn>> open_sql(const std::string& target) {
  if (target.starts_with("sqlite:")) return open_sqlite_conn(target.substr(7));
  if (target.starts_with("postgres:")) return open_postgres_conn(target.substr(9));
  return core::invalid("database", "must be sqlite:PATH or postgres:CONNINFO, got " + target);
}

}  // namespace loyalty::hq
