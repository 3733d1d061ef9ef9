#include "terminal/daemon_commands.h"

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <set>

#include "core/json_reader.h"
#include "platform/cli.h"
#include "platform/crypto.h"
#include "platform/http_client.h"
#include "terminal/ctl_print.h"
#include "terminal/offline_commands.h"

namespace loyalty::terminal {

namespace {

// A Unix time as an operator reads it, with the number for scripts.
std::string utc_time(std::int64_t t) {
  return platform::utc_text(t) + " (" + std::to_string(t) + ")";
}

using core::Json;
using verb = platform::http::verb;

const std::set<std::string> kCommands = {"status", "scan",    "member", "enroll", "quote",
                                         "commit", "redeem",  "return", "void",   "outbox",
                                         "sync",   "rewards", "stock",  "receipt"};
// Commands that record something: each is sent with an Idempotency-Key.
const std::set<std::string> kWrites = {"enroll", "commit", "redeem", "return", "void"};

std::string env_or(const char* name, const char* dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : dflt;
}

struct Call {
  int exit = 0;
  Json body;
};

class Daemon {
 public:
  Daemon(std::map<std::string, std::string>& flags, std::ostream& err) : err_(err) {
    url_ = flags.contains("--url") ? flags["--url"] : env_or("LOYALTYD_URL", "127.0.0.1:8787");
    token_file_ = flags.contains("--token-file")
                      ? flags["--token-file"]
                      : env_or("LOYALTYD_TOKEN_FILE", "/var/lib/loyaltyd/api-token");
  }

  Call call(verb method, const std::string& target, const Json& body = nullptr,
            const std::string& key = {}) {
    const auto colon = url_.rfind(':');
    if (colon == std::string::npos) {
      err_ << "loyaltyctl: --url must be HOST:PORT, got " << url_ << "\n";
      return {kExitUsage, nullptr};
    }
    auto token = platform::read_text_file(token_file_, 4096);
    if (!token) {
      err_ << "loyaltyctl: cannot read the API token " << token_file_
           << " (run as the loyaltyd user or root, or pass --token-file)\n";
      return {kExitUnauthorized, nullptr};
    }
    std::string t = *token;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    platform::HttpClient client(url_.substr(0, colon),
                                static_cast<std::uint16_t>(std::atoi(url_.c_str() + colon + 1)),
                                std::chrono::seconds(10));
    std::map<std::string, std::string> h{{"Authorization", "Bearer " + t}};
    if (!key.empty()) h["Idempotency-Key"] = key;
    auto r = client.request(method, target, body.is_null() ? std::string() : body.dump(), h);
    if (!r) {
      err_ << "loyaltyctl: cannot reach loyaltyd at " << url_ << ": " << r.error().message
           << "\n  is it running? (systemctl status loyaltyd)\n";
      return {kExitUnreachable, nullptr};
    }
    Json j = Json::parse(r->body, nullptr, false);
    if (r->status == 401) {
      err_ << "loyaltyctl: loyaltyd refused the token in " << token_file_
           << "; it does not match the daemon's\n";
      return {kExitUnauthorized, j};
    }
    if (r->status >= 400) {
      err_ << "loyaltyctl: " << (j.is_object() ? j.value("title", "error") : "error") << ": "
           << (j.is_object() ? j.value("detail", r->body) : r->body) << "\n";
      if (j.is_object() && j.contains("problems"))
        for (const auto& p : j["problems"])
          err_ << "  " << p.value("path", "") << ": " << p.value("message", "") << "\n";
      return {r->status == 400 || r->status == 413 || r->status == 422 ? kExitInvalidInput
                                                                       : kExitRefused,
              j};
    }
    return {0, j};
  }

 private:
  std::ostream& err_;
  std::string url_, token_file_;
};

std::optional<Json> read_json_file(const std::string& path, std::ostream& err) {
  auto text = platform::read_text_file(path);
  if (!text) {
    err << "loyaltyctl: " << text.error().message << "\n";
    return std::nullopt;
  }
  auto j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    err << "loyaltyctl: " << path << " is not valid JSON\n";
    return std::nullopt;
  }
  return j;
}

int need(const std::map<std::string, std::string>& flags, std::initializer_list<const char*> keys,
         const char* usage, std::ostream& err) {
  for (const char* k : keys)
    if (!flags.contains(k) || flags.at(k).empty()) {
      err << "usage: loyaltyctl " << usage << "\n(missing " << k << ")\n";
      return kExitUsage;
    }
  return 0;
}

// Builds the body of quote and commit: a basket file or an --event.
std::optional<Json> sale_body(std::map<std::string, std::string>& flags, std::ostream& err) {
  Json body{{"member_id", flags["--member"]}};
  if (flags.contains("--event")) {
    body["event"] = flags["--event"];
    // A top-up's amount (minor units) and an activity's name.
    if (flags.contains("--amount")) {
      const auto amount = platform::whole_number(flags["--amount"]);
      if (!amount) {
        err << "loyaltyctl: --amount must be a whole number of minor units (10000 is 100.00), "
               "not '"
            << flags["--amount"] << "'\n";
        return std::nullopt;
      }
      body["amount"] = *amount;
    }
    if (flags.contains("--activity")) body["activity"] = flags["--activity"];
    return body;
  }
  auto basket = read_json_file(flags["--basket"], err);
  if (!basket) return std::nullopt;
  body["basket"] = *basket;
  return body;
}

// Where the last write's key is kept for --retry: $LOYALTYCTL_STATE_DIR, else
// $XDG_STATE_HOME/loyaltyctl, else ~/.local/state/loyaltyctl; empty if none.
std::string last_write_path() {
  std::string dir = env_or("LOYALTYCTL_STATE_DIR", "");
  if (dir.empty() && !env_or("XDG_STATE_HOME", "").empty())
    dir = env_or("XDG_STATE_HOME", "") + "/loyaltyctl";
  if (dir.empty() && !env_or("HOME", "").empty())
    dir = env_or("HOME", "") + "/.local/state/loyaltyctl";
  return dir.empty() ? dir : dir + "/last-write.json";
}

// The command line a write stands for, without the options that do not
// change what it records (output, key, where loyaltyd is).
Json write_args(const std::string& command, const std::vector<std::string>& args) {
  Json j = Json::array({command});
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--retry" || args[i] == "--json") continue;
    if (args[i] == "--idempotency-key" || args[i] == "--key" || args[i] == "--url" ||
        args[i] == "--token-file") {
      ++i;
      continue;
    }
    j.push_back(args[i]);
  }
  return j;
}

std::string shown(const Json& args) {
  std::string s = "loyaltyctl";
  for (const auto& a : args) s += " " + a.get<std::string>();
  return s;
}

// The Idempotency-Key of a write: --idempotency-key, the last write's with
// --retry, or a new one. Empty (exit code set) on error.
std::string write_key(const std::string& command, const std::vector<std::string>& args,
                      std::map<std::string, std::string>& flags, std::ostream& err, int& exit) {
  const auto path = last_write_path();
  const Json me = write_args(command, args);
  std::string key = flags.contains("--idempotency-key") ? flags["--idempotency-key"]
                    : flags.contains("--key")           ? flags["--key"]
                                                        : std::string();
  if (flags.contains("--retry")) {
    if (!key.empty()) {
      err << "loyaltyctl: --retry resends the last write's key; do not give a key as well\n";
      exit = kExitUsage;
      return {};
    }
    Json last;
    if (!path.empty())
      if (auto text = platform::read_text_file(path, 1 << 16))
        last = Json::parse(*text, nullptr, false);
    if (!last.is_object() || !last.contains("key") || !last.contains("args")) {
      err << "loyaltyctl: --retry: no earlier write is recorded"
          << (path.empty() ? std::string(" (no HOME or LOYALTYCTL_STATE_DIR)") : " in " + path)
          << "; give its key with --idempotency-key KEY\n";
      exit = kExitUsage;
      return {};
    }
    if (last["args"] != me) {
      err << "loyaltyctl: --retry resends the last write, which was\n  " << shown(last["args"])
          << "\nrun exactly that again with --retry, or give another command its own key\n";
      exit = kExitUsage;
      return {};
    }
    key = last["key"].get<std::string>();
  }
  if (key.empty()) key = "ctl-" + platform::random_hex(8);
  return key;
}

// Writes down `key` for --retry and prints it, just before the write is
// sent: a command refused here (a typo, a missing file) sent nothing, and
// must not take the place of the write whose outcome is still unknown.
void remember_write(const std::string& command, const std::vector<std::string>& args,
                    const std::string& key, std::ostream& err) {
  if (const auto path = last_write_path(); !path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const Json record{{"key", key}, {"args", write_args(command, args)}};
    if (auto ok = platform::write_private_file(path, record.dump() + "\n", 0600); !ok)
      err << "loyaltyctl: warning: cannot keep the key for --retry: " << ok.error().message << "\n";
  }
  err << "idempotency key " << key << "\n";
}

}  // namespace

bool is_daemon_command(const std::string& command) {
  return kCommands.contains(command);
}

int run_daemon_command(const std::string& command, const std::vector<std::string>& args,
                       std::ostream& out, std::ostream& err) {
  std::vector<std::string> pos;
  auto flags = parse_cli_flags(args, pos);
  if (const auto bad = platform::unknown_option(
          flags, {"--url", "--token-file", "--json", "--key", "--idempotency-key", "--retry",
                  "--member", "--basket", "--event", "--amount", "--activity", "--phone",
                  "--birthday", "--reward", "--limit", "--name", "--referrer"})) {
    err << "loyaltyctl " << command << ": unknown option " << *bad
        << " (loyaltyctl --help lists the options)\n";
    return kExitUsage;
  }
  const bool json = flags.contains("--json");
  Daemon d(flags, err);
  const bool writes = kWrites.contains(command);
  std::string key;
  if (writes) {
    int exit = 0;
    key = write_key(command, args, flags, err, exit);
    if (key.empty()) return exit;
  } else if (flags.contains("--retry") || flags.contains("--idempotency-key")) {
    err << "loyaltyctl " << command << ": records nothing; --retry and --idempotency-key are for "
        << "enroll, commit, redeem, return and void\n";
    return kExitUsage;
  }
  // A write: its key written down and shown, then sent (see remember_write).
  const auto send = [&](verb method, const std::string& target, const Json& body) {
    remember_write(command, args, key, err);
    return d.call(method, target, body, key);
  };
  Call c;
  if (command == "status") {
    c = d.call(verb::get, "/v1/status");
    if (c.exit == 0 && !json) {
      const auto& s = c.body;
      out << "terminal    " << s.value("store_id", "") << "/" << s.value("terminal_id", "") << " ("
          << s.value("time_zone", "") << ")\n";
      out << "mode        " << s.value("mode", "") << ", "
          << (s.value("online", false) ? "online" : "OFFLINE") << "\n";
      if (s["program"].is_object())
        out << "program     " << s["program"].value("id", "") << " v"
            << s["program"].value("version", 0) << "\n";
      if (s.contains("program_next") && s["program_next"].is_object())
        out << "next        " << s["program_next"].value("id", "") << " v"
            << s["program_next"].value("version", 0) << " from "
            << utc_time(s["program_next"].value("effective_from", std::int64_t{0})) << "\n";
      out << "outbox      " << s["outbox"].value("depth", 0) << " waiting";
      if (s["outbox"]["oldest_age_seconds"].is_number())
        out << ", oldest " << s["outbox"]["oldest_age_seconds"].get<std::int64_t>() << " s";
      if (s.contains("hq_refuses_terminal") && s["hq_refuses_terminal"].is_string())
        out << "\nHQ REFUSES  this terminal (" << s["hq_refuses_terminal"].get<std::string>()
            << "): revoked or not registered, not an outage; provision it again";
      if (s["offline_since"].is_number())
        out << "\noffline     since " << utc_time(s["offline_since"].get<std::int64_t>());
      out << "\nlast sync   "
          << (s["last_sync_at"].is_number() ? utc_time(s["last_sync_at"].get<std::int64_t>())
                                            : std::string("never"))
          << "\nmembers     " << s.value("members_cached", 0) << " cached\n";
      if (s.contains("clock_error") && s["clock_error"].is_string())
        out << "CLOCK WRONG " << s["clock_error"].get<std::string>() << "\n";
      if (s.contains("clock_skew_seconds") && s["clock_skew_seconds"].is_number()) {
        const auto skew = s["clock_skew_seconds"].get<std::int64_t>();
        if (skew > 120 || skew < -120)
          out << "CLOCK OFF   " << (skew > 0 ? "ahead of" : "behind") << " HQ's by "
              << (skew > 0 ? skew : -skew) / 60 << " min; set it right (NTP)\n";
      }
      if (s.contains("feed") && s["feed"].value("catching_up", false))
        out << "feed        catching up with HQ (at change " << s["feed"].value("cursor", 0)
            << "): members and balances may be behind\n";
      if (s.contains("numbering_caught_up") && s["numbering_caught_up"].is_object())
        out << "numbering   behind HQ's, caught up at " << s["numbering_caught_up"].value("at", 0)
            << " (" << s["numbering_caught_up"].value("detail", "")
            << "): was this database restored from an older backup?\n";
      if (s.contains("hq_refused") && s["hq_refused"].is_array())
        for (const auto& r : s["hq_refused"])
          out << "REFUSED     " << r.value("receipt_id", "") << ": " << r.value("reason", "")
              << "\n";
    }
  } else if (command == "scan" || command == "member") {
    if (command == "member" && pos.size() == 1) {
      c = d.call(verb::get, "/v1/members/" + pos[0]);
    } else if (flags.contains("--phone")) {
      c = d.call(verb::post, "/v1/members/scan", Json{{"phone", flags["--phone"]}});
    } else if (pos.size() == 1) {
      c = d.call(verb::post, "/v1/members/scan", Json{{"code", pos[0]}});
    } else {
      err << "usage: loyaltyctl scan CODE | scan --phone NUMBER | member ID\n";
      return kExitUsage;
    }
    if (c.exit == 0 && !json) print_member(c.body, out);
  } else if (command == "enroll") {
    if (int u = need(flags, {"--phone"},
                     "enroll --phone NUMBER [--name NAME] [--birthday YYYY-MM-DD] [--referrer ID]",
                     err))
      return u;
    Json body{{"phone", flags["--phone"]}};
    if (flags.contains("--birthday")) body["birthday"] = flags["--birthday"];
    if (flags.contains("--name")) body["name"] = flags["--name"];
    if (flags.contains("--referrer")) body["referred_by"] = flags["--referrer"];
    c = send(verb::post, "/v1/members", body);
    if (c.exit == 0 && !json) print_member(c.body["member"], out);
  } else if (command == "quote" || command == "commit") {
    if (!flags.contains("--event"))
      if (int u = need(flags, {"--member", "--basket"},
                       "quote|commit --member ID (--basket FILE | --event NAME) [--key KEY]", err))
        return u;
    auto body = sale_body(flags, err);
    if (!body) return kExitInvalidInput;
    c = command == "quote" ? d.call(verb::post, "/v1/quote", *body)
                           : send(verb::post, "/v1/transactions", *body);
    if (c.exit == 0 && !json) print_receipt(c.body, out);
  } else if (command == "redeem") {
    if (int u = need(flags, {"--member", "--reward"}, "redeem --member ID --reward ID", err))
      return u;
    c = send(verb::post, "/v1/redeem",
             Json{{"member_id", flags["--member"]}, {"reward", flags["--reward"]}});
    if (c.exit == 0 && !json) print_receipt(c.body, out);
  } else if (command == "return" || command == "void") {
    if (pos.empty() || (command == "return" && pos.size() < 2)) {
      err << "usage: loyaltyctl return RECEIPT LINE:QTY... | void RECEIPT\n";
      return kExitUsage;
    }
    if (command == "void") {
      c = send(verb::post, "/v1/transactions/" + pos[0] + "/void", nullptr);
    } else {
      Json lines = Json::array();
      for (std::size_t i = 1; i < pos.size(); ++i) {
        const auto colon = pos[i].find(':');
        if (colon == std::string::npos) {
          err << "loyaltyctl: return lines are LINE:QTY (line numbers start at 0), got " << pos[i]
              << "\n";
          return kExitUsage;
        }
        lines.push_back({{"line", std::atoll(pos[i].c_str())},
                         {"quantity", std::atoll(pos[i].c_str() + colon + 1)}});
      }
      c = send(verb::post, "/v1/returns", Json{{"receipt_id", pos[0]}, {"lines", lines}});
    }
    if (c.exit == 0 && !json) print_receipt(c.body, out);
  } else if (command == "rewards") {
    c = d.call(verb::get, "/v1/rewards");
    if (c.exit == 0 && !json) print_rewards(c.body, out);
  } else if (command == "stock") {
    const auto n = pos.size() == 2 ? platform::whole_number(pos[1]) : std::nullopt;
    if (!n) {
      err << "usage: loyaltyctl stock REWARD COUNT   (sets what this store has, after a "
             "stock-take)\n";
      return kExitUsage;
    }
    c = d.call(verb::put, "/v1/rewards/" + pos[0] + "/stock", Json{{"available", *n}});
    if (c.exit == 0 && !json)
      out << c.body.value("reward", pos[0]) << ": " << c.body.value("available", *n)
          << " in stock here\n";
  } else if (command == "receipt") {
    if (pos.size() != 1) {
      err << "usage: loyaltyctl receipt RECEIPT   (reprint, with what is left to return)\n";
      return kExitUsage;
    }
    c = d.call(verb::get, "/v1/transactions/" + pos[0]);
    if (c.exit == 0 && !json) print_transaction(c.body, out);
  } else if (command == "sync") {
    c = d.call(verb::post, "/v1/sync", Json::object());
    if (c.exit == 0 && !json)
      out << "sync with HQ requested; `loyaltyctl status` shows the outcome\n";
  } else if (command == "outbox") {
    c = d.call(verb::get,
               "/v1/outbox?limit=" + (flags.contains("--limit") ? flags["--limit"] : "50"));
    if (c.exit == 0 && !json) {
      out << c.body.value("depth", 0) << " transaction(s) waiting for HQ\n";
      out << std::left << std::setw(6) << "seq" << std::setw(22) << "receipt" << std::setw(12)
          << "kind" << std::setw(24) << "member" << std::right << std::setw(8) << "earned"
          << std::setw(9) << "redeemed"
          << "\n";
      for (const auto& i : c.body["items"])
        out << std::left << std::setw(6) << i.value("seq", 0) << std::setw(22)
            << i.value("receipt_id", "") << std::setw(12) << i.value("kind", "") << std::setw(24)
            << i.value("member_id", "") << std::right << std::setw(8) << i.value("points_earned", 0)
            << std::setw(9) << i.value("points_redeemed", 0) << "\n";
    }
  }
  if (c.exit == 0 && json) out << c.body.dump(2) << "\n";
  // No answer, or loyaltyd's "no answer within the deadline" (503 timeout).
  const bool unknown_outcome =
      c.exit == kExitUnreachable ||
      (c.exit != 0 && c.body.is_object() && c.body.contains("type") && c.body["type"].is_string() &&
       c.body["type"].get<std::string>().ends_with("/timeout"));
  if (writes && unknown_outcome)
    err << "loyaltyctl: the outcome is not known. Once loyaltyd answers, run the same command "
           "again with --retry (key "
        << key << "): it is recorded once, never twice\n";
  return c.exit;
}

}  // namespace loyalty::terminal
