// Member codes a cashier scans (docs/member-codes.md):
//   - a physical card: 16 digits, the last a Luhn check digit (typos refused);
//   - a static QR: "LM1:" + member id;
//   - a dynamic QR from the member's app: "LD1." + base64url(payload) + "." +
//     base64url(Ed25519 signature), payload "member|expires-unix|nonce",
//     signed by HQ and verified offline with HQ's public key.
// Replay of a dynamic code is caught by the caller (the nonce is stored).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "core/member_number.h"
#include "platform/crypto.h"

namespace loyalty::terminal {

enum class CodeKind { kCard, kStaticQr, kDynamicQr };

struct ScannedCode {
  CodeKind kind = CodeKind::kCard;
  std::string value;  // card number or member id
  std::string nonce;  // dynamic codes
  std::int64_t expires_at = 0;
};

struct CodeProblem {
  std::string type;  // invalid-member-code, member-code-expired, member-code-forged, ...
  std::string detail;
};

// Longest a dynamic code may claim to live: one that says more was not made
// by HQ's app and is refused.
inline constexpr std::int64_t kMaxDynamicLifetime = 300;
// Clock difference tolerated between the phone, HQ and the terminal.
inline constexpr std::int64_t kClockSkew = 30;

std::expected<ScannedCode, CodeProblem> parse_member_code(std::string_view code,
                                                          const platform::SigningKey* hq_key,
                                                          std::int64_t now);

using core::luhn_check_digit;
std::string make_card_number();
std::string mint_dynamic_code(const platform::SigningKey& key, const std::string& member_id,
                              std::int64_t expires_at, const std::string& nonce);

}  // namespace loyalty::terminal
