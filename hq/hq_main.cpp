// loyalty-hq: headquarters' ledger. Wiring and the command line (usage()
// lists every command).
//
// Over 500 lines on purpose: it is the whole command line, one short
// function per command next to the usage text that documents it, and
// nothing else; the work is in HqLedger and HqApi.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include "hq/api.h"
#include "hq/ledger.h"
#include "hq/schema.h"
#include "platform/cli.h"
#include "platform/crypto.h"
#include "platform/log.h"
#include "platform/systemd.h"
#include "platform/tls.h"
#include "platform/watchdog.h"

using namespace loyalty;
using core::Json;
namespace fs = std::filesystem;

namespace {

constexpr int kOk = 0, kUsage = 2, kInvalid = 3, kFailed = 4;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string today_utc() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

void usage(std::ostream& out) {
  out << "usage: loyalty-hq COMMAND [ARGS] --dir STATE_DIR [--db sqlite:PATH|postgres:CONNINFO]\n\n"
         "  init [--server-name NAME]            create the CA, HQ's certificate and signing key\n"
         "  terminals add STORE TERMINAL --out BUNDLE [--url https://HOST:PORT]\n"
         "                [--server-name NAME]\n"
         "                                       issue a terminal's certificate and bundle\n"
         "  terminals revoke STORE TERMINAL      refuse that terminal from now on\n"
         "  terminals list                       terminals, last upload, clock skew\n"
         "  serve [--listen ADDR] [--port 8443] [--admin-port 8444] [--port-file FILE]\n"
         "        [--member-feed all|visited]  every member to every store, or only to\n"
         "                                       the stores that sold to them or looked them up\n"
         "  publish PROGRAM_FILE [--effective-from UNIX]\n"
         "  verify                               prove every account sums to zero\n"
         "  report liability [--csv]             outstanding points by expiry month\n"
         "  report sales FROM TO [--csv]         per store and day, and the program metrics\n"
         "  issue-vouchers TEMPLATE MEMBERS_FILE a voucher for each member id listed (one a line)\n"
         "  reset-member MEMBER [--tier T [--until YYYY-MM-DD]] [--metrics A,B] --reason TEXT\n"
         "                                       set a tier (a trial upgrade with --until) or\n"
         "                                       zero metrics (audited); stores get it by feed\n"
         "  member-attribute MEMBER NAME (--until YYYY-MM-DD | --remove) --reason TEXT\n"
         "                                       a verified attribute (student) until a day\n"
         "  revoke-voucher MEMBER CODE --reason TEXT\n"
         "                                       take a voucher back; stores refuse it after "
         "the feed\n"
         "  run-jobs YYYY-MM-DD                  tier re-evaluation, monthly and birthday rewards\n"
         "  adjust MEMBER POINTS --reason TEXT   audited balance adjustment\n"
         "  expire YYYY-MM-DD                    expire lots dead on that store-local day\n"
         "  import-members FILE.csv              members with opening points; bad rows listed\n"
         "  block|unblock MEMBER --reason TEXT   refuse loyalty for a member at every store\n"
         "  block-code|unblock-code CODE --reason TEXT\n"
         "                                       refuse one card number or static QR (a lost "
         "card)\n"
         "  stock STORE TERMINAL REWARD QUANTITY [--delivery NOTE]\n"
         "                                       QUANTITY more of a reward for a store's counter;\n"
         "                                       a retry with the same NOTE allocates nothing\n"
         "  staff add ID --name NAME --role clerk|supervisor --stores S1[,S2] [--keep-pin]\n"
         "                                       a counter sign-in (or a change to one); the PIN\n"
         "                                       is read from standard input, 4 to 12 digits\n"
         "  staff disable ID | staff list        sign an account out at every store; list them\n"
         "  flags [--open] | member ID          flags (only unresolved with --open); a member\n"
         "  resolve-flag ID --reason TEXT [--settle]\n"
         "                                       mark a flag looked into (audited); stores drop "
         "it;\n"
         "                                       --settle books a refused record's points\n"
         "\nThe default database is sqlite:STATE_DIR/hq.db.\n";
}

// Each command's options besides --dir and --db.
const std::map<std::string, std::vector<std::string_view>>& command_options() {
  static const std::map<std::string, std::vector<std::string_view>> options = {
      {"init", {"--server-name"}},
      {"terminals", {"--out", "--url", "--server-name"}},
      {"serve", {"--listen", "--port", "--admin-port", "--port-file", "--member-feed"}},
      {"publish", {"--effective-from"}},
      {"verify", {}},
      {"report", {"--csv"}},
      {"issue-vouchers", {}},
      {"revoke-voucher", {"--reason"}},
      {"reset-member", {"--tier", "--until", "--metrics", "--reason"}},
      {"member-attribute", {"--until", "--remove", "--reason"}},
      {"run-jobs", {}},
      {"adjust", {"--reason"}},
      {"expire", {}},
      {"import-members", {}},
      {"block", {"--reason"}},
      {"unblock", {"--reason"}},
      {"block-code", {"--reason"}},
      {"unblock-code", {"--reason"}},
      {"stock", {"--delivery"}},
      {"staff", {"--name", "--role", "--stores", "--keep-pin"}},
      {"flags", {"--open"}},
      {"member", {}},
      {"resolve-flag", {"--reason", "--settle"}}};
  return options;
}

// `text` as a whole number from `min` to `max`, or a message naming `what`
// on stderr.
std::optional<std::int64_t> number_arg(const std::string& what, const std::string& text,
                                       std::int64_t min, std::int64_t max) {
  const auto n = platform::whole_number(text);
  if (!n || *n < min || *n > max) {
    std::cerr << "loyalty-hq: " << what << " must be a whole number from " << min << " to " << max
              << ", not '" << text << "'\n";
    return std::nullopt;
  }
  return n;
}

struct Ctx {
  std::map<std::string, std::string> flags;
  std::vector<std::string> pos;
  fs::path dir;
  std::string db_target() const {
    return flags.contains("--db") ? flags.at("--db") : "sqlite:" + (dir / "hq.db").string();
  }
};

std::string read_or_die(const fs::path& p) {
  auto t = platform::read_text_file(p.string(), 1 << 24);
  if (!t) {
    std::cerr << "loyalty-hq: " << t.error().message << "\n";
    std::exit(kFailed);
  }
  return *t;
}

int print(const core::Result<Json>& r) {
  if (!r) {
    std::cerr << "loyalty-hq: " << r.error().message << "\n";
    for (const auto& p : r.error().problems) std::cerr << "  " << p.to_string() << "\n";
    return r.error().code == core::ErrorCode::kInvalidArgument ? kInvalid : kFailed;
  }
  std::cout << r->dump(2) << "\n";
  return kOk;
}

int cmd_init(const Ctx& c) {
  fs::create_directories(c.dir);
  if (fs::exists(c.dir / "ca.key")) {
    std::cerr << "loyalty-hq: " << c.dir << " is already initialised; refusing to replace its CA\n";
    return kFailed;
  }
  const auto name = c.flags.contains("--server-name") ? c.flags.at("--server-name") : "localhost";
  auto made = platform::make_ca("loyalty-hq CA", 3650);
  if (!made) {
    std::cerr << "loyalty-hq: " << made.error().message << "\n";
    return kFailed;
  }
  const auto& ca = *made;
  auto server = platform::issue_cert(ca, name, true, {name, "localhost"}, {"127.0.0.1"}, 825);
  if (!server) {
    std::cerr << "loyalty-hq: " << server.error().message << "\n";
    return kFailed;
  }
  const auto signing = platform::SigningKey::generate();
  for (auto [file, text, mode] : std::vector<std::tuple<const char*, std::string, unsigned>>{
           {"ca.pem", ca.cert_pem, 0644},
           {"ca.key", ca.key_pem, 0600},
           {"server.pem", server->cert_pem, 0644},
           {"server.key", server->key_pem, 0600},
           {"signing.key", signing.private_pem(), 0600},
           {"signing.pub", signing.public_pem(), 0644},
           {"admin-token", platform::random_hex(32) + "\n", 0600}}) {
    if (auto s = platform::write_private_file((c.dir / file).string(), text, mode); !s) {
      std::cerr << "loyalty-hq: " << s.error().message << "\n";
      return kFailed;
    }
  }
  auto db = hq::open_sql(c.db_target());
  if (!db || !hq::migrate_hq(**db)) {
    std::cerr << "loyalty-hq: cannot create the database " << c.db_target() << "\n";
    return kFailed;
  }
  std::cout << "initialised " << c.dir.string() << " (CA, server certificate for " << name
            << ", signing key, admin token, database)\n";
  return kOk;
}

std::optional<std::unique_ptr<hq::SqlConn>> open_db(const Ctx& c) {
  auto db = hq::open_sql(c.db_target());
  if (!db) {
    std::cerr << "loyalty-hq: " << db.error().message << "\n";
    return std::nullopt;
  }
  if (auto s = hq::migrate_hq(**db); !s) {
    std::cerr << "loyalty-hq: " << s.error().message << "\n";
    return std::nullopt;
  }
  return std::move(*db);
}

// HQ's address for a bundle: https://HOST:PORT, the host an IP address or
// a name, the port 1 to 65535.
core::Status valid_hq_url(const std::string& url) {
  if (!url.starts_with("https://"))
    return core::invalid("url", "must start with https:// (terminals talk to HQ over TLS)");
  const auto rest = url.substr(8);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || rest.find('/') != std::string::npos)
    return core::invalid("url", "must be https://HOST:PORT, nothing after the port");
  const auto port = platform::whole_number(rest.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535)
    return core::invalid("url", "the port must be a number from 1 to 65535");
  return {};
}

int cmd_terminals(const Ctx& c, hq::HqLedger& ledger) {
  if (c.pos.size() == 1 && c.pos[0] == "list") return print(ledger.terminals());
  if (c.pos.size() != 3 || (c.pos[0] != "add" && c.pos[0] != "revoke")) {
    usage(std::cerr);
    return kUsage;
  }
  const auto& store = c.pos[1];
  const auto& terminal = c.pos[2];
  // Letters and digits only: the ids join with "-" into transaction ids
  // and with "/" into the certificate name, so neither may appear in them.
  for (const auto* id : {&store, &terminal})
    if (id->empty() || id->size() > 16 ||
        id->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") !=
            std::string::npos) {
      std::cerr << "loyalty-hq: store and terminal ids are 1 to 16 letters or digits, got '" << *id
                << "'\n";
      return kUsage;
    }
  if (c.pos[0] == "revoke") {
    if (auto s = ledger.revoke_terminal(store, terminal); !s) {
      std::cerr << "loyalty-hq: " << s.error().message << "\n";
      return kFailed;
    }
    std::cout << "revoked " << store << "/" << terminal << "\n";
    return kOk;
  }
  if (!c.flags.contains("--out")) {
    std::cerr << "loyalty-hq: terminals add needs --out BUNDLE_FILE\n";
    return kUsage;
  }
  const auto& out = c.flags.at("--out");
  if (fs::exists(out)) {
    std::cerr << "loyalty-hq: " << out
              << " exists (another terminal's bundle?); give the new bundle its own file\n";
    return kFailed;
  }
  const auto url = c.flags.contains("--url") ? c.flags.at("--url") : "https://127.0.0.1:8443";
  if (auto ok = valid_hq_url(url); !ok) {
    std::cerr << "loyalty-hq: --url " << url << ": " << ok.error().message << "\n";
    return kUsage;
  }
  const platform::CertKey ca{read_or_die(c.dir / "ca.pem"), read_or_die(c.dir / "ca.key")};
  auto cert = platform::issue_cert(ca, store + "/" + terminal, false, {}, {}, 825);
  auto fp = cert ? platform::cert_fingerprint(cert->cert_pem)
                 : core::Result<std::string>(std::unexpected(cert.error()));
  if (!fp) {
    std::cerr << "loyalty-hq: cannot issue the terminal's certificate (is " << (c.dir / "ca.key")
              << " the CA's key?): " << fp.error().message << "\n";
    return kFailed;
  }
  const Json bundle{{"hq_url", url},
                    {"server_name",
                     c.flags.contains("--server-name") ? c.flags.at("--server-name") : "localhost"},
                    {"store_id", store},
                    {"terminal_id", terminal},
                    {"ca_pem", ca.cert_pem},
                    {"cert_pem", cert->cert_pem},
                    {"key_pem", cert->key_pem},
                    {"hq_public_key_pem", read_or_die(c.dir / "signing.pub")}};
  // The bundle is written first: a terminal registered without one could
  // never be provisioned, and its id not be given again.
  if (auto s = platform::write_private_file(out, bundle.dump(2) + "\n", 0600); !s) {
    std::cerr << "loyalty-hq: " << s.error().message << "\n";
    return kFailed;
  }
  if (auto s = ledger.add_terminal(store, terminal, *fp); !s) {
    fs::remove(out);
    std::cerr << "loyalty-hq: " << s.error().message << "\n";
    return kFailed;
  }
  std::cout << "terminal " << store << "/" << terminal << " added; provisioning bundle "
            << c.flags.at("--out") << " (keep it secret: it holds the terminal's key)\n";
  return kOk;
}

int cmd_serve(const Ctx& c, hq::HqLedger& ledger) {
  auto key = platform::SigningKey::from_file((c.dir / "signing.key").string());
  if (!key) {
    std::cerr << "loyalty-hq: " << key.error().message << "\n";
    return kFailed;
  }
  std::string token = read_or_die(c.dir / "admin-token");
  while (!token.empty() && token.back() == '\n') token.pop_back();
  auto tls = platform::server_tls(read_or_die(c.dir / "ca.pem"), read_or_die(c.dir / "server.pem"),
                                  read_or_die(c.dir / "server.key"), true);
  if (!tls) {
    std::cerr << "loyalty-hq: " << tls.error().message << "\n";
    return kFailed;
  }
  // Feed reads on a connection of their own: they go on during an ingest.
  auto reader = hq::open_sql(c.db_target());
  if (!reader) {
    std::cerr << "loyalty-hq: " << reader.error().message << "\n";
    return kFailed;
  }
  ledger.serve_feed_from(std::move(*reader));
  const auto feed = c.flags.contains("--member-feed") ? c.flags.at("--member-feed") : "all";
  if (feed != "all" && feed != "visited") {
    std::cerr << "loyalty-hq: --member-feed must be all or visited\n";
    return kInvalid;
  }
  ledger.set_member_feed(feed == "visited" ? hq::HqLedger::MemberFeed::kVisited
                                           : hq::HqLedger::MemberFeed::kAll);
  boost::asio::io_context io(1);
  hq::HqApi api(ledger, *key, token);
  platform::HttpServerOptions sync_opts;
  sync_opts.address = c.flags.contains("--listen") ? c.flags.at("--listen") : "127.0.0.1";
  const auto port =
      number_arg("--port", c.flags.contains("--port") ? c.flags.at("--port") : "8443", 0, 65535);
  const auto admin_port =
      number_arg("--admin-port",
                 c.flags.contains("--admin-port") ? c.flags.at("--admin-port") : "8444", 0, 65535);
  if (!port || !admin_port) return kUsage;
  sync_opts.port = static_cast<std::uint16_t>(*port);
  sync_opts.body_limit = 16 << 20;
  sync_opts.handler_timeout = std::chrono::seconds(30);
  sync_opts.problem_base = hq::kHqProblemBase;
  sync_opts.tls = *tls;
  // Terminals are trusted once their certificate verifies; before that a
  // connection waits in a pool of its own, at most 64 from one address, so
  // strangers cannot take the terminals' slots (docs/reliability.md).
  sync_opts.admission = {
      .unproven_max = 1024, .unproven_per_peer = 64, .trusted_max = 512, .trusted_per_identity = 8};
  sync_opts.head_timeout = std::chrono::seconds(5);
  platform::HttpServer sync_server(io, sync_opts,
                                   [&api](platform::HttpRequest&& r, platform::Responder d) {
                                     api.terminal(std::move(r), std::move(d));
                                   });
  platform::HttpServerOptions admin_opts = sync_opts;
  admin_opts.tls = nullptr;
  admin_opts.address = "127.0.0.1";
  admin_opts.body_limit = 4 << 20;
  admin_opts.port = static_cast<std::uint16_t>(*admin_port);
  admin_opts.admission = {
      .unproven_max = 128, .unproven_per_peer = 128, .trusted_max = 64, .trusted_per_identity = 64};
  admin_opts.authorize = [&api](const platform::HttpRequest& r) { return api.admin_authorized(r); };
  platform::HttpServer admin_server(io, admin_opts,
                                    [&api](platform::HttpRequest&& r, platform::Responder d) {
                                      api.admin(std::move(r), std::move(d));
                                    });
  for (auto* s : {&sync_server, &admin_server})
    if (auto ok = s->start(); !ok) {
      std::cerr << "loyalty-hq: " << ok.error().message << "\n";
      return kFailed;
    }
  if (c.flags.contains("--port-file")) {
    const auto f = c.flags.at("--port-file");
    std::ofstream(f + ".tmp") << sync_server.port() << " " << admin_server.port() << "\n";
    fs::rename(f + ".tmp", f);
  }
  platform::log_info("loyalty-hq serving terminals on https://" + sync_opts.address + ":" +
                     std::to_string(sync_server.port()) +
                     " (mutual TLS), admin on 127.0.0.1:" + std::to_string(admin_server.port()));
  platform::notify_ready("serving");
  platform::Watchdog watchdog(io);
  boost::asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](auto, int) {
    platform::notify_stopping();
    watchdog.stop();
    sync_server.stop();
    admin_server.stop();
    io.stop();
  });
  io.run();
  api.join();
  return kOk;
}

// staff add|disable|list. The PIN comes on standard input (a pipe, or
// typed without echo at a terminal), never on the command line where `ps`
// and the shell's history would show it.
int cmd_staff(Ctx& c, hq::HqLedger& ledger) {
  const auto flag = [&](const char* k) { return c.flags.contains(k) ? c.flags.at(k) : ""; };
  if (c.pos.size() == 1 && c.pos[0] == "list") return print(ledger.staff());
  if (c.pos.size() == 2 && c.pos[0] == "disable")
    return print(ledger.disable_staff(c.pos[1], "cli"));
  if (c.pos.size() != 2 || c.pos[0] != "add") {
    usage(std::cerr);
    return kUsage;
  }
  hq::HqLedger::StaffInput in{c.pos[1], flag("--name"), flag("--role"), "", {}};
  std::stringstream stores(flag("--stores"));
  for (std::string s; std::getline(stores, s, ',');)
    if (!s.empty()) in.stores.push_back(s);
  if (!c.flags.contains("--keep-pin")) {
    const bool tty = ::isatty(STDIN_FILENO) != 0;
    if (tty) std::cerr << "PIN for " << in.staff_id << " (4 to 12 digits): " << std::flush;
    const auto echo = platform::set_stdin_echo(false);
    std::getline(std::cin, in.pin);
    platform::set_stdin_echo(echo);
    if (tty) std::cerr << "\n";
    while (!in.pin.empty() && (in.pin.back() == '\r' || in.pin.back() == ' ')) in.pin.pop_back();
    if (in.pin.empty()) {
      std::cerr << "loyalty-hq: staff add: no PIN on standard input (or pass --keep-pin)\n";
      return kUsage;
    }
  }
  return print(ledger.put_staff(in, "cli"));
}

int run(Ctx& c, const std::string& command) {
  if (command == "init") return cmd_init(c);
  auto db = open_db(c);
  if (!db) return kFailed;
  hq::HqLedger ledger(**db, unix_now);
  if (command == "terminals") return cmd_terminals(c, ledger);
  if (command == "serve") return cmd_serve(c, ledger);
  if (command == "verify") {
    auto r = ledger.verify();
    const int rc = print(r);
    return rc == kOk && !(*r)["ok"].get<bool>() ? kFailed : rc;
  }
  if (command == "flags") return print(ledger.flags(c.flags.contains("--open")));
  if (command == "resolve-flag" && c.pos.size() == 1) {
    const auto id = platform::whole_number(c.pos[0]);
    if (!id) {
      std::cerr << "loyalty-hq: resolve-flag: ID must be a flag's number, not " << c.pos[0] << "\n";
      return kUsage;
    }
    return print(ledger.resolve_flag(*id,
                                     c.flags.contains("--reason") ? c.flags.at("--reason") : "",
                                     "cli", c.flags.contains("--settle")));
  }
  if (command == "member" && c.pos.size() == 1) return print(ledger.member(c.pos[0]));
  if (command == "expire" && c.pos.size() == 1) return print(ledger.expire(c.pos[0]));
  if (command == "publish" && c.pos.size() == 1) {
    auto key = platform::SigningKey::from_file((c.dir / "signing.key").string());
    if (!key) return print(std::unexpected(key.error()));
    const auto from = c.flags.contains("--effective-from")
                          ? number_arg("--effective-from", c.flags.at("--effective-from"), 0,
                                       std::numeric_limits<std::int64_t>::max())
                          : unix_now();
    if (!from) return kUsage;
    return print(ledger.publish_program(read_or_die(c.pos[0]), *from, *key, "cli"));
  }
  if (command == "stock" && c.pos.size() == 4) {
    const auto n = platform::whole_number(c.pos[3]);
    if (!n) {
      std::cerr << "loyalty-hq: stock: QUANTITY must be a whole number, not " << c.pos[3] << "\n";
      return kUsage;
    }
    return print(
        ledger.allocate_stock(c.pos[0], c.pos[1], c.pos[2], *n, "cli",
                              c.flags.contains("--delivery") ? c.flags.at("--delivery") : ""));
  }
  if (command == "staff") return cmd_staff(c, ledger);
  if ((command == "block" || command == "unblock") && c.pos.size() == 1)
    return print(ledger.set_blocked(c.pos[0], command == "block",
                                    c.flags.contains("--reason") ? c.flags.at("--reason") : "",
                                    "cli"));
  if ((command == "block-code" || command == "unblock-code") && c.pos.size() == 1)
    return print(ledger.set_code_blocked(c.pos[0], command == "block-code",
                                         c.flags.contains("--reason") ? c.flags.at("--reason") : "",
                                         "cli"));
  if (command == "reset-member" && c.pos.size() == 1) {
    hq::HqLedger::MemberReset reset;
    const auto flag = [&](const char* k) { return c.flags.contains(k) ? c.flags.at(k) : ""; };
    reset.tier = flag("--tier");
    if (c.flags.contains("--until")) {
      reset.tier_until = core::parse_local_date(flag("--until"));
      if (!reset.tier_until) {
        std::cerr << "loyalty-hq: --until must be a date YYYY-MM-DD\n";
        return kUsage;
      }
    }
    std::stringstream list(flag("--metrics"));
    for (std::string m; std::getline(list, m, ',');)
      if (!m.empty()) reset.metrics.push_back(m);
    return print(ledger.reset_member(c.pos[0], reset, flag("--reason"), "cli"));
  }
  if (command == "member-attribute" && c.pos.size() == 2) {
    const bool remove = c.flags.contains("--remove");
    const auto until =
        c.flags.contains("--until") ? core::parse_local_date(c.flags.at("--until")) : std::nullopt;
    if (remove == c.flags.contains("--until") || (!remove && !until)) {
      std::cerr << "loyalty-hq: member-attribute needs --until YYYY-MM-DD or --remove\n";
      return kUsage;
    }
    return print(ledger.set_attribute(c.pos[0], c.pos[1], until,
                                      c.flags.contains("--reason") ? c.flags.at("--reason") : "",
                                      "cli"));
  }
  if (command == "revoke-voucher" && c.pos.size() == 2)
    return print(ledger.revoke_voucher(
        c.pos[0], c.pos[1], c.flags.contains("--reason") ? c.flags.at("--reason") : "", "cli"));
  if (command == "import-members" && c.pos.size() == 1) {
    std::ifstream in(c.pos[0]);
    if (!in) {
      std::cerr << "loyalty-hq: cannot open " << c.pos[0] << "\n";
      return kFailed;
    }
    const bool tty = ::isatty(2) != 0;
    auto r = ledger.import_members(in, today_utc(), [tty](std::int64_t done, std::int64_t all) {
      const int width = 30;
      const auto filled = all > 0 ? static_cast<int>(done * width / all) : width;
      std::cerr << (tty ? "\r" : "") << "[" << std::string(static_cast<std::size_t>(filled), '#')
                << std::string(static_cast<std::size_t>(width - filled), ' ') << "] " << done << "/"
                << all << " rows" << (tty ? "" : "\n") << std::flush;
    });
    if (tty) std::cerr << "\n";
    if (!r) return print(r);
    std::cout << (*r)["added"] << " added, " << (*r)["rejected"] << " rejected of " << (*r)["rows"]
              << " rows; " << (*r)["opening_points"] << " opening points booked\n";
    for (const auto& p : (*r)["problems"]) std::cout << "  " << p.get<std::string>() << "\n";
    return (*r)["rejected"].get<std::int64_t>() > 0 ? kInvalid : kOk;
  }
  if (command == "adjust" && c.pos.size() == 2) {
    const auto points = platform::whole_number(c.pos[1]);
    if (!points) {
      std::cerr << "loyalty-hq: adjust: POINTS must be a whole number of points (negative to "
                   "take some away), not '"
                << c.pos[1] << "'\n";
      return kUsage;
    }
    return print(ledger.adjust(c.pos[0], *points,
                               c.flags.contains("--reason") ? c.flags.at("--reason") : "", "cli"));
  }
  if (command == "run-jobs" && c.pos.size() == 1) return print(ledger.run_jobs(c.pos[0]));
  if (command == "issue-vouchers" && c.pos.size() == 2) {
    std::ifstream in(c.pos[1]);
    if (!in) {
      std::cerr << "loyalty-hq: cannot open " << c.pos[1] << "\n";
      return kFailed;
    }
    std::vector<std::string> members;
    for (std::string line; std::getline(in, line);) {
      line = line.substr(0, line.find_first_of(",\r"));
      const auto b = line.find_first_not_of(" \t");
      if (b != std::string::npos)
        members.push_back(line.substr(b, line.find_last_not_of(" \t") - b + 1));
    }
    auto r = ledger.issue_vouchers(c.pos[0], members, today_utc(), "cli");
    const int rc = print(r);
    return rc == kOk && !(*r)["unknown_members"].empty() ? kInvalid : rc;
  }
  if (command == "report" && c.pos.size() == 3 && c.pos[0] == "sales") {
    auto r = ledger.report(c.pos[1], c.pos[2]);
    if (!r || !c.flags.contains("--csv")) return print(r);
    std::cout << "store_id,business_day,transactions,members,sales,points_earned,points_redeemed,"
                 "points_taken_back,points_given_back\n";
    for (const auto& d : (*r)["per_store_day"])
      std::cout << d["store_id"].get<std::string>() << "," << d["business_day"].get<std::string>()
                << "," << d["transactions"] << "," << d["members"] << "," << d["sales"] << ","
                << d["points_earned"] << "," << d["points_redeemed"] << ","
                << d["points_taken_back"] << "," << d["points_given_back"] << "\n";
    std::cout << "\nmetric,value\n";
    for (const auto& [k, v] : (*r)["metrics"].items()) std::cout << k << "," << v.dump() << "\n";
    return kOk;
  }
  if (command == "report" && c.pos.size() == 1 && c.pos[0] == "liability") {
    auto r = ledger.liability();
    if (!r || !c.flags.contains("--csv")) return print(r);
    std::cout << "expires,points\n";
    for (const auto& row : (*r)["by_expiry_month"])
      std::cout << row["expires"].get<std::string>() << "," << row["points"] << "\n";
    return kOk;
  }
  usage(std::cerr);
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  // Everything this process creates (the SQLite database with its -wal and
  // -shm files, tokens, keys) is for its own user only, under systemd
  // (UMask=0077) or not.
  ::umask(0077);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "help") {
    usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? kUsage : kOk;
  }
  const auto command = args[0];
  args.erase(args.begin());
  Ctx c;
  c.flags = platform::parse_cli_flags(args, c.pos);
  const auto options = command_options().find(command);
  if (options == command_options().end()) {
    std::cerr << "loyalty-hq: unknown command '" << command << "'\n";
    usage(std::cerr);
    return kUsage;
  }
  auto known = options->second;
  known.insert(known.end(), {"--dir", "--db", "--help"});
  if (const auto bad = platform::unknown_option(c.flags, known)) {
    std::cerr << "loyalty-hq " << command << ": unknown option " << *bad
              << " (loyalty-hq --help lists each command's options)\n";
    return kUsage;
  }
  if (c.flags.contains("--help")) {
    usage(std::cout);
    return kOk;
  }
  if (!c.flags.contains("--dir")) {
    std::cerr << "loyalty-hq: --dir STATE_DIR is required\n";
    return kUsage;
  }
  c.dir = c.flags.at("--dir");
  try {
    return run(c, command);
  } catch (const std::exception& e) {
    std::cerr << "loyalty-hq: " << e.what() << "\n";
    return kFailed;
  }
}
