// SqlConn over the embedded SQLite file (platform::Db: WAL, synchronous=FULL).
#include <condition_variable>
#include <mutex>
#include <thread>

#include "hq/sql.h"
#include "platform/log.h"
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

// Copies the WAL into the database file on a thread and connection of its
// own, so that a commit (which holds HQ's ledger lock) does not wait for
// it. PASSIVE: it never blocks the writer, and the WAL starts over once a
// checkpoint has caught up with it.
class Checkpointer {
 public:
  explicit Checkpointer(std::string path) : path_(std::move(path)) {}
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  void nudge() {
    {
      std::lock_guard lock(mutex_);
      wanted_ = true;
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    wake_.notify_one();
  }

 private:
  void run() {
    auto db = platform::Db::open(path_, false);
    if (!db) {
      // The writer still checkpoints itself when the WAL grows large.
      platform::log_warn("WAL checkpoints run in the writer: " + db.error().message);
      return;
    }
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return wanted_ || stop_; });
        if (stop_) return;
        wanted_ = false;
      }
      sqlite3_wal_checkpoint_v2(db->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
  }

  std::string path_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool wanted_ = false;
  bool stop_ = false;
  std::thread thread_;
};

class SqliteConn : public SqlConn {
 public:
  explicit SqliteConn(platform::Db db) : db_(std::move(db)) {
    const char* file = sqlite3_db_filename(db_.handle(), "main");
    if (file == nullptr || *file == '\0') return;  // in memory: SQLite's own checkpoints
    checkpointer_ = std::make_unique<Checkpointer>(file);
    // Replaces SQLite's automatic checkpoint, which runs in the committing
    // connection at 1,000 WAL pages.
    sqlite3_wal_hook(db_.handle(), &SqliteConn::after_commit, this);
  }
  ~SqliteConn() override {
    sqlite3_wal_hook(db_.handle(), nullptr, nullptr);
    checkpointer_.reset();  // before the writer's connection closes
  }
  SqliteConn(const SqliteConn&) = delete;
  SqliteConn& operator=(const SqliteConn&) = delete;

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

  // SQLite's wal hook: after each commit, with the pages the WAL holds.
  static int after_commit(void* self, sqlite3* db, const char* name, int pages) {
    constexpr int kBackground = 1000;  // SQLite's default checkpoint size
    // Past this the checkpoint thread has fallen behind (a long reader, a
    // slow disk): the writer checkpoints itself, so the WAL stays bounded.
    constexpr int kWriter = 16'000;
    if (pages >= kWriter) {
      sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kBackground) {
      static_cast<SqliteConn*>(self)->checkpointer_->nudge();
    }
    return SQLITE_OK;
  }

  platform::Db db_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace

core::Result<std::unique_ptr<SqlConn>> open_sqlite_conn(const std::string& path) {
  auto db = platform::Db::open(path);
  if (!db) return std::unexpected(db.error());
  return std::unique_ptr<SqlConn>(new SqliteConn(std::move(*db)));
}

}  // namespace loyalty::hq
