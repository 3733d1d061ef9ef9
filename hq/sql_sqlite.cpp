// SqlConn over the embedded SQLite file (platform::Db: WAL, synchronous=FULL).
#include "hq/sql.h"
#include "platform/sqlite.h"

namespace loyalty::hq {

const std::string& SqlRow::text(std::size_t i) const {
  static const std::string kEmpty;
  const auto& c = cols.at(i);
  return c ? *c : kEmpty;
}

std::int64_t SqlRow::integer(std::size_t i) const {
  const auto& c = cols.at(i);
  return c && !c->empty() ? std::stoll(*c) : 0;
}

namespace {

class SqliteConn : public SqlConn {
 public:
  explicit SqliteConn(platform::Db db) : db_(std::move(db)) {}

  std::vector<SqlRow> query(std::string_view sql, const SqlParams& params) override {
    try {
      platform::Stmt s(db_, sql);
      bind(s, params);
      std::vector<SqlRow> rows;
      const int n = sqlite3_column_count(stmt_of(s));
      while (s.step()) {
        SqlRow r;
        for (int i = 0; i < n; ++i)
          r.cols.push_back(s.is_null(i) ? std::nullopt : std::optional<std::string>(s.text(i)));
        rows.push_back(std::move(r));
      }
      return rows;
    } catch (const platform::SqliteError& e) {
      throw SqlError(e.what(), e.is_constraint());
    }
  }

  std::int64_t exec(std::string_view sql, const SqlParams& params) override {
    try {
      platform::Stmt s(db_, sql);
      bind(s, params);
      return s.exec();
    } catch (const platform::SqliteError& e) {
      throw SqlError(e.what(), e.is_constraint());
    }
  }

  void begin() override { exec("BEGIN IMMEDIATE", {}); }
  void commit() override { exec("COMMIT", {}); }
  void rollback() override { sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr); }
  std::string backend() const override { return "sqlite"; }
  std::string autoincrement_key() const override { return "INTEGER PRIMARY KEY AUTOINCREMENT"; }

 private:
  static void bind(platform::Stmt& s, const SqlParams& params) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i + 1);
      if (const auto* v = std::get_if<std::int64_t>(&params[i])) {
        s.bind(at, *v);
      } else if (const auto* t = std::get_if<std::string>(&params[i])) {
        s.bind(at, *t);
      } else {
        s.bind_null(at);
      }
    }
  }
  static sqlite3_stmt* stmt_of(platform::Stmt& s) { return s.handle(); }

  platform::Db db_;
};

}  // namespace

core::Result<std::unique_ptr<SqlConn>> open_sqlite_conn(const std::string& path) {
  auto db = platform::Db::open(path);
  if (!db) return std::unexpected(db.error());
  return std::unique_ptr<SqlConn>(new SqliteConn(std::move(*db)));
}

}  // namespace loyalty::hq
