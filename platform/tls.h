// TLS for terminal <-> HQ: a private CA issuing HQ's server certificate and
// one client certificate per terminal (mutual TLS), and the Asio SSL
// contexts that use them: TLS 1.2 or newer, peer verification always on,
// host-name verification on the client.
//
// Thread-safety: functions are pure; a context is shared read-only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>
#include <vector>

#include "core/result.h"

namespace loyalty::platform {

struct CertKey {
  std::string cert_pem;
  std::string key_pem;
};

// A self-signed CA (ECDSA P-256).
[[nodiscard]] core::Result<CertKey> make_ca(const std::string& common_name, int days);
// A certificate signed by `ca`: for a server (with DNS and IP subject
// alternative names) or for a client (its common name is its identity).
[[nodiscard]] core::Result<CertKey> issue_cert(const CertKey& ca, const std::string& common_name,
                                               bool server, const std::vector<std::string>& dns,
                                               const std::vector<std::string>& ips, int days);
// SHA-256 of the certificate's DER, hex: how HQ pins what it issued.
[[nodiscard]] core::Result<std::string> cert_fingerprint(const std::string& cert_pem);

// Server side: presents cert/key; requires and verifies a client certificate
// signed by the CA when `require_client_cert`.
[[nodiscard]] core::Result<std::shared_ptr<boost::asio::ssl::context>> server_tls(
    const std::string& ca_pem, const std::string& cert_pem, const std::string& key_pem,
    bool require_client_cert);
// Client side: trusts only the CA; presents cert/key when given.
[[nodiscard]] core::Result<std::shared_ptr<boost::asio::ssl::context>> client_tls(
    const std::string& ca_pem, const std::string& cert_pem = {}, const std::string& key_pem = {});

}  // namespace loyalty::platform
