#include "platform/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

#include "platform/crypto.h"

namespace loyalty::platform {

namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using BnPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// Every OpenSSL call that can fail goes through need(): a failure (out of
// memory, a bad parameter) throws here and becomes the caller's error, so
// no certificate is ever issued half-built or unsigned.
struct OpenSslFailure {
  std::string what;
};

void need(bool ok, const char* what) {
  if (!ok) throw OpenSslFailure{std::string("OpenSSL ") + what + " failed"};
}

KeyPtr new_key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
  need(key != nullptr, "EVP_PKEY_Q_keygen");
  return key;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  need(n > 0 && data != nullptr, "BIO_get_mem_data");
  return std::string(data, static_cast<std::size_t>(n));
}

BioPtr mem_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  need(bio != nullptr, "BIO_new");
  return bio;
}

std::string pem_of(X509* cert) {
  auto bio = mem_bio();
  need(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return bio_text(bio.get());
}

std::string pem_of(EVP_PKEY* key) {
  auto bio = mem_bio();
  need(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
       "PEM_write_bio_PrivateKey");
  return bio_text(bio.get());
}

// nullptr when `pem` is not a certificate (the caller says which input).
CertPtr read_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  need(bio != nullptr, "BIO_new_mem_buf");
  return CertPtr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
}

KeyPtr read_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  need(bio != nullptr, "BIO_new_mem_buf");
  return KeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  need(ext != nullptr, "X509V3_EXT_conf_nid");
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  need(added == 1, "X509_add_ext");
}

// Issued certificates are valid from this long before now.
constexpr long kNotBeforeBackdateSeconds = 60L * 86400;

CertPtr new_cert(EVP_PKEY* key, const std::string& cn, int days) {
  CertPtr cert(X509_new(), X509_free);
  need(cert != nullptr, "X509_new");
  need(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
  const auto serial = random_bytes(16);
  BnPtr bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr), BN_free);
  need(bn != nullptr, "BN_bin2bn");
  need(BN_set_bit(bn.get(), 127) == 1, "BN_set_bit");  // positive, full length
  need(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) != nullptr,
       "BN_to_ASN1_INTEGER");
  // Valid from well before now: a till whose clock is days behind (a dead
  // RTC battery, a wrong manual setting) must still accept HQ's freshly
  // issued certificate, or it could never sync to be told its clock is off.
  need(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kNotBeforeBackdateSeconds) != nullptr,
       "X509_gmtime_adj");
  need(X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) != nullptr,
       "X509_gmtime_adj");
  need(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  need(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                  0) == 1,
       "X509_NAME_add_entry_by_txt");
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  need(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
}

}  // namespace

core::Result<CertKey> make_ca(const std::string& cn, int days) try {
  auto key = new_key();
  auto cert = new_cert(key.get(), cn, days);
  need(X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) == 1,
       "X509_set_issuer_name");
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  sign(cert.get(), key.get());
  return CertKey{pem_of(cert.get()), pem_of(key.get())};
} catch (const OpenSslFailure& e) {
  return core::fail(core::ErrorCode::kInternal, "cannot make the CA " + cn + ": " + e.what);
}

core::Result<CertKey> issue_cert(const CertKey& ca, const std::string& cn, bool server,
                                 const std::vector<std::string>& dns,
                                 const std::vector<std::string>& ips, int days) try {
  auto ca_cert = read_cert(ca.cert_pem);
  auto ca_key = read_key(ca.key_pem);
  if (!ca_cert || !ca_key) return core::invalid("ca", "the CA certificate or key does not load");
  auto key = new_key();
  auto cert = new_cert(key.get(), cn, days);
  need(X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) == 1,
       "X509_set_issuer_name");
  add_ext(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), ca_cert.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  add_ext(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& d : dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& i : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
  if (!san.empty()) add_ext(cert.get(), ca_cert.get(), NID_subject_alt_name, san);
  sign(cert.get(), ca_key.get());
  return CertKey{pem_of(cert.get()), pem_of(key.get())};
} catch (const OpenSslFailure& e) {
  return core::fail(core::ErrorCode::kInternal,
                    "cannot issue the certificate for " + cn + ": " + e.what);
}

core::Result<std::string> cert_fingerprint(const std::string& cert_pem) try {
  auto cert = read_cert(cert_pem);
  if (!cert) return core::invalid("certificate", "not a PEM certificate");
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert.get(), &der);
  if (n <= 0) return core::invalid("certificate", "cannot encode");
  auto hex =
      sha256_hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  return hex;
} catch (const OpenSslFailure& e) {
  return core::fail(core::ErrorCode::kInternal, "cannot fingerprint the certificate: " + e.what);
}

namespace {

namespace ssl = boost::asio::ssl;

core::Result<std::shared_ptr<ssl::context>> make_context(ssl::context::method method,
                                                         const std::string& ca_pem,
                                                         const std::string& cert_pem,
                                                         const std::string& key_pem) {
  auto ctx = std::make_shared<ssl::context>(method);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (ec) return core::fail(core::ErrorCode::kInternal, "cannot set TLS options: " + ec.message());
  ctx->add_certificate_authority(boost::asio::buffer(ca_pem), ec);
  if (ec) return core::invalid("ca", "the CA certificate does not load: " + ec.message());
  if (!cert_pem.empty()) {
    ctx->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
    if (!ec) ctx->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
    if (ec)
      return core::invalid("certificate", "certificate or key does not load: " + ec.message());
  }
  return ctx;
}

}  // namespace

core::Result<std::shared_ptr<ssl::context>> server_tls(const std::string& ca_pem,
                                                       const std::string& cert_pem,
                                                       const std::string& key_pem,
                                                       bool require_client_cert) {
  auto ctx = make_context(ssl::context::tls_server, ca_pem, cert_pem, key_pem);
  if (!ctx) return ctx;
  (*ctx)->set_verify_mode(require_client_cert ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                              : ssl::verify_none);
  return ctx;
}

core::Result<std::shared_ptr<ssl::context>> client_tls(const std::string& ca_pem,
                                                       const std::string& cert_pem,
                                                       const std::string& key_pem) {
  auto ctx = make_context(ssl::context::tls_client, ca_pem, cert_pem, key_pem);
  if (!ctx) return ctx;
  (*ctx)->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace loyalty::platform
