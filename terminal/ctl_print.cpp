#include "terminal/ctl_print.h"

#include "core/text_width.h"

namespace loyalty::terminal {

using core::Json;

namespace {

// `text` padded to `width` display columns (left-aligned).
std::string cell(const std::string& text, std::size_t width) {
  const auto w = core::display_width(text);
  return w >= width ? text + " " : text + std::string(width - w, ' ');
}

std::string right(const std::string& text, std::size_t width) {
  const auto w = core::display_width(text);
  return w >= width ? " " + text : std::string(width - w, ' ') + text;
}

}  // namespace

std::string money_text(std::int64_t minor, const std::string& currency) {
  const bool neg = minor < 0;
  // Unsigned, so the most negative amount prints too.
  const auto a = neg ? 0 - static_cast<std::uint64_t>(minor) : static_cast<std::uint64_t>(minor);
  const auto cents = a % 100;
  std::string num = std::to_string(a / 100) + "." + (cents < 10 ? "0" : "") + std::to_string(cents);
  if (neg) num = "-" + num;
  return currency == "CNY" ? "¥" + num : num + " " + currency;
}

void print_member(const Json& m, std::ostream& out) {
  if (m.value("blocked", false))
    out << "*** BLOCKED 已冻结: HQ blocked this membership; no loyalty for it ***\n";
  const auto& flags = m.contains("hq_flags") ? m["hq_flags"] : Json::array();
  for (const auto& f : flags)
    out << "HQ FLAG     " << f.value("kind", "") << " (" << f.value("receipt_id", "")
        << "): " << f.value("detail", "") << "\n";
  out << "name        " << (m.value("name", "").empty() ? "-" : m.value("name", "")) << "\n";
  out << "member      " << m.value("member_id", "") << "  card " << m.value("card_number", "")
      << "  phone " << m.value("phone", "") << "\n";
  out << "tier        " << m["tier"].value("name", "") << "\n";
  const auto& p = m["points"];
  out << "points      " << p.value("available", 0) << " available";
  if (p.value("pending_sync", 0) != 0)
    out << " (" << p.value("pending_sync", 0) << " pending sync)";
  if (p.value("debt", 0) != 0) out << ", debt " << p.value("debt", 0);
  out << "\n";
  for (const auto& e : p["expiring"])
    out << "            " << e.value("points", 0) << " expire on " << e.value("expires_on", "")
        << "\n";
  for (const auto& s : m["stamps"])
    out << "stamps      " << s.value("name", "") << ": " << s.value("stamps", 0) << "/"
        << s.value("required", 0) << "\n";
  for (const auto& v : m["vouchers"])
    out << "voucher     " << v.value("code", "") << "  " << v.value("name", "") << "\n";
  const auto& sv = m["stored_value"];
  const auto cur = sv.value("currency", "CNY");
  const auto base = sv.value("base", std::int64_t{0}), bonus = sv.value("bonus", std::int64_t{0});
  out << "stored val  " << money_text(base + bonus, cur) << " (paid " << money_text(base, cur)
      << " + bonus " << money_text(bonus, cur) << ")\n";
  if (m.contains("next_tier")) {
    out << "next tier   " << m["next_tier"].value("name", "");
    for (const auto& g : m["next_tier"]["goals"])
      out << "  " << g.value("metric", "") << " " << g.value("current", 0) << "/"
          << g.value("target", 0);
    out << "\n";
  }
}

void print_receipt(const Json& j, std::ostream& out) {
  if (j.contains("receipt_id")) out << "receipt " << j["receipt_id"].get<std::string>() << "\n";
  for (const auto& line : j.value("receipt", Json::array())) out << line.get<std::string>() << "\n";
  if (j.contains("redemption") && j["redemption"].contains("refused"))
    out << "redemption refused: " << j["redemption"]["refused"].value("detail", "") << "\n";
}

void print_rewards(const Json& r, std::ostream& out) {
  out << cell("reward", 16) << cell("name", 24) << right("points", 8) << right("cash", 10)
      << right("stock", 7) << "  note\n";
  for (const auto& rw : r["rewards"]) {
    const auto stock = rw["stock"].is_number() ? std::to_string(rw["stock"].get<std::int64_t>())
                                               : std::string("-");
    std::string note;
    if (!rw.value("available_today", true)) note += "not today ";
    if (!rw.value("min_tier", "").empty()) note += rw.value("min_tier", "") + "+ ";
    if (rw["stock"].is_number() && rw["stock"].get<std::int64_t>() <= 0) note += "out of stock";
    out << cell(rw.value("reward", ""), 16) << cell(rw.value("name", ""), 24)
        << right(std::to_string(rw.value("points", 0)), 8)
        << right(money_text(rw.value("cash", std::int64_t{0})), 10) << right(stock, 7) << "  "
        << note << "\n";
  }
}

void print_transaction(const Json& t, std::ostream& out) {
  print_receipt(t, out);
  if (t.contains("staff_id")) out << "made by " << t["staff_id"].get<std::string>() << "\n";
  if (t.contains("voided_by")) out << "voided by " << t["voided_by"].get<std::string>() << "\n";
  if (!t.contains("returnable")) return;
  out << "\n"
      << right("line", 4) << "  " << cell("item", 24) << right("sold", 5) << right("returned", 9)
      << right("left", 5) << "\n";
  for (const auto& l : t["returnable"])
    out << right(std::to_string(l.value("line", 0)), 4) << "  " << cell(l.value("name", ""), 24)
        << right(std::to_string(l.value("quantity", 0)), 5)
        << right(std::to_string(l.value("returned", 0)), 9)
        << right(std::to_string(l.value("left", 0)), 5) << "\n";
}

}  // namespace loyalty::terminal
