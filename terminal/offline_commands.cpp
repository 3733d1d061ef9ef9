#include "terminal/offline_commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "core/engine.h"
#include "core/io_json.h"
#include "core/program_loader.h"
#include "platform/crypto.h"
#include "terminal/sync_agent.h"

namespace loyalty::terminal {

namespace {

using core::Json;

constexpr std::size_t kMaxFileBytes = 4 * 1024 * 1024;

std::optional<std::string> read_file(const std::string& path, std::ostream& err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "error: cannot open " << path << "\n";
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > kMaxFileBytes) {
    err << "error: " << path << " is larger than 4 MiB\n";
    return std::nullopt;
  }
  return ss.str();
}

void print_error(const core::Error& e, const std::string& what, std::ostream& err) {
  if (e.problems.size() > 1) {
    err << "error: " << what << " has " << e.problems.size() << " problems:\n";
    for (const auto& p : e.problems) err << "  " << p.to_string() << "\n";
  } else {
    err << "error: " << what << ": " << e.message << "\n";
  }
}

std::optional<core::Program> load(const std::string& path, std::ostream& err) {
  auto text = read_file(path, err);
  if (!text) return std::nullopt;
  auto program = core::load_program_text(*text);
  if (!program) {
    print_error(program.error(), path, err);
    return std::nullopt;
  }
  return std::move(*program);
}

std::optional<Json> read_json(const std::string& path, std::ostream& err) {
  auto text = read_file(path, err);
  if (!text) return std::nullopt;
  auto j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    err << "error: " << path << " is not valid JSON\n";
    return std::nullopt;
  }
  return j;
}

}  // namespace

int run_check_program(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> files;
  auto flags = parse_cli_flags(args, files);
  if (files.empty()) {
    err << "usage: loyaltyctl check-program FILE... [--json]\n";
    return kExitUsage;
  }
  int rc = kExitOk;
  for (const auto& f : files) {
    auto program = load(f, err);
    if (!program) {
      rc = kExitInvalidInput;
      continue;
    }
    out << f << ": ok: " << program->id << " v" << program->version << " (" << program->name
        << "), " << program->rules.size() << " rules, "
        << (program->tiers ? program->tiers->levels.size() : 0) << " tiers, currency "
        << program->currency.code << "\n";
    for (const auto& d : program->decisions) out << "  decision: " << d << "\n";
  }
  return rc;
}

int run_quote(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> rest;
  auto flags = parse_cli_flags(args, rest);
  for (const char* need : {"--program", "--member", "--basket", "--at", "--tz"}) {
    if (!flags.contains(need) || flags[need].empty()) {
      err << "usage: loyaltyctl quote --program FILE --member FILE --basket FILE --at "
             "YYYY-MM-DDTHH:MM:SS --tz ZONE [--json]\n(missing "
          << need << ")\n";
      return kExitUsage;
    }
  }
  auto program = load(flags["--program"], err);
  if (!program) return kExitInvalidInput;
  auto member_json = read_json(flags["--member"], err);
  auto basket_json = read_json(flags["--basket"], err);
  if (!member_json || !basket_json) return kExitInvalidInput;
  auto member = core::member_from_json(*member_json);
  if (!member) {
    print_error(member.error(), flags["--member"], err);
    return kExitInvalidInput;
  }
  core::Request request;
  if (auto ok = core::request_from_json(*basket_json, request); !ok) {
    print_error(ok.error(), flags["--basket"], err);
    return kExitInvalidInput;
  }
  auto at = core::parse_local_datetime(flags["--at"]);
  if (!at) {
    err << "error: --at must be a store-local time YYYY-MM-DDTHH:MM:SS\n";
    return kExitUsage;
  }
  if (auto ok = core::check_zone(flags["--tz"]); !ok) {
    err << "error: --tz: " << ok.error().message << "\n";
    return kExitUsage;
  }
  request.at = *at;
  request.zone = flags["--tz"];
  request.txn_id = flags.contains("--txn") ? flags["--txn"] : "quote";
  auto outcome = core::evaluate(*program, *member, request);
  if (!outcome) {
    print_error(outcome.error(), "quote refused", err);
    return kExitRefused;
  }
  if (flags.contains("--json")) {
    out << core::outcome_to_json(*outcome, *program).dump(2) << "\n";
  } else {
    for (const auto& line : outcome->receipt) out << line << "\n";
  }
  return kExitOk;
}

// --key value pairs plus bare --flags.

int run_provision(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<std::string> pos;
  auto flags = parse_cli_flags(args, pos);
  if (pos.size() != 1) {
    err << "usage: loyaltyctl provision BUNDLE [--to /var/lib/loyaltyd/hq-bundle.json]\n";
    return kExitUsage;
  }
  auto bundle = load_bundle(pos[0]);
  if (!bundle) {
    err << "error: " << bundle.error().message << "\n";
    return kExitInvalidInput;
  }
  const auto to = flags.contains("--to") ? flags["--to"] : "/var/lib/loyaltyd/hq-bundle.json";
  auto text = platform::read_text_file(pos[0], 1 << 20);
  if (auto s = platform::write_private_file(to, *text, 0600); !s) {
    err << "error: " << s.error().message << "\n";
    return kExitRefused;
  }
  // Run as root into the service's state directory: the file belongs to
  // the directory's owner (the loyaltyd user), who must read it.
  struct stat dir {};
  const auto parent = std::filesystem::absolute(to).parent_path();
  if (::geteuid() == 0 && ::stat(parent.c_str(), &dir) == 0 && dir.st_uid != 0 &&
      ::chown(to.c_str(), dir.st_uid, dir.st_gid) != 0) {
    err << "error: cannot give " << to << " to the owner of " << parent.string() << "\n";
    return kExitRefused;
  }
  out << "provisioned terminal " << bundle->store_id << "/" << bundle->terminal_id << " for HQ "
      << bundle->host << ":" << bundle->port << " (" << to << ", mode 0600)\n"
      << "loyaltyd.conf must say `bundle = " << to << "` in [hq] (the package's does); then "
      << "`systemctl enable --now loyaltyd`, or restart it\n";
  return kExitOk;
}

}  // namespace loyalty::terminal
