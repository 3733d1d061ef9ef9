#include "terminal/member_codes.h"

#include <algorithm>
#include <charconv>

namespace loyalty::terminal {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool member_id_ok(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
           c == '_';
  });
}

CodeProblem bad(std::string detail) {
  return {"invalid-member-code", std::move(detail)};
}

std::expected<ScannedCode, CodeProblem> parse_dynamic(std::string_view code,
                                                      const platform::SigningKey* key,
                                                      std::int64_t now) {
  const auto dot = code.rfind('.');
  if (dot == std::string_view::npos || dot < 4)
    return std::unexpected(bad("the app code is incomplete; ask the member to show it again"));
  const auto signed_part = code.substr(0, dot);
  const auto payload = platform::base64url_decode(code.substr(4, dot - 4));
  const auto sig = platform::base64url_decode(code.substr(dot + 1));
  if (!payload || !sig)
    return std::unexpected(bad("the app code is damaged; ask the member to show it again"));
  if (key == nullptr)
    return std::unexpected(CodeProblem{
        "member-code-unverifiable",
        "this terminal has no HQ public key yet, so app codes cannot be checked; scan the "
        "member's card or look them up by phone"});
  if (!key->verify(signed_part, *sig))
    return std::unexpected(CodeProblem{
        "member-code-forged",
        "the app code's signature is not HQ's; do not accept it, ask for the member's card"});
  // The signature holds, so the payload is HQ's: "member|expires|nonce".
  const auto p1 = payload->find('|');
  const auto p2 = payload->find('|', p1 == std::string::npos ? p1 : p1 + 1);
  if (p1 == std::string::npos || p2 == std::string::npos)
    return std::unexpected(bad("the app code's contents are not in the expected form"));
  ScannedCode out;
  out.kind = CodeKind::kDynamicQr;
  out.value = payload->substr(0, p1);
  const auto exp = std::string_view(*payload).substr(p1 + 1, p2 - p1 - 1);
  out.nonce = payload->substr(p2 + 1);
  if (std::from_chars(exp.data(), exp.data() + exp.size(), out.expires_at).ec != std::errc{} ||
      !member_id_ok(out.value) || out.nonce.size() < 8)
    return std::unexpected(bad("the app code's contents are not in the expected form"));
  if (out.expires_at + kClockSkew < now)
    return std::unexpected(CodeProblem{"member-code-expired",
                                       "the app code has expired; ask the member to refresh it"});
  if (out.expires_at > now + kMaxDynamicLifetime + kClockSkew)
    return std::unexpected(
        CodeProblem{"member-code-expired",
                    "the app code claims to be valid too far ahead; check the terminal's clock"});
  return out;
}

}  // namespace

std::string make_card_number() {
  std::string digits = "9";
  for (char c : platform::random_bytes(14))
    digits += static_cast<char>('0' + static_cast<unsigned char>(c) % 10);
  return digits + luhn_check_digit(digits);
}

std::string mint_dynamic_code(const platform::SigningKey& key, const std::string& member_id,
                              std::int64_t expires_at, const std::string& nonce) {
  const std::string signed_part =
      "LD1." +
      platform::base64url_encode(member_id + "|" + std::to_string(expires_at) + "|" + nonce);
  return signed_part + "." + platform::base64url_encode(key.sign(signed_part));
}

std::expected<ScannedCode, CodeProblem> parse_member_code(std::string_view code,
                                                          const platform::SigningKey* hq_key,
                                                          std::int64_t now) {
  if (code.size() > 512)
    return std::unexpected(bad("the code is far too long to be a member code"));
  if (code.starts_with("LD1.")) return parse_dynamic(code, hq_key, now);
  if (code.starts_with("LM1:")) {
    const auto id = code.substr(4);
    if (!member_id_ok(id)) return std::unexpected(bad("the QR code does not hold a member id"));
    return ScannedCode{CodeKind::kStaticQr, std::string(id), {}, 0};
  }
  if (all_digits(code)) {
    if (code.size() != 16)
      return std::unexpected(bad("a card number has 16 digits; this has " +
                                 std::to_string(code.size()) + ", check for a typo"));
    if (luhn_check_digit(code.substr(0, 15)) != code[15])
      return std::unexpected(bad("the card number's check digit does not match; re-enter it"));
    return ScannedCode{CodeKind::kCard, std::string(code), {}, 0};
  }
  return std::unexpected(
      bad("not a member code: expected a 16-digit card number, an LM1: QR or an LD1. app code"));
}

}  // namespace loyalty::terminal
