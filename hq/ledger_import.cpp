// HqLedger::import_members: members from a CSV file, with their opening
// points booked in the ledger. Rows are checked one by one; a bad row is
// reported with its line number and reason and the rest still load.
#include <sstream>

#include "core/io_json.h"
#include "core/member_number.h"
#include "hq/ledger.h"
#include "platform/cli.h"

namespace loyalty::hq {

namespace {

// One CSV line (RFC 4180 quoting, no line breaks inside fields).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        out.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

constexpr std::int64_t kMaxOpeningPoints = 1'000'000'000;

const std::vector<std::string> kColumns = {"member_id", "phone", "card_number", "name",
                                           "birthday",  "tier",  "points",      "points_expire_on"};
// An optional last column: the stores that should hold the member from the
// start (with `serve --member-feed visited`), separated by ';'.
const std::string kStoresColumn = "stores";

// The store ids in a `stores` field; nullopt when one is not an id.
std::optional<std::vector<std::string>> stores_in(const std::string& field) {
  std::vector<std::string> out;
  std::string cur;
  for (std::size_t i = 0; i <= field.size(); ++i) {
    if (i == field.size() || field[i] == ';') {
      const auto b = cur.find_first_not_of(' ');
      const auto id =
          b == std::string::npos ? "" : cur.substr(b, cur.find_last_not_of(' ') - b + 1);
      if (!id.empty() && !core::valid_id(id)) return std::nullopt;
      if (!id.empty()) out.push_back(id);
      cur.clear();
    } else {
      cur += field[i];
    }
  }
  return out;
}

}  // namespace

core::Result<Json> HqLedger::import_members(std::istream& in, const std::string& today,
                                            const Progress& progress) {
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line != "\r") lines.push_back(line);
  // A byte-order mark (spreadsheets save UTF-8 CSV with one) is not part
  // of the first column's name.
  if (!lines.empty() && lines[0].starts_with("\xEF\xBB\xBF")) lines[0].erase(0, 3);
  auto header = lines.empty() ? std::vector<std::string>{} : split_csv(lines[0]);
  const bool with_stores = !header.empty() && header.back() == kStoresColumn;
  if (with_stores) header.pop_back();
  if (header != kColumns)
    return core::invalid("header",
                         "the first line must be: member_id,phone,card_number,name,"
                         "birthday,tier,points,points_expire_on (then optionally stores)");
  const std::size_t fields = kColumns.size() + (with_stores ? 1 : 0);
  const auto day = core::parse_local_date(today);
  if (!day) return core::invalid("today", "must be YYYY-MM-DD");
  std::lock_guard lock(mutex_);
  std::int64_t added = 0, rejected = 0, points = 0;
  Json problems = Json::array();
  const auto reject = [&](std::size_t row, const std::string& why) {
    ++rejected;
    if (problems.size() < 200) problems.push_back("line " + std::to_string(row + 1) + ": " + why);
  };
  // The program in force's tiers; without a program in force (members
  // loaded before go-live) tiers are not checked.
  std::optional<std::vector<std::string>> tiers;
  auto prog = in_transaction(db_, [&]() -> core::Result<std::string> {
    if (auto p = program_in_force()) {
      tiers.emplace();
      if ((*p)->tiers)
        for (const auto& t : (*p)->tiers->levels) tiers->push_back(t.id);
    }
    auto rows = db_.query("SELECT program_id FROM programs ORDER BY published_at DESC LIMIT 1");
    return rows.empty() ? std::string("hq") : rows[0].text(0);
  });
  if (!prog) return std::unexpected(prog.error());
  constexpr std::size_t kChunk = 1000;  // rows per database transaction
  for (std::size_t start = 1; start < lines.size(); start += kChunk) {
    auto r = in_transaction(db_, [&]() -> core::Result<bool> {
      for (std::size_t i = start; i < std::min(lines.size(), start + kChunk); ++i) {
        const auto f = split_csv(lines[i]);
        if (f.size() != fields) {
          reject(i,
                 "has " + std::to_string(f.size()) + " fields, expected " + std::to_string(fields));
          continue;
        }
        const auto stores = with_stores ? stores_in(f[8]) : std::vector<std::string>{};
        if (!stores) {
          reject(i, "stores: must be store ids separated by ';'");
          continue;
        }
        Json state{{"id", f[0]}};
        if (!f[4].empty()) state["birthday"] = f[4];
        if (!f[5].empty()) state["tier"] = f[5];
        state["enrolled_on"] = today;
        const auto pts =
            f[6].empty() ? std::optional<std::int64_t>(0) : platform::whole_number(f[6]);
        if (!pts || *pts < 0 || *pts > kMaxOpeningPoints) {
          reject(i, "points: must be a whole number of points from 0 to 1000000000, not '" + f[6] +
                        "'");
          continue;
        }
        if (!f[5].empty() && tiers && std::ranges::find(*tiers, f[5]) == tiers->end()) {
          reject(i, "tier: " + f[5] + " is not a tier of the program in force");
          continue;
        }
        const std::string lot = "IMPORT-" + f[0] + "/lot";
        if (*pts > 0) {
          Json l{{"id", lot}, {"earned_on", today}, {"points", *pts}};
          if (!f[7].empty()) l["expires_on"] = f[7];
          state["lots"] = Json::array({l});
        }
        auto m = core::member_from_json(state);
        if (!m) {
          reject(i, m.error().message);
          continue;
        }
        if (!f[1].empty() && (f[1].size() < 6 || f[1].size() > 20 ||
                              f[1].find_first_not_of("+0123456789") != std::string::npos)) {
          reject(i, "phone: must be 6 to 20 digits");
          continue;
        }
        if (!f[2].empty() && !core::valid_card_number(f[2])) {
          reject(i, "card_number: not 16 digits with a valid check digit (typo?)");
          continue;
        }
        if (!db_.query("SELECT 1 FROM members WHERE id = ?1", {f[0]}).empty()) {
          reject(i, "member_id: " + f[0] + " already exists at HQ");
          continue;
        }
        // A card or phone number finds one member at the till, so it
        // belongs to one member only.
        const auto holder = [&](const char* column, const std::string& value) {
          if (value.empty()) return std::string();
          auto rows =
              db_.query(std::string("SELECT id FROM members WHERE ") + column + " = ?1", {value});
          return rows.empty() ? std::string() : rows[0].text(0);
        };
        if (const auto other = holder("card_number", f[2]); !other.empty()) {
          reject(i, "card_number: " + f[2] + " already belongs to " + other);
          continue;
        }
        if (const auto other = holder("phone", f[1]); !other.empty()) {
          reject(i, "phone: " + f[1] + " already belongs to " + other);
          continue;
        }
        const auto text = core::member_to_json(*m).dump();
        db_.exec(
            "INSERT INTO members(id, card_number, phone, name, state, version) "
            "VALUES (?1, ?2, ?3, ?4, ?5, 1)",
            {f[0], f[2].empty() ? SqlParam(nullptr) : SqlParam(f[2]),
             f[1].empty() ? SqlParam(nullptr) : SqlParam(f[1]), f[3], text});
        if (*pts > 0)
          post({core::Entry{"IMPORT-" + f[0] + "/1", "IMPORT-" + f[0],
                            core::program_account(*prog, "issued"), core::member_account(f[0]),
                            *pts, "pts", lot, "imported opening balance"}},
               kDirect);
        // Held by these stores from the start: the visited feed sends them
        // the member before a first visit, which may come while offline.
        for (const auto& store : *stores)
          db_.exec(
              "INSERT INTO member_stores(member_id, store_id, since) VALUES (?1, ?2, ?3) "
              "ON CONFLICT DO NOTHING",
              {f[0], store, clock_()});
        change_text(sync::MemberChange::kKind, m->id, std::string(kMemberFromRow), "", m->id);
        ++added;
        points += *pts;
      }
      return true;
    });
    if (!r) return std::unexpected(r.error());
    if (progress)
      progress(static_cast<std::int64_t>(std::min(lines.size(), start + kChunk) - 1),
               static_cast<std::int64_t>(lines.size() - 1));
  }
  return Json{{"rows", static_cast<std::int64_t>(lines.size() - 1)},
              {"added", added},
              {"rejected", rejected},
              {"opening_points", points},
              {"problems", problems}};
}

}  // namespace loyalty::hq
