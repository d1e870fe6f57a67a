#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "probes/reason.h"

namespace portsentinel::probes {

// Seconds spent in each phase of one probe; 0 for phases that did not run.
struct Phases {
  double resolve = 0;
  double connect = 0;
  double tls = 0;
  double http = 0;
  double total = 0;
};

struct CertFacts {
  std::string fingerprint_sha256;  // lowercase hex of the DER encoding
  std::string subject;             // RFC 2253
  std::string issuer;              // RFC 2253
  std::string serial;              // uppercase hex
  int64_t not_before = 0;          // unix seconds
  int64_t not_after = 0;
  int64_t chain_earliest_expiry = 0;  // min notAfter over the chain the server sent
  bool operator==(const CertFacts&) const = default;
};

struct TlsFacts {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  std::optional<CertFacts> leaf;
  bool verified = false;  // chain and name verified against the configured trust
};

struct HttpFacts {
  int status = 0;
  std::string status_line;
  std::string location;  // Location header, when present
};

// Everything one attempt learned. Produced by a probe, consumed by the daemon's state.
struct ProbeResult {
  Reason reason = Reason::kProbeError;
  std::string detail;  // human-readable evidence, e.g. the status line a TLS port answered with
  std::string peer;    // the address the probe connected to, when it got that far
  Phases phases;
  std::optional<TlsFacts> tls;
  std::optional<HttpFacts> http;

  bool ok() const { return reason == Reason::kOk; }
};

}  // namespace portsentinel::probes
