#include "platform/crypto.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace loyalty::platform {

namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

SigningKey SigningKey::generate() {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr) throw std::runtime_error("Ed25519 key generation failed");
  SigningKey k;
  k.key_.reset(raw, EVP_PKEY_free);
  k.private_ = true;
  return k;
}

core::Result<SigningKey> SigningKey::from_pem(std::string_view pem) {
  SigningKey k;
  {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)) {
      k.key_.reset(raw, EVP_PKEY_free);
      k.private_ = true;
    }
  }
  if (!k.key_) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr))
      k.key_.reset(raw, EVP_PKEY_free);
  }
  if (!k.key_) return core::invalid("key", "not a PEM private or public key");
  if (EVP_PKEY_get_base_id(k.key_.get()) != EVP_PKEY_ED25519)
    return core::invalid("key", "must be an Ed25519 key");
  return k;
}

core::Result<SigningKey> SigningKey::from_file(const std::string& path) {
  auto text = read_text_file(path, 64 * 1024);
  if (!text) return std::unexpected(text.error());
  auto k = from_pem(*text);
  if (!k) return core::invalid(path, k.error().problems.front().message);
  return k;
}

std::string SigningKey::private_pem() const {
  if (!private_) return {};
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return bio_text(bio.get());
}

std::string SigningKey::public_pem() const {
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key_.get());
  return bio_text(bio.get());
}

std::string SigningKey::sign(std::string_view message) const {
  if (!private_) throw std::logic_error("sign with a public-only key");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  std::string sig(64, '\0');
  std::size_t len = sig.size();
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    throw std::runtime_error("Ed25519 signing failed");
  sig.resize(len);
  return sig;
}

bool SigningKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

std::string random_hex(std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : random_bytes(bytes)) {
    const auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> md{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

namespace {

constexpr std::string_view kPinScheme = "pbkdf2-sha256";

std::string pbkdf2(std::string_view pin, std::string_view salt, int iterations) {
  std::string out(32, '\0');
  if (PKCS5_PBKDF2_HMAC(pin.data(), static_cast<int>(pin.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1)
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  return out;
}

}  // namespace

std::string hash_pin(std::string_view pin, int iterations) {
  const auto salt = random_bytes(16);
  return std::string(kPinScheme) + "$" + std::to_string(iterations) + "$" + base64url_encode(salt) +
         "$" + base64url_encode(pbkdf2(pin, salt, iterations));
}

bool verify_pin(std::string_view pin, std::string_view stored) {
  // scheme $ iterations $ salt $ hash
  std::string_view part[4];
  for (int i = 0; i < 4; ++i) {
    const auto d = stored.find('$');
    if ((i < 3) == (d == std::string_view::npos)) return false;
    part[i] = stored.substr(0, d);
    stored = i < 3 ? stored.substr(d + 1) : std::string_view();
  }
  if (part[0] != kPinScheme || part[1].empty() || part[1].size() > 7 ||
      part[1].find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  const int iterations = std::stoi(std::string(part[1]));
  const auto salt = base64url_decode(part[2]);
  const auto want = base64url_decode(part[3]);
  if (iterations < 1 || !salt || !want || want->size() != 32) return false;
  const auto got = pbkdf2(pin, *salt, iterations);
  return CRYPTO_memcmp(got.data(), want->data(), got.size()) == 0;
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

std::string base64url_encode(std::string_view raw) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    const char* p = std::strchr(kB64, ch);
    if (ch == '\0' || p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

core::Status write_private_file(const std::string& path, std::string_view content, unsigned mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return core::fail(core::ErrorCode::kUnavailable,
                      "cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, mode);
  std::size_t off = 0;
  while (off < content.size()) {
    const auto n = ::write(fd, content.data() + off, content.size() - off);
    if (n <= 0) {
      ::close(fd);
      return core::fail(core::ErrorCode::kUnavailable, "cannot write " + tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return core::fail(core::ErrorCode::kUnavailable, "cannot write " + path);
  return {};
}

core::Result<std::string> read_text_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::fail(core::ErrorCode::kNotFound, "cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > max_bytes)
    return core::invalid(path, "larger than " + std::to_string(max_bytes) + " bytes");
  return ss.str();
}

}  // namespace loyalty::platform
