#pragma once

#include <map>
#include <memory>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "config/config.h"

namespace portsentinel::probes {

namespace asio = boost::asio;

// X.509 errors seen while verifying one handshake; attached to the SSL object as app data.
struct VerifyLog {
  std::vector<int> errors;
};

// One SSL_CTX per distinct TLS setting, built once (CA loading is the expensive part) and
// shared by every target that uses it. Verification never aborts the handshake: every error
// is recorded in the SSL's VerifyLog, so the leaf certificate is captured even when it fails.
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
