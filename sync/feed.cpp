#include "sync/feed.h"

#include "core/io_json.h"

namespace loyalty::sync {

namespace {

enum class Type { kString, kInteger, kBoolean, kObject };

bool has_type(const Json& v, Type t) {
  switch (t) {
    case Type::kString: return v.is_string();
    case Type::kInteger: return v.is_number_integer();
    case Type::kBoolean: return v.is_boolean();
    case Type::kObject: return v.is_object();
  }
  return false;
}

struct Field {
  const char* name;
  Type type;
  bool required;
};

// The fields the terminal reads from each kind of change.
const std::vector<Field>* fields_of(const std::string& kind) {
  static const std::vector<Field> program = {{"id", Type::kString, true},
                                             {"version", Type::kInteger, true},
                                             {"effective_from", Type::kInteger, true},
                                             {"body", Type::kString, true},
                                             {"signature", Type::kString, true}};
  static const std::vector<Field> member = {
      {"state", Type::kObject, true},        {"id", Type::kString, false},
      {"card_number", Type::kString, false}, {"phone", Type::kString, false},
      {"name", Type::kString, false},        {"blocked", Type::kBoolean, false}};
  static const std::vector<Field> block = {{"member_id", Type::kString, true},
                                           {"blocked", Type::kBoolean, true}};
  static const std::vector<Field> code = {{"code", Type::kString, true},
                                          {"member_id", Type::kString, true},
                                          {"blocked", Type::kBoolean, true}};
  static const std::vector<Field> flag = {{"txn_id", Type::kString, true},
                                          {"member_id", Type::kString, true},
                                          {"kind", Type::kString, true},
                                          {"detail", Type::kString, true}};
  static const std::vector<Field> flag_resolved = {{"txn_id", Type::kString, true},
                                                   {"member_id", Type::kString, true},
                                                   {"kind", Type::kString, true}};
  static const std::vector<Field> stock = {{"reward_id", Type::kString, true},
                                           {"add", Type::kInteger, true},
                                           {"terminal_id", Type::kString, true}};
  static const std::vector<Field> receipt = {{"txn_id", Type::kString, true},
                                             {"member_id", Type::kString, true},
                                             {"return_basis", Type::kObject, true}};
  static const std::vector<Field> staff = {{"staff_id", Type::kString, true},
                                           {"name", Type::kString, true},
                                           {"role", Type::kString, true},
                                           {"pin_hash", Type::kString, true},
                                           {"active", Type::kBoolean, true}};
  if (kind == ProgramChange::kKind) return &program;
  if (kind == MemberChange::kKind) return &member;
  if (kind == BlockChange::kKind) return &block;
  if (kind == CodeChange::kKind) return &code;
  if (kind == FlagChange::kKind) return &flag;
  if (kind == FlagResolvedChange::kKind) return &flag_resolved;
  if (kind == StockChange::kKind) return &stock;
  if (kind == ReceiptChange::kKind) return &receipt;
  if (kind == StaffChange::kKind) return &staff;
  return nullptr;
}

core::Error malformed(const std::string& what) {
  return core::Error::make(core::ErrorCode::kUnavailable, "HQ's answer is malformed: " + what);
}

}  // namespace

core::Result<FeedPage> parse_feed_page(std::string_view body, std::int64_t after) {
  const Json page = Json::parse(body, nullptr, false);
  if (!page.is_object()) return std::unexpected(malformed("the feed page is not a JSON object"));
  if (!page.contains("changes") || !page["changes"].is_array())
    return std::unexpected(malformed("changes: must be an array"));
  if (!page.contains("next_cursor") || !page["next_cursor"].is_number_integer())
    return std::unexpected(malformed("next_cursor: must be an integer"));
  if (page.contains("more") && !page["more"].is_boolean())
    return std::unexpected(malformed("more: must be true or false"));
  FeedPage out;
  out.next_cursor = page["next_cursor"].get<std::int64_t>();
  out.more = page.value("more", false);
  std::int64_t last = after;
  const auto& changes = page["changes"];
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    const auto at = core::index_path("changes", i);
    if (!c.is_object() || !c.contains("cursor") || !c["cursor"].is_number_integer() ||
        !c.contains("kind") || !c["kind"].is_string() || !c.contains("data") ||
        !c["data"].is_object() || (c.contains("key") && !c["key"].is_string()))
      return std::unexpected(
          malformed(at + ": must be an object with integer cursor, string kind and object data"));
    Change ch;
    ch.cursor = c["cursor"].get<std::int64_t>();
    if (ch.cursor <= last)
      return std::unexpected(malformed(at + ".cursor: must be above " + std::to_string(last)));
    last = ch.cursor;
    const auto kind = c["kind"].get<std::string>();
    ch.key = c.value("key", "");
    const auto& data = c["data"];
    if (const auto* fields = fields_of(kind))
      for (const auto& f : *fields) {
        const bool present = data.contains(f.name);
        if ((f.required && !present) || (present && !has_type(data[f.name], f.type)))
          return std::unexpected(
              malformed(at + ".data." + f.name + ": missing or of the wrong type"));
      }
    ch.data = change_from_checked_json(kind, data);
    out.changes.push_back(std::move(ch));
  }
  if (out.next_cursor < last)
    return std::unexpected(malformed("next_cursor: must not be below the last change's cursor"));
  return out;
}

core::Result<BatchAnswer> parse_batch_answer(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("results") || !j["results"].is_array())
    return std::unexpected(malformed("the batch answer has no results array"));
  if (j.contains("clock_skew_seconds") && !j["clock_skew_seconds"].is_number_integer())
    return std::unexpected(malformed("clock_skew_seconds: must be an integer"));
  BatchAnswer out;
  out.clock_skew_seconds = j.value("clock_skew_seconds", std::int64_t{0});
  for (auto [name, field] :
       {std::pair{"next_seq", &out.next_seq}, std::pair{"last_receipt", &out.last_receipt}}) {
    const auto f = j.find(name);
    if (f == j.end()) continue;
    // Bounded: the terminal numbers its own sales after these.
    if (!f->is_number_integer() || f->get<std::int64_t>() < 0 ||
        f->get<std::int64_t>() > kMaxNumbering)
      return std::unexpected(malformed(std::string(name) + ": must be an integer from 0 to " +
                                       std::to_string(kMaxNumbering)));
    *field = f->get<std::int64_t>();
  }
  for (std::size_t i = 0; i < j["results"].size(); ++i) {
    const auto& r = j["results"][i];
    if (!r.is_object() || !r.contains("txn_id") || !r["txn_id"].is_string() ||
        !r.contains("status") || !r["status"].is_string())
      return std::unexpected(malformed(core::index_path("results", i) +
                                       ": must be an object with string txn_id and status"));
    // The rest is read leniently: it goes to the log and the till's list of
    // refused sales, never into a balance.
    RecordAnswer a;
    a.txn_id = r["txn_id"].get<std::string>();
    a.status = batch_status_from(r["status"].get<std::string>());
    if (const auto s = r.find("seq"); s != r.end() && s->is_number_integer())
      a.seq = s->get<std::int64_t>();
    if (const auto s = r.find("reason"); s != r.end() && s->is_string())
      a.reason = s->get<std::string>().substr(0, 1000);
    if (const auto s = r.find("note"); s != r.end() && s->is_string())
      a.note = s->get<std::string>().substr(0, 1000);
    if (const auto s = r.find("expected_seq"); s != r.end() && s->is_number_integer())
      a.expected_seq = s->get<std::int64_t>();
    out.results.push_back(std::move(a));
  }
  return out;
}

core::Result<LiveMember> parse_live_check(std::string_view body, const std::string& member_id) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return std::unexpected(malformed("the live check is not a JSON object"));
  const auto id = j.find("member_id");
  if (id == j.end() || !id->is_string() || id->get<std::string>() != member_id)
    return std::unexpected(malformed("the live check is about another member"));
  const auto blocked = j.find("blocked");
  if (blocked == j.end() || !blocked->is_boolean())
    return std::unexpected(malformed("blocked: must be true or false"));
  const auto seq = j.find("applied_seq");
  if (seq == j.end() || !seq->is_number_integer() || seq->get<std::int64_t>() < 0)
    return std::unexpected(malformed("applied_seq: must be an integer >= 0"));
  const auto member = j.find("member");
  if (member == j.end()) return std::unexpected(malformed("member: missing"));
  auto state = core::member_from_json(*member);
  if (!state) return std::unexpected(malformed("member: " + state.error().message));
  if (state->id != member_id)
    return std::unexpected(malformed("member: carries another member's state"));
  return LiveMember{std::move(*state), blocked->get<bool>(), seq->get<std::int64_t>()};
}

}  // namespace loyalty::sync
