#include "probes/tls_context.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <set>
#include <stdexcept>

namespace portsentinel::probes {
namespace {

VerifyLog* verify_log_of(X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  return ssl == nullptr ? nullptr : static_cast<VerifyLog*>(SSL_get_app_data(ssl));
}

int record_verify_error(int preverify_ok, X509_STORE_CTX* store) {
  if (preverify_ok == 0) {
    if (VerifyLog* log = verify_log_of(store); log != nullptr) {
      const int error = X509_STORE_CTX_get_error(store);
      if (std::find(log->errors.begin(), log->errors.end(), error) == log->errors.end()) {
        log->errors.push_back(error);
      }
    }
  }
  return 1;  // go on: we want the certificate and every reason, not the first abort
}

// A memoized outcome is re-checked at least this often, whatever the chain's dates say.
constexpr int64_t kMemoLifetimeSeconds = 3600;

// SHA-256 of each certificate the server sent, leaf first; empty when one cannot be hashed.
std::vector<std::array<unsigned char, 32>> chain_digest(X509_STORE_CTX* store) {
  std::vector<std::array<unsigned char, 32>> out;
  STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(store);  // libssl: the whole peer chain
  const int n = sent == nullptr ? 0 : sk_X509_num(sent);
  out.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    unsigned int len = 0;
    if (X509_digest(sk_X509_value(sent, i), EVP_sha256(), out[static_cast<size_t>(i)].data(),
                    &len) != 1 ||
        len != 32) {
      return {};
    }
  }
  return out;
}

// When the outcome can next change: the earliest notBefore or notAfter still ahead in the
// chain as verified (trust anchor included), and no later than kMemoLifetimeSeconds.
int64_t memo_valid_until(X509_STORE_CTX* store, int64_t now) {
  int64_t until = now + kMemoLifetimeSeconds;
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
  if (chain == nullptr) {
    return now;  // nothing was built: do not keep the outcome
  }
  for (int i = 0; i < sk_X509_num(chain); ++i) {
    X509* cert = sk_X509_value(chain, i);
    for (const ASN1_TIME* t : {X509_get0_notBefore(cert), X509_get0_notAfter(cert)}) {
      int days = 0;
      int seconds = 0;
      if (t == nullptr || ASN1_TIME_diff(&days, &seconds, nullptr, t) != 1) {
        return now;
      }
      const int64_t ahead = int64_t{days} * 86400 + seconds;
      if (ahead >= 0) {
        until = std::min(until, now + ahead);
      }
    }
  }
  return until;
}

// Replaces X509_verify_cert for our contexts: the chain a target's memo holds, still within
// its dates, gives the recorded errors without verifying again; anything else is verified in
// full (record_verify_error collects the errors) and, for a target with a memo, kept.
int verify_chain(X509_STORE_CTX* store, void* /*arg*/) {
  VerifyLog* log = verify_log_of(store);
  VerifyMemo* memo = log == nullptr ? nullptr : log->memo;
  if (memo == nullptr) {
    return X509_verify_cert(store);
  }
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto digest = chain_digest(store);
  if (!digest.empty() && now < memo->valid_until && digest == memo->chain_sha256) {
    log->errors = memo->errors;
    X509_STORE_CTX_set_error(store, log->errors.empty() ? X509_V_OK : log->errors.front());
    return 1;
  }
  const int result = X509_verify_cert(store);
  ++memo->full_verifications;
  if (result == 1 && !digest.empty()) {
    memo->chain_sha256 = std::move(digest);
    memo->errors = log->errors;
    memo->valid_until = memo_valid_until(store, now);
  } else {
    memo->valid_until = 0;
  }
  return result;
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
  std::lock_guard lock(mutex_);
  if (auto it = contexts_.find(options); it != contexts_.end()) {
    return it->second.context;
  }
  const FileStamp stamp = stamp_of(options);  // before reading: a later change is seen later
  auto context = build(options);
  contexts_.emplace(options, Entry{context, stamp});
  return context;
}

void TlsContextCache::refresh(const std::vector<config::TlsOptions>& needed) {
  std::map<config::TlsOptions, Entry> built;
  std::set<config::TlsOptions> seen;  // thousands of targets often share one setting
  for (const auto& options : needed) {
    if (!seen.insert(options).second) {
      continue;
    }
    const FileStamp stamp = stamp_of(options);
    {
      std::lock_guard lock(mutex_);
      if (auto it = contexts_.find(options); it != contexts_.end() && it->second.stamp == stamp) {
        continue;
      }
    }
    built.emplace(options, Entry{build(options), stamp});  // may throw: nothing changed yet
  }
  std::lock_guard lock(mutex_);
  for (auto& [options, entry] : built) {
    contexts_[options] = std::move(entry);
  }
}

TlsContextCache::FileStamp TlsContextCache::stamp_of(const config::TlsOptions& options) {
  std::string path = options.ca_file;
  if (path.empty()) {  // the system store: what SSL_CTX_set_default_verify_paths loads
    const char* env = std::getenv(X509_get_default_cert_file_env());
    path = env != nullptr ? env : X509_get_default_cert_file();
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return {};
  }
  return {static_cast<int64_t>(st.st_dev), static_cast<int64_t>(st.st_ino),
          static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec),
          static_cast<int64_t>(st.st_mtim.tv_nsec)};
}

std::shared_ptr<asio::ssl::context> TlsContextCache::build(const config::TlsOptions& options) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, openssl_version(options.min_version));
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, record_verify_error);
  SSL_CTX_set_cert_verify_callback(native, verify_chain, nullptr);
  if (options.ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(native);
  } else if (SSL_CTX_load_verify_locations(native, options.ca_file.c_str(), nullptr) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    throw TlsContextError("cannot load CA file \"" + options.ca_file + "\": " + buf, options);
  }
  return ctx;
}

}  // namespace portsentinel::probes
