// Ed25519 signatures, random tokens, SHA-256 and base64url, via OpenSSL.
// HQ signs dynamic member codes and programs with its private key; terminals
// verify offline with the public key from their provisioning bundle.
//
// Thread-safety: keys are immutable after loading; all functions are safe to
// call concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace loyalty::platform {

class SigningKey {
 public:
  // A fresh Ed25519 key pair.
  static SigningKey generate();
  // PEM text: a PKCS#8 private key (can sign) or a SubjectPublicKeyInfo
  // public key (verifies only).
  static core::Result<SigningKey> from_pem(std::string_view pem);
  static core::Result<SigningKey> from_file(const std::string& path);

  std::string private_pem() const;  // empty for a public-only key
  std::string public_pem() const;
  bool can_sign() const { return private_; }

  std::string sign(std::string_view message) const;  // 64 raw bytes
  bool verify(std::string_view message, std::string_view signature) const;

 private:
  std::shared_ptr<EVP_PKEY> key_;
  bool private_ = false;
};

std::string random_bytes(std::size_t n);
std::string random_hex(std::size_t bytes);
std::string sha256_hex(std::string_view data);
std::string base64url_encode(std::string_view raw);
// nullopt when `text` holds anything but base64url characters.
std::optional<std::string> base64url_decode(std::string_view text);

// A staff PIN's slow salted hash: PBKDF2-HMAC-SHA256 (OpenSSL), written as
// "pbkdf2-sha256$<iterations>$<salt>$<hash>" (base64url), so the cost can be
// raised later without breaking stored hashes. `iterations` is for tests.
inline constexpr int kPinIterations = 100'000;
std::string hash_pin(std::string_view pin, int iterations = kPinIterations);
// Whether `pin` matches `stored` (a hash_pin() text), compared in constant
// time; false for a text of another form.
bool verify_pin(std::string_view pin, std::string_view stored);

// Writes `content` to `path` atomically with the given mode (0600 for secrets).
[[nodiscard]] core::Status write_private_file(const std::string& path, std::string_view content,
                                              unsigned mode = 0600);
[[nodiscard]] core::Result<std::string> read_text_file(const std::string& path,
                                                       std::size_t max_bytes = 1 << 22);

}  // namespace loyalty::platform
