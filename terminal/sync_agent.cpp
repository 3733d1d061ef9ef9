// The sync agent's life and wiring (docs/sync.md, "The terminal side"): the
// provisioning bundle, the background thread and its backoff, online and
// offline as status shows them, HQ refusing this terminal, and the live
// checks and lookups a checkout asks for on a connection of its own.
// Uploads are in sync_upload.cpp, the feed in sync_feed.cpp.
#include "terminal/sync_agent.h"

#include <random>
#include <set>

#include "core/io_json.h"
#include "core/member_delta.h"
#include "platform/cli.h"
#include "platform/http_client.h"
#include "platform/log.h"
#include "platform/tls.h"
#include "sync/feed.h"
#include "sync/protocol.h"
#include "terminal/sync_records.h"

namespace loyalty::terminal {

using platform::Db;

core::Result<HqBundle> load_bundle(const std::string& path) {
  auto text = platform::read_text_file(path, 1 << 20);
  if (!text) return std::unexpected(text.error());
  const Json j = Json::parse(*text, nullptr, false);
  HqBundle b;
  try {
    const std::string url = j.at("hq_url");
    const auto scheme = url.find("https://");
    const auto colon = url.rfind(':');
    if (scheme != 0 || colon == std::string::npos || colon < 8)
      return core::invalid(path + ".hq_url", "must be https://HOST:PORT");
    b.host = url.substr(8, colon - 8);
    const auto port = platform::whole_number(url.substr(colon + 1));
    if (!port || *port < 1 || *port > 65535)
      return core::invalid(path + ".hq_url", "the port must be a number from 1 to 65535");
    b.port = static_cast<std::uint16_t>(*port);
    b.server_name = j.at("server_name");
    b.store_id = j.at("store_id");
    b.terminal_id = j.at("terminal_id");
    b.ca_pem = j.at("ca_pem");
    b.cert_pem = j.at("cert_pem");
    b.key_pem = j.at("key_pem");
    b.hq_public_key_pem = j.at("hq_public_key_pem");
  } catch (const std::exception& e) {
    return core::invalid(path, std::string("not a provisioning bundle: ") + e.what());
  }
  if (auto t = platform::client_tls(b.ca_pem, b.cert_pem, b.key_pem); !t)
    return core::invalid(path, t.error().message);
  return b;
}

SyncAgent::SyncAgent(Store& store, Checkout& checkout, HqBundle bundle, Clock clock)
    : store_(store), checkout_(checkout), bundle_(std::move(bundle)), clock_(std::move(clock)) {
  if (auto k = platform::SigningKey::from_pem(bundle_.hq_public_key_pem)) hq_key_ = std::move(*k);
  if (auto t = platform::client_tls(bundle_.ca_pem, bundle_.cert_pem, bundle_.key_pem))
    tls_ = std::move(*t);
}

SyncAgent::~SyncAgent() {
  stop();
}

void SyncAgent::start() {
  thread_ = std::thread([this] { run(); });
}

void SyncAgent::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SyncAgent::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  cv_.notify_all();
}

void SyncAgent::sync_now() {
  {
    std::lock_guard lock(mutex_);
    forced_ = true;
  }
  cv_.notify_all();
}

void SyncAgent::set_online(bool online) {
  const auto now = clock_();
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    const bool was = sync_get(db, "online").value_or("0") == "1";
    sync_set(db, "online", online ? "1" : "0");
    if (online) {
      sync_set(db, "last_sync_at", std::to_string(now));
      const auto skew = sync_get(db, "hq_clock_skew");
      checkout_.note_contact(db, now, skew ? std::stoll(*skew) : 0);
      platform::Stmt clear(db,
                           "DELETE FROM sync_state WHERE key IN ('hq_refused_terminal', "
                           "'clock_error')");
      clear.exec();
    } else if (was || !sync_get(db, "offline_since")) {
      sync_set(db, "offline_since", std::to_string(now));
    }
    return true;
  });
}

void SyncAgent::note_access(const platform::ClientResponse& res) {
  if (res.status != 403) return;
  const Json body = Json::parse(res.body, nullptr, false);
  const auto type = body.is_object() ? body.value("type", "") : "";
  if (!type.ends_with("/" + std::string(sync::kProblemTerminalRefused))) return;
  const auto detail = body.is_object() && body.contains("detail") && body["detail"].is_string()
                          ? body["detail"].get<std::string>()
                          : std::string("HQ refuses this terminal");
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "hq_refused_terminal", detail.substr(0, 300));
    return true;
  });
  platform::log_error("HQ refuses this terminal (" + detail.substr(0, 300) +
                      "): revoked or not registered; sales are kept here, redemptions stop, "
                      "provision it again (docs/operations.md)");
}

core::Status SyncAgent::sync_once() {
  if (!tls_)
    return core::fail(core::ErrorCode::kInvalidArgument, "the bundle's credentials do not load");
  // One connection per round, kept alive from the upload to the feed.
  platform::HttpClient client(bundle_.host, bundle_.port, tls_, bundle_.server_name,
                              std::chrono::seconds(20));
  struct Https final : HqLink {
    explicit Https(platform::HttpClient& c) : client(c) {}
    core::Result<platform::ClientResponse> request(platform::http::verb method,
                                                   const std::string& target,
                                                   const std::string& body) override {
      return client.request(method, target, body);
    }
    platform::HttpClient& client;
  } https(client);
  auto ok = sync_round(https);
  if (!ok && client.certificate_time_problem())
    note_clock_error(*client.certificate_time_problem());
  return ok;
}

void SyncAgent::note_clock_error(const std::string& problem) {
  // HQ cannot measure a clock it never hears from: the terminal says it.
  const auto now = clock_();
  const auto text = "cannot reach HQ: " + problem + " (this terminal's clock says " +
                    platform::utc_text(now) + "); set the clock right (NTP)";
  platform::log_warn(text);
  (void)store_.write<bool>([&](Db& db) -> core::Result<bool> {
    sync_set(db, "clock_error", text);
    return true;
  });
}

core::Result<platform::ClientResponse> SyncAgent::ask(const std::string& target, const Json& body,
                                                      std::chrono::milliseconds timeout) {
  if (!tls_)
    return core::fail(core::ErrorCode::kUnavailable, "the bundle's credentials do not load");
  // Connect with the handshake, write, read: each bounded, together about
  // `timeout`.
  platform::HttpClient client(bundle_.host, bundle_.port, tls_, bundle_.server_name, timeout / 3);
  auto res = client.request(platform::http::verb::post, target, body.dump());
  if (!res) return std::unexpected(res.error());
  if (res->status == 404)
    return core::fail(core::ErrorCode::kNotFound, "HQ has no record of the member");
  if (res->status != 200)
    return core::fail(core::ErrorCode::kUnavailable,
                      "HQ answered " + target + " with HTTP " + std::to_string(res->status));
  return res;
}

core::Result<LiveMember> SyncAgent::live_member(const std::string& member_id,
                                                std::chrono::milliseconds timeout) {
  auto res = ask("/v1/sync/live-checks", Json{{"member_id", member_id}}, timeout);
  if (!res) return std::unexpected(res.error());
  return sync::parse_live_check(res->body, member_id);
}

core::Status SyncAgent::sync_round(HqLink& link) {
  auto up = upload(link);
  if (!up) {
    set_online(false);
    return std::unexpected(up.error());
  }
  auto down = pull(link);
  if (!down) {
    set_online(false);
    return std::unexpected(down.error());
  }
  set_online(true);
  return {};
}

void SyncAgent::run() {
  std::mt19937 rng(std::random_device{}());
  std::chrono::milliseconds backoff(500);
  // A restart resumes what was known: online if a round succeeded within
  // the freshness window (measured on the monotonic clock, so a restarted
  // process still knows how long ago that was), offline otherwise.
  for (;;) {
    core::Status ok;
    try {
      ok = sync_once();
    } catch (const core::DataLoss& e) {
      platform::fail_stop(e.what());
    } catch (const std::exception& e) {
      // A hostile or broken answer from HQ must not take the store down.
      set_online(false);
      ok = core::fail(core::ErrorCode::kInternal, std::string("sync round failed: ") + e.what());
    }
    std::chrono::milliseconds wait = interval_;
    if (ok) {
      backoff = std::chrono::milliseconds(500);
      if (feed_behind_) wait = std::chrono::milliseconds(0);  // more of the feed waits
    } else {
      platform::log_warn("sync with HQ failed: " + ok.error().message);
      // Exponential backoff with full jitter, capped at a minute.
      wait = std::chrono::milliseconds(
          std::uniform_int_distribution<long>(backoff.count() / 2, backoff.count())(rng));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(60'000));
    }
    std::unique_lock lock(mutex_);
    const bool failed = !ok;
    cv_.wait_for(lock, wait, [&] { return stopping_ || forced_ || (poked_ && !failed); });
    if (stopping_) return;
    if (forced_) backoff = std::chrono::milliseconds(500);
    poked_ = forced_ = false;
  }
}

}  // namespace loyalty::terminal
