#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
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

// A CA file that cannot be loaded, with the setting that names it.
struct TlsContextError : std::runtime_error {
  TlsContextError(const std::string& what, config::TlsOptions o)
      : std::runtime_error(what), options(std::move(o)) {}
  config::TlsOptions options;
};

// One SSL_CTX per distinct TLS setting, built once (CA loading is the expensive part) and
// shared by every target that uses it. Verification never aborts the handshake: every error
// is recorded in the SSL's VerifyLog, so the leaf certificate is captured even when it fails;
// a VerifyLog with a memo skips a chain it verified before (see VerifyMemo).
// Sessions are never resumed (no tickets, no cache): every probe sees the served certificate.
// Thread safety: get() and refresh() may be called from any thread; a built context is never
// changed, only replaced.
class TlsContextCache {
 public:
  // The context for `options`, built on first use. Throws TlsContextError naming the file when
  // a CA file cannot be loaded.
  std::shared_ptr<asio::ssl::context> get(const config::TlsOptions& options);

  // Builds the contexts in `needed` that are missing or whose CA file (the system bundle for
  // an empty ca_file) changed since they were built, so that a reload picks up a rotated
  // bundle. All or nothing: throws TlsContextError, changing nothing, when one cannot be
  // loaded. It reads the CA files: a reload calls it before it moves to the event loop.
  void refresh(const std::vector<config::TlsOptions>& needed);

 private:
  // Identifies one version of a file: device, inode, size and modification time.
  using FileStamp = std::array<int64_t, 5>;
  struct Entry {
    std::shared_ptr<asio::ssl::context> context;
    FileStamp stamp{};
  };
  static FileStamp stamp_of(const config::TlsOptions& options);
  static std::shared_ptr<asio::ssl::context> build(const config::TlsOptions& options);

  std::mutex mutex_;
  std::map<config::TlsOptions, Entry> contexts_;
};

}  // namespace portsentinel::probes
