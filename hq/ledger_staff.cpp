// HqLedger's staff accounts for the store counter page: who may sign in at
// which stores, with what role. HQ hashes the PIN (platform::hash_pin) and
// keeps and sends only the hash; each store's feed carries the accounts of
// the people who work there.
#include <algorithm>
#include <set>

#include "hq/ledger.h"
#include "hq/ledger_internal.h"
#include "platform/crypto.h"

namespace loyalty::hq {

namespace {

std::vector<std::string> split_stores(const std::string& text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= text.size()) {
    const auto j = std::min(text.find(',', i), text.size());
    if (j > i) out.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string join_stores(const std::vector<std::string>& stores) {
  std::string out;
  for (const auto& s : stores) out += (out.empty() ? "" : ",") + s;
  return out;
}

bool valid_pin(const std::string& pin) {
  return pin.size() >= 4 && pin.size() <= 12 &&
         std::all_of(pin.begin(), pin.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Json staff_json(const std::string& id, const std::string& name, const std::string& role,
                const std::vector<std::string>& stores, bool active) {
  return Json{
      {"staff_id", id}, {"name", name}, {"role", role}, {"stores", stores}, {"active", active}};
}

}  // namespace

core::Result<Json> HqLedger::put_staff(const StaffInput& in, const std::string& actor) {
  if (!core::valid_id(in.staff_id))
    return core::invalid("staff_id", "must be 1 to 64 letters, digits, '-', '_' or '.'");
  if (in.name.empty() || in.name.size() > 100)
    return core::invalid("name", "give the name the counter shows (1 to 100 bytes)");
  if (in.role != "clerk" && in.role != "supervisor")
    return core::invalid("role", "must be clerk or supervisor");
  if (!in.pin.empty() && !valid_pin(in.pin)) return core::invalid("pin", "must be 4 to 12 digits");
  if (in.stores.empty()) return core::invalid("stores", "name at least one store they work at");
  for (const auto& s : in.stores)
    if (!core::valid_id(s)) return core::invalid("stores", "'" + s + "' is not a store id");
  // Hashed before the lock: it is slow on purpose.
  const auto new_hash = in.pin.empty() ? std::string() : platform::hash_pin(in.pin);
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    const auto had =
        db_.query("SELECT pin_hash, stores FROM staff WHERE staff_id = ?1", {in.staff_id});
    if (had.empty() && new_hash.empty())
      return core::invalid("pin", "a new account needs a PIN (4 to 12 digits)");
    const auto hash = new_hash.empty() ? had[0].text(0) : new_hash;
    std::set<std::string> stores(in.stores.begin(), in.stores.end());
    const std::vector<std::string> list(stores.begin(), stores.end());
    db_.exec(
        "INSERT INTO staff(staff_id, name, role, pin_hash, stores, active, updated_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6) ON CONFLICT(staff_id) DO UPDATE SET name = ?2, "
        "role = ?3, pin_hash = ?4, stores = ?5, active = 1, updated_at = ?6",
        {in.staff_id, in.name, in.role, hash, join_stores(list), clock_()});
    for (const auto& s : list)
      change(sync::StaffChange{in.staff_id, in.name, in.role, hash, true}, in.staff_id, s);
    if (!had.empty())
      for (const auto& s : split_stores(had[0].text(1)))
        if (!stores.contains(s))
          change(sync::StaffChange{in.staff_id, in.name, in.role, hash, false}, in.staff_id, s);
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, had.empty() ? "staff-add" : "staff-change",
              in.staff_id + " (" + in.role + ") at " + join_stores(list) +
                  (new_hash.empty() ? "" : ", new PIN"),
              clock_()});
    return staff_json(in.staff_id, in.name, in.role, list, true);
  });
}

core::Result<Json> HqLedger::disable_staff(const std::string& staff_id, const std::string& actor) {
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    const auto had = db_.query(
        "SELECT name, role, pin_hash, stores, active FROM staff WHERE staff_id = ?1", {staff_id});
    if (had.empty())
      return core::fail(core::ErrorCode::kNotFound, "no staff account " + staff_id + " at HQ");
    const auto& r = had[0];
    const auto stores = split_stores(r.text(3));
    if (r.integer(4) == 0)
      return core::fail(core::ErrorCode::kFailedPrecondition,
                        "staff account " + staff_id + " is already disabled");
    db_.exec("UPDATE staff SET active = 0, updated_at = ?2 WHERE staff_id = ?1",
             {staff_id, clock_()});
    for (const auto& s : stores)
      change(sync::StaffChange{staff_id, r.text(0), r.text(1), r.text(2), false}, staff_id, s);
    db_.exec("INSERT INTO audit(actor, action, detail, created_at) VALUES (?1, ?2, ?3, ?4)",
             {actor, "staff-disable", staff_id, clock_()});
    return staff_json(staff_id, r.text(0), r.text(1), stores, false);
  });
}

core::Result<Json> HqLedger::staff() {
  std::lock_guard lock(mutex_);
  return in_transaction(db_, [&]() -> core::Result<Json> {
    Json out = Json::array();
    for (const auto& r :
         db_.query("SELECT staff_id, name, role, stores, active FROM staff ORDER BY staff_id"))
      out.push_back(
          staff_json(r.text(0), r.text(1), r.text(2), split_stores(r.text(3)), r.integer(4) != 0));
    return Json{{"staff", out}};
  });
}

}  // namespace loyalty::hq
