// The change feed's kinds (docs/sync.md, "Change feed"), one struct each:
// what HQ writes and what a terminal applies. HQ serialises a change with
// to_json(); a terminal gets it from parse_feed_page (sync/feed.h), which
// checks every field before building the struct, and applies it with
// std::visit, so a kind added here without a handler on the terminal does
// not compile. A kind this side does not know arrives as UnknownChange (a
// newer HQ's), and its cursor still moves.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/json_reader.h"

namespace loyalty::sync {

using core::Json;

// A program version, signed by HQ; a terminal verifies it before install.
struct ProgramChange {
  static constexpr std::string_view kKind = "program";
  std::string id;
  std::int64_t version = 0;
  std::int64_t effective_from = 0;  // unix seconds
  std::string body;                 // the program's JSON text, as signed
  std::string signature;            // base64url Ed25519 over body
};

// A member's whole state as HQ has it, and how a till finds them.
struct MemberChange {
  static constexpr std::string_view kKind = "member";
  std::optional<std::string> id;
  Json state;  // core::MemberState as JSON
  std::optional<std::string> card_number, phone, name;
  std::optional<bool> blocked;
};

struct BlockChange {
  static constexpr std::string_view kKind = "block";
  std::string member_id;
  bool blocked = true;
};

// One code (a lost card) blocked or unblocked; the member's others work.
struct CodeChange {
  static constexpr std::string_view kKind = "code";
  std::string code, member_id;
  bool blocked = true;
};

// Something on a member that needs a person at HQ (debt, a voucher used
// twice, a refused sale); every store shows it until it is resolved.
struct FlagChange {
  static constexpr std::string_view kKind = "flag";
  std::string txn_id, member_id, kind, detail;
};

struct FlagResolvedChange {
  static constexpr std::string_view kKind = "flag-resolved";
  std::string txn_id, member_id, kind;
};

// A delivery of a reward's stock to one store's counter terminal.
struct StockChange {
  static constexpr std::string_view kKind = "stock";
  std::string reward_id;
  std::int64_t add = 0;
  std::string terminal_id;  // the counter that holds the goods
};

// A receipt's newest return basis, so any store can take back its lines.
struct ReceiptChange {
  static constexpr std::string_view kKind = "receipt";
  std::string txn_id, member_id;
  Json return_basis;  // core::ReturnBasis as JSON
};

// A staff account for the store counter page (docs/counter.md), sent to
// each store the person works at; `active` false signs them out there for
// good. The PIN travels only as its slow salted hash (platform::hash_pin).
struct StaffChange {
  static constexpr std::string_view kKind = "staff";
  std::string staff_id, name, role;  // role: "clerk" or "supervisor"
  std::string pin_hash;
  bool active = true;
};

// A kind this side does not know: kept so that the cursor moves past it.
struct UnknownChange {
  std::string kind;
  Json data;
};

using ChangeData =
    std::variant<ProgramChange, MemberChange, BlockChange, CodeChange, FlagChange,
                 FlagResolvedChange, StockChange, ReceiptChange, StaffChange, UnknownChange>;

std::string kind_of(const ChangeData& c);
// The change's `data` object as it goes on the wire.
Json to_json(const ChangeData& c);
// The change of `kind` from `data`, whose fields parse_feed_page has
// checked for presence and type; UnknownChange for a kind not above.
ChangeData change_from_checked_json(const std::string& kind, const Json& data);

}  // namespace loyalty::sync
