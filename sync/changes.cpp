#include "sync/changes.h"

namespace loyalty::sync {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
// Spelled out for clang 16 (the fuzz build), which lacks aggregate CTAD.
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

template <class T>
void put(Json& j, const char* name, const std::optional<T>& v) {
  if (v) j[name] = *v;
}

template <class T>
std::optional<T> opt(const Json& d, const char* name) {
  const auto it = d.find(name);
  return it == d.end() ? std::nullopt : std::optional<T>(it->get<T>());
}

}  // namespace

std::string kind_of(const ChangeData& c) {
  return std::visit(Overloaded{[](const UnknownChange& u) { return u.kind; },
                               [](const auto& known) { return std::string(known.kKind); }},
                    c);
}

Json to_json(const ChangeData& c) {
  return std::visit(
      Overloaded{
          [](const ProgramChange& p) {
            return Json{{"id", p.id},
                        {"version", p.version},
                        {"effective_from", p.effective_from},
                        {"body", p.body},
                        {"signature", p.signature}};
          },
          [](const MemberChange& m) {
            Json j{{"state", m.state}};
            put(j, "id", m.id);
            put(j, "card_number", m.card_number);
            put(j, "phone", m.phone);
            put(j, "name", m.name);
            put(j, "blocked", m.blocked);
            return j;
          },
          [](const BlockChange& b) {
            return Json{{"member_id", b.member_id}, {"blocked", b.blocked}};
          },
          [](const CodeChange& k) {
            return Json{{"code", k.code}, {"member_id", k.member_id}, {"blocked", k.blocked}};
          },
          [](const FlagChange& f) {
            return Json{{"txn_id", f.txn_id},
                        {"member_id", f.member_id},
                        {"kind", f.kind},
                        {"detail", f.detail}};
          },
          [](const FlagResolvedChange& f) {
            return Json{{"txn_id", f.txn_id}, {"member_id", f.member_id}, {"kind", f.kind}};
          },
          [](const StockChange& s) {
            return Json{{"reward_id", s.reward_id}, {"add", s.add}, {"terminal_id", s.terminal_id}};
          },
          [](const ReceiptChange& r) {
            return Json{
                {"txn_id", r.txn_id}, {"member_id", r.member_id}, {"return_basis", r.return_basis}};
          },
          [](const StaffChange& s) {
            return Json{{"staff_id", s.staff_id},
                        {"name", s.name},
                        {"role", s.role},
                        {"pin_hash", s.pin_hash},
                        {"active", s.active}};
          },
          [](const UnknownChange& u) { return u.data; }},
      c);
}

ChangeData change_from_checked_json(const std::string& kind, const Json& d) {
  if (kind == ProgramChange::kKind)
    return ProgramChange{d.at("id").get<std::string>(), d.at("version").get<std::int64_t>(),
                         d.at("effective_from").get<std::int64_t>(),
                         d.at("body").get<std::string>(), d.at("signature").get<std::string>()};
  if (kind == MemberChange::kKind)
    return MemberChange{opt<std::string>(d, "id"),          d.at("state"),
                        opt<std::string>(d, "card_number"), opt<std::string>(d, "phone"),
                        opt<std::string>(d, "name"),        opt<bool>(d, "blocked")};
  if (kind == BlockChange::kKind)
    return BlockChange{d.at("member_id").get<std::string>(), d.at("blocked").get<bool>()};
  if (kind == CodeChange::kKind)
    return CodeChange{d.at("code").get<std::string>(), d.at("member_id").get<std::string>(),
                      d.at("blocked").get<bool>()};
  if (kind == FlagChange::kKind)
    return FlagChange{d.at("txn_id").get<std::string>(), d.at("member_id").get<std::string>(),
                      d.at("kind").get<std::string>(), d.at("detail").get<std::string>()};
  if (kind == FlagResolvedChange::kKind)
    return FlagResolvedChange{d.at("txn_id").get<std::string>(),
                              d.at("member_id").get<std::string>(),
                              d.at("kind").get<std::string>()};
  if (kind == StockChange::kKind)
    return StockChange{d.at("reward_id").get<std::string>(), d.at("add").get<std::int64_t>(),
                       d.at("terminal_id").get<std::string>()};
  if (kind == ReceiptChange::kKind)
    return ReceiptChange{d.at("txn_id").get<std::string>(), d.at("member_id").get<std::string>(),
                         d.at("return_basis")};
  if (kind == StaffChange::kKind)
    return StaffChange{d.at("staff_id").get<std::string>(), d.at("name").get<std::string>(),
                       d.at("role").get<std::string>(), d.at("pin_hash").get<std::string>(),
                       d.at("active").get<bool>()};
  return UnknownChange{kind, d};
}

}  // namespace loyalty::sync
