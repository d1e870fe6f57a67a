#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "config/config.h"
#include "probes/probe_result.h"
#include "probes/resolver.h"
#include "probes/tls_context.h"

namespace portsentinel::probes {

// What one attempt needs; built once per target by the daemon and reused for every attempt.
struct ProbeSpec {
  config::HostPort address;
  config::Expect expect = config::Expect::kTcp;
  std::string server_name;  // SNI and verification name
  std::chrono::milliseconds timeout{5000};
  // Required for tls and https; for http it tells a TLS server on the plain port apart.
  std::shared_ptr<asio::ssl::context> tls_context;
  bool insecure_skip_verify = false;
  // The target's last chain verification (see VerifyMemo); nullptr verifies in full each time.
  std::shared_ptr<VerifyMemo> verify_memo;
  config::HttpOptions http;
};

// One attempt of one check: resolve, connect, and per `expect` a TLS handshake and an HTTP
// request. Knows nothing about intervals or metrics. Network errors become reasons, never
// exceptions; the whole attempt ends by `spec.timeout`. `spec` and `resolver` must outlive it.
asio::awaitable<ProbeResult> run_probe(const ProbeSpec& spec, Resolver& resolver);

}  // namespace portsentinel::probes
