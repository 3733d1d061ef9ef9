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

KeyPtr new_key() {
  return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

std::string pem_of(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

CertPtr read_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return CertPtr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
}

KeyPtr read_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return KeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext != nullptr) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

constexpr long kNotBeforeBackdateSeconds = 60L * 86400;

CertPtr new_cert(EVP_PKEY* key, const std::string& cn, int days) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  const auto serial = random_bytes(16);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
  BN_set_bit(bn, 127);  // positive, full length
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  // Valid from well before now: a till whose clock is days behind (a dead
  // RTC battery, a wrong manual setting) must still accept HQ's freshly
  // issued certificate, or it could never sync to be told its clock is off.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kNotBeforeBackdateSeconds);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

CertKey make_ca(const std::string& cn, int days) {
  auto key = new_key();
  auto cert = new_cert(key.get(), cn, days);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
    throw std::runtime_error("cannot sign the CA certificate (OpenSSL X509_sign failed)");
  return {pem_of(cert.get()), pem_of(key.get())};
}

core::Result<CertKey> issue_cert(const CertKey& ca, const std::string& cn, bool server,
                                 const std::vector<std::string>& dns,
                                 const std::vector<std::string>& ips, int days) {
  auto ca_cert = read_cert(ca.cert_pem);
  auto ca_key = read_key(ca.key_pem);
  if (!ca_cert || !ca_key) return core::invalid("ca", "the CA certificate or key does not load");
  auto key = new_key();
  auto cert = new_cert(key.get(), cn, days);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  add_ext(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), ca_cert.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  add_ext(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& d : dns) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& i : ips) san += (san.empty() ? "" : ",") + std::string("IP:") + i;
  if (!san.empty()) add_ext(cert.get(), ca_cert.get(), NID_subject_alt_name, san);
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) <= 0)
    return core::fail(core::ErrorCode::kInternal, "cannot sign the certificate for " + cn);
  return CertKey{pem_of(cert.get()), pem_of(key.get())};
}

core::Result<std::string> cert_fingerprint(const std::string& cert_pem) {
  auto cert = read_cert(cert_pem);
  if (!cert) return core::invalid("certificate", "not a PEM certificate");
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert.get(), &der);
  if (n <= 0) return core::invalid("certificate", "cannot encode");
  auto hex =
      sha256_hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  return hex;
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
