#include "sync/protocol.h"

#include <cctype>

#include "core/io_json.h"
#include "core/return_basis.h"

namespace loyalty::sync {

namespace {

constexpr std::pair<BatchStatus, std::string_view> kStatusWords[] = {
    {BatchStatus::kAccepted, "accepted"}, {BatchStatus::kDuplicate, "duplicate"},
    {BatchStatus::kGap, "gap"},           {BatchStatus::kRejected, "rejected"},
    {BatchStatus::kConflict, "conflict"},
};

}  // namespace

namespace {

constexpr std::pair<TxnKind, std::string_view> kKindWords[] = {
    {TxnKind::kPurchase, "purchase"}, {TxnKind::kEvent, "event"},
    {TxnKind::kRedeem, "redeem"},     {TxnKind::kEnrollment, "enrollment"},
    {TxnKind::kReturn, "return"},     {TxnKind::kVoid, "void"},
};

}  // namespace

std::string_view to_string(TxnKind k) {
  for (const auto& [kind, word] : kKindWords)
    if (kind == k) return word;
  return "purchase";  // every enumerator is in the table
}

std::optional<TxnKind> txn_kind_from(std::string_view text) {
  for (const auto& [kind, word] : kKindWords)
    if (word == text) return kind;
  return std::nullopt;
}

std::string_view to_string(BatchStatus s) {
  for (const auto& [status, word] : kStatusWords)
    if (status == s) return word;
  return "unknown";
}

BatchStatus batch_status_from(std::string_view text) {
  for (const auto& [status, word] : kStatusWords)
    if (word == text) return status;
  return BatchStatus::kUnknown;
}

Json to_json(const RecordAnswer& r) {
  Json j{{"txn_id", r.txn_id}, {"seq", r.seq}, {"status", std::string(to_string(r.status))}};
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.expected_seq) j["expected_seq"] = *r.expected_seq;
  if (!r.note.empty()) j["note"] = r.note;
  if (!r.flags.empty()) {
    Json flags = Json::array();
    for (const auto& f : r.flags) flags.push_back({{"kind", f.kind}, {"detail", f.detail}});
    j["flags"] = std::move(flags);
  }
  return j;
}

Json to_json(const BatchAnswer& a) {
  Json results = Json::array();
  for (const auto& r : a.results) results.push_back(to_json(r));
  Json j{{"results", std::move(results)}, {"clock_skew_seconds", a.clock_skew_seconds}};
  if (a.next_seq) j["next_seq"] = *a.next_seq;
  if (a.last_receipt) j["last_receipt"] = *a.last_receipt;
  if (a.gap) j["gap"] = {{"expected_seq", *a.gap}};
  return j;
}

std::string txn_prefix(const std::string& store_id, const std::string& terminal_id) {
  return store_id + "-" + terminal_id + "-";
}

TxnRecord record_of_commit(const core::Program& p, const core::MemberState& before,
                           const core::MemberState& after, const core::Outcome& o,
                           const core::Committed& c, const Json& request, std::int64_t seq,
                           std::int64_t committed_at) {
  const auto& req = o.request;
  TxnRecord r;
  r.txn_id = req.txn_id;
  r.seq = seq;
  r.kind = req.trigger == core::Trigger::kPurchase ? TxnKind::kPurchase
           : req.trigger == core::Trigger::kRedeem ? TxnKind::kRedeem
                                                   : TxnKind::kEvent;
  r.member_id = before.id;
  r.committed_at = committed_at;
  r.local_time = core::format_local_datetime(req.at);
  r.business_day = core::format_local_date(core::day_of(req.at));
  r.zone = req.zone;
  r.program_id = p.id;
  r.program_version = p.version;
  r.request = request;
  r.member_before = core::member_to_json(before);
  r.totals = core::outcome_to_json(o, p)["totals"];
  r.entries = c.entries;
  r.delta = core::diff_member(before, after);
  if (o.earn_expires_on) r.points_expire_on = core::format_local_date(*o.earn_expires_on);
  if (req.trigger == core::Trigger::kPurchase) r.return_basis = core::return_basis_to_json(c);
  return r;
}

Json record_to_json(const TxnRecord& r) {
  Json j{{"txn_id", r.txn_id},
         {"seq", r.seq},
         {"kind", std::string(to_string(r.kind))},
         {"member_id", r.member_id},
         {"committed_at", r.committed_at},
         {"business_day", r.business_day},
         {"local_time", r.local_time},
         {"zone", r.zone},
         {"program", {{"id", r.program_id}, {"version", r.program_version}}},
         {"request", r.request},
         {"member_before", r.member_before},
         {"totals", r.totals},
         {"entries", core::entries_to_json(r.entries)},
         {"delta", core::delta_to_json(r.delta)}};
  if (r.points_expire_on) j["points_expire_on"] = *r.points_expire_on;
  if (r.return_of) j["return_of"] = *r.return_of;
  if (!r.return_basis.is_null()) j["return_basis"] = r.return_basis;
  if (!r.identity.is_null()) j["identity"] = r.identity;
  if (!r.staff_id.empty()) j["staff_id"] = r.staff_id;
  return j;
}

core::Result<TxnRecord> record_from_json(Json j, std::string text) {
  core::Problems problems;
  TxnRecord r;
  {
    core::ObjectReader rd(j, "", problems);
    if (!rd.ok()) return core::invalid("", "a transaction record must be a JSON object");
    r.txn_id = rd.string("txn_id", true).value_or("");
    r.seq = rd.integer("seq", true, 1).value_or(0);
    r.kind =
        txn_kind_from(
            rd.choice("kind", {"purchase", "event", "redeem", "enrollment", "return", "void"}, true)
                .value_or(""))
            .value_or(TxnKind::kPurchase);
    r.member_id = rd.id("member_id", true).value_or("");
    r.committed_at = rd.integer("committed_at", true, 0).value_or(0);
    r.business_day = rd.string("business_day", true).value_or("");
    if (!r.business_day.empty() && !core::parse_local_date(r.business_day))
      rd.problem("business_day", "must be a date YYYY-MM-DD");
    r.local_time = rd.string("local_time", true).value_or("");
    if (!r.local_time.empty() && !core::parse_local_datetime(r.local_time))
      rd.problem("local_time", "must be a local time YYYY-MM-DDTHH:MM:SS");
    r.zone = rd.string("zone", true).value_or("");
    if (const Json* p = rd.get("program", true)) {
      core::ObjectReader pr(*p, rd.path("program"), problems);
      r.program_id = pr.id("id", true).value_or("");
      r.program_version = pr.integer("version", true, 1).value_or(0);
    }
    // Read here, moved out below once the record is valid (no copies).
    (void)rd.get("request", true);
    (void)rd.get("member_before", true);
    if (const Json* v = rd.get("totals", true)) {
      if (!v->is_object()) {
        rd.problem("totals", "must be an object of the outcome's totals");
      } else {
        for (const char* k : {"points_earned", "points_redeemed", "discount", "amount_due"})
          if (!v->contains(k) || !(*v)[k].is_number_integer())
            rd.problem("totals." + std::string(k), "must be an integer");
      }
    }
    if (const Json* v = rd.get("entries", true)) {
      if (!v->is_array()) {
        rd.problem("entries", "must be an array");
      } else {
        for (std::size_t i = 0; i < v->size(); ++i) {
          core::ObjectReader er((*v)[i], core::index_path("entries", i), problems);
          core::Entry e;
          e.id = er.string("id", true).value_or("");
          e.txn_id = r.txn_id;
          e.debit = er.string("debit", true).value_or("");
          e.credit = er.string("credit", true).value_or("");
          e.amount = er.integer("amount", true, 1).value_or(1);
          e.unit = er.string("unit", true).value_or("");
          e.lot = er.string("lot").value_or("");
          e.memo = er.string("memo").value_or("");
          if (!e.id.starts_with(r.txn_id + "/"))
            er.problem("id", "must start with the transaction id");
          if (e.debit == e.credit) er.problem("credit", "must differ from debit");
          r.entries.push_back(std::move(e));
        }
      }
    }
    if (const Json* v = rd.get("delta", true)) {
      auto d = core::delta_from_json(*v);
      if (!d) {
        rd.problem("delta", d.error().message);
      } else {
        r.delta = std::move(*d);
      }
    }
    if (auto e = rd.date("points_expire_on")) r.points_expire_on = core::format_local_date(*e);
    if (auto e = rd.string("return_of")) r.return_of = *e;
    if (auto e = rd.id("staff_id")) r.staff_id = *e;
    (void)rd.get("return_basis");
    if (const Json* v = rd.get("identity")) {
      core::ObjectReader ir(*v, rd.path("identity"), problems);
      r.identity = Json::object();
      for (const char* k : {"card_number", "phone", "name"})
        if (auto s = ir.string(k)) r.identity[k] = *s;
    }
  }
  if (!problems.empty()) {
    std::string msg = problems.front().to_string();
    return std::unexpected(core::Error{core::ErrorCode::kInvalidArgument, msg, problems});
  }
  r.text = text.empty() ? j.dump() : std::move(text);
  r.request = std::move(j["request"]);
  r.member_before = std::move(j["member_before"]);
  r.totals = std::move(j["totals"]);
  if (j.contains("return_basis")) r.return_basis = std::move(j["return_basis"]);
  auto before = core::member_from_json(r.member_before);
  if (!before) return core::invalid("member_before", before.error().message);
  r.before = std::move(*before);
  return r;
}

Json batch_to_json(const Batch& b) {
  Json recs = Json::array();
  for (const auto& r : b.records) recs.push_back(record_to_json(r));
  return {{"store_id", b.store_id},
          {"terminal_id", b.terminal_id},
          {"sent_at", b.sent_at},
          {"transactions", recs}};
}

namespace {

// The batch's own fields from `j`; `count` is how many records it says it
// carries ("transactions" must be an array of at most kMaxBatchRecords).
core::Result<Batch> batch_head(const Json& j, std::size_t& count) {
  core::Problems problems;
  Batch b;
  {
    core::ObjectReader rd(j, "", problems);
    if (!rd.ok()) return core::invalid("", "a batch must be a JSON object");
    b.store_id = rd.id("store_id", true).value_or("");
    b.terminal_id = rd.id("terminal_id", true).value_or("");
    b.sent_at = rd.integer("sent_at", true, 0).value_or(0);
    if (const Json* recs = rd.get("transactions", true)) {
      if (!recs->is_array() || recs->size() > kMaxBatchRecords)
        rd.problem("transactions",
                   "must be an array of at most " + std::to_string(kMaxBatchRecords) + " records");
      count = recs->size();
    }
  }
  if (!problems.empty())
    return std::unexpected(
        core::Error{core::ErrorCode::kInvalidArgument, problems.front().to_string(), problems});
  return b;
}

// Record `i`'s problems, with their paths inside the batch.
core::Error at_record(std::size_t i, core::Error e) {
  for (auto& p : e.problems) p.path = core::join_path(core::index_path("transactions", i), p.path);
  e.message = core::index_path("transactions", i) + ": " + e.message;
  return e;
}

constexpr auto npos = std::string_view::npos;

bool json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && json_space(s[i])) ++i;
  return i;
}

// The end of the string starting at s[i] == '"', or npos.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return npos;
}

// The end of the value starting at s[i], or npos. Only its strings and
// brackets are followed; the value itself is parsed afterwards.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] != '{' && s[i] != '[') {  // a number, true, false or null
    std::size_t j = i;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '+' ||
                            s[j] == '-' || s[j] == '.'))
      ++j;
    // Anything else (a NUL byte, which the parser would take for the end)
    // makes the body one the full parse judges.
    if (j < s.size() && !json_space(s[j]) && s[j] != ',' && s[j] != '}' && s[j] != ']') return npos;
    return j == i ? npos : j;
  }
  int depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      i = skip_string(s, i);
      if (i == npos) return npos;
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if ((c == '}' || c == ']') && --depth == 0) return i + 1;
    ++i;
  }
  return npos;
}

// The top-level object of `s`: its members other than "transactions"
// parsed into `head`, and the texts of the transactions array's elements.
// False when `s` is not such an object (or repeats a key).
bool split_batch(std::string_view s, Json& head, std::vector<std::string_view>& records,
                 bool& have_records) {
  std::size_t i = skip_space(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = skip_space(s, i + 1);
  if (i < s.size() && s[i] == '}') return skip_space(s, i + 1) == s.size();
  while (true) {
    if (i >= s.size() || s[i] != '"') return false;
    const std::size_t key_end = skip_string(s, i);
    if (key_end == npos) return false;
    const Json key = Json::parse(s.substr(i, key_end - i), nullptr, false);
    if (!key.is_string() || head.contains(key.get_ref<const std::string&>())) return false;
    i = skip_space(s, key_end);
    if (i >= s.size() || s[i] != ':') return false;
    i = skip_space(s, i + 1);
    if (key == "transactions" && i < s.size() && s[i] == '[') {
      have_records = true;
      head["transactions"] = Json::array();  // its elements are in `records`
      i = skip_space(s, i + 1);
      if (i < s.size() && s[i] == ']') {
        ++i;
      } else {
        while (true) {
          const std::size_t end = skip_value(s, i);
          if (end == npos) return false;
          records.push_back(s.substr(i, end - i));
          i = skip_space(s, end);
          if (i < s.size() && s[i] == ',') {
            i = skip_space(s, i + 1);
          } else if (i < s.size() && s[i] == ']') {
            ++i;
            break;
          } else {
            return false;
          }
        }
      }
    } else {
      const std::size_t end = skip_value(s, i);
      if (end == npos) return false;
      Json v = Json::parse(s.substr(i, end - i), nullptr, false);
      if (v.is_discarded()) return false;
      head[key.get_ref<const std::string&>()] = std::move(v);
      i = end;
    }
    i = skip_space(s, i);
    if (i < s.size() && s[i] == ',') {
      i = skip_space(s, i + 1);
    } else if (i < s.size() && s[i] == '}') {
      return skip_space(s, i + 1) == s.size();
    } else {
      return false;
    }
  }
}

}  // namespace

std::optional<std::string_view> member_text(std::string_view object, std::string_view key) {
  // Only a well-formed record reaches here (it was parsed), so the scan
  // need not judge the values it skips.
  std::optional<std::string_view> found;
  std::size_t i = skip_space(object, 0);
  if (i >= object.size() || object[i] != '{') return std::nullopt;
  i = skip_space(object, i + 1);
  while (i < object.size() && object[i] == '"') {
    const std::size_t key_end = skip_string(object, i);
    if (key_end == npos) return std::nullopt;
    const auto name = object.substr(i + 1, key_end - i - 2);
    // An escape could spell `key` another way: the caller's own parse decides.
    if (name.find('\\') != npos) return std::nullopt;
    i = skip_space(object, key_end);
    if (i >= object.size() || object[i] != ':') return std::nullopt;
    i = skip_space(object, i + 1);
    const std::size_t end = skip_value(object, i);
    if (end == npos) return std::nullopt;
    if (name == key) {
      if (found) return std::nullopt;  // which one counts is the parser's call
      found = object.substr(i, end - i);
    }
    i = skip_space(object, end);
    if (i < object.size() && object[i] == ',') i = skip_space(object, i + 1);
  }
  return found;
}

std::int64_t receipt_number(std::string_view txn_id) {
  const auto digits = txn_id.substr(txn_id.rfind('-') + 1);
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos)
    return 0;
  std::int64_t n = 0;
  for (const char c : digits) n = n * 10 + (c - '0');
  return n;
}

core::Result<Batch> batch_from_json(Json j) {
  std::size_t count = 0;
  auto b = batch_head(j, count);
  if (!b) return b;
  auto& recs = j["transactions"];
  for (std::size_t i = 0; i < count; ++i) {
    auto r = record_from_json(std::move(recs[i]));
    if (!r) return std::unexpected(at_record(i, r.error()));
    b->records.push_back(std::move(*r));
  }
  return b;
}

std::optional<core::Result<Batch>> batch_from_text(std::string_view body, JsonParse parse) {
  Json head = Json::object();
  std::vector<std::string_view> texts;
  bool have_records = false;
  if (!split_batch(body, head, texts, have_records)) return std::nullopt;
  // Each record parses on its own before anything is judged, so a body
  // that is not JSON is reported as such, whatever else is wrong with it.
  std::vector<Json> docs;
  docs.reserve(texts.size());
  for (const auto t : texts) {
    docs.push_back(parse != nullptr ? parse(t) : Json::parse(t, nullptr, false));
    if (docs.back().is_discarded()) return std::nullopt;
  }
  if (have_records) head["transactions"] = Json::array();
  std::size_t count = 0;
  if (have_records && texts.size() > kMaxBatchRecords) {
    // Let batch_head say so, as for a parsed body.
    for (std::size_t i = 0; i < texts.size(); ++i) head["transactions"].push_back(nullptr);
  }
  auto b = batch_head(head, count);
  if (!b) return b;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto r = record_from_json(std::move(docs[i]), std::string(texts[i]));
    if (!r) return std::unexpected(at_record(i, r.error()));
    b->records.push_back(std::move(*r));
  }
  return b;
}

}  // namespace loyalty::sync
