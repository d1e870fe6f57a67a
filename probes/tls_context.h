#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"

namespace portsentinel::probes {

namespace asio = boost::asio;

// One target's last chain verification, so that the same chain served again is not verified
// again: X509_verify_cert is a sixth of a client handshake's CPU (a P-256 verify and the chain
// building), and its outcome is fixed by the chain's bytes, the trust store and the name until a
// validity date in the chain passes. The server still proves its key in every handshake
// (CertificateVerify), and a chain with other bytes is verified in full.
// Thread safety: one target's, used by its probes on the event-loop thread.
struct VerifyMemo {
  std::vector<std::array<unsigned char, 32>> chain_sha256;  // per certificate, leaf first
  std::vector<int> errors;  // what the full verification recorded
  int64_t valid_until = 0;  // unix seconds: the next notBefore/notAfter in the chain, <= 1 h
  uint64_t full_verifications = 0;  // chains verified in full (tests and benchmarks read it)
};

// X.509 errors seen while verifying one handshake; attached to the SSL object as app data.
struct VerifyLog {
  std::vector<int> errors;
  VerifyMemo* memo = nullptr;  // nullptr: verify in full every time
};

// One SSL_CTX per distinct TLS setting, built once (CA loading is the expensive part) and
// shared by every target that uses it. Verification never aborts the handshake: every error
// is recorded in the SSL's VerifyLog, so the leaf certificate is captured even when it fails;
// a VerifyLog with a memo skips a chain it verified before (see VerifyMemo).
// Sessions are never resumed (no tickets, no cache): every probe sees the served certificate.
// Thread safety: not thread-safe; used from the event-loop thread (and at start-up).
class TlsContextCache {
 public:
  // Throws std::runtime_error naming the file when a CA file cannot be loaded.
  std::shared_ptr<asio::ssl::context> get(const config::TlsOptions& options);

 private:
  std::map<config::TlsOptions, std::shared_ptr<asio::ssl::context>> contexts_;
};

}  // namespace portsentinel::probes
