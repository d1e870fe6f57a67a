#include "probes/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <stdexcept>

namespace portsentinel::probes {
namespace {

int record_verify_error(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0) {
    auto* ssl = static_cast<SSL*>(
        X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (auto* log = static_cast<VerifyLog*>(SSL_get_app_data(ssl)); log != nullptr) {
      const int error = X509_STORE_CTX_get_error(store);
      if (std::find(log->errors.begin(), log->errors.end(), error) == log->errors.end()) {
        log->errors.push_back(error);
      }
    }
  }
  return 1;  // go on: we want the certificate and every reason, not the first abort
}

int openssl_version(config::TlsVersion v) {
  switch (v) {
    case config::TlsVersion::k1_0:
      return TLS1_VERSION;
    case config::TlsVersion::k1_1:
      return TLS1_1_VERSION;
    case config::TlsVersion::k1_2:
      return TLS1_2_VERSION;
    case config::TlsVersion::k1_3:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

}  // namespace

std::shared_ptr<asio::ssl::context> TlsContextCache::get(const config::TlsOptions& options) {
  if (auto it = contexts_.find(options); it != contexts_.end()) {
    return it->second;
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, openssl_version(options.min_version));
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, record_verify_error);
  if (options.ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(native);
  } else if (SSL_CTX_load_verify_locations(native, options.ca_file.c_str(), nullptr) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    throw std::runtime_error("cannot load CA file \"" + options.ca_file + "\": " + buf);
  }
  contexts_.emplace(options, ctx);
  return ctx;
}

}  // namespace portsentinel::probes
