#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <optional>
#include <string_view>

namespace portsentinel::probes {

// The closed set of failure reasons (DESIGN.md). Values index arrays: keep kCount last.
enum class Reason {
  kOk,
  kDnsError,
  kConnectionRefused,
  kConnectTimeout,
  kHostUnreachable,
  kHandshakeTimeout,
  kHandshakeEof,
  kHandshakeReset,
  kPlaintextHttp,
  kNotTls,
  kTlsProtocolVersion,
  kTlsHandshakeFailure,
  kTlsUnrecognizedName,
  kTlsAlert,
  kCertExpired,
  kCertNotYetValid,
  kCertHostnameMismatch,
  kCertUntrusted,
  kTlsOnPlainPort,
  kHttpStatus,
  kNoHttpsRedirect,
  kHttpNoResponse,  // not in DESIGN.md's list: an HTTP port that accepts and never answers
  kPathMismatch,    // DESIGN.md's failure #6: paths/addresses of one service disagree
  kConfigError,     // not in DESIGN.md's list: a server config that cannot work (diagnose)
  kProbeError,
  kCount
};

inline constexpr size_t kReasonCount = static_cast<size_t>(Reason::kCount);

// The `reason` label value, e.g. "plaintext_http".
std::string_view reason_name(Reason r);

// One line for the operator: what to check and which command proves it.
std::string_view reason_remedy(Reason r);

std::optional<Reason> reason_from_name(std::string_view name);

// The remedy with its placeholders (HOST, PORT, NAME, ADDR) filled in for one target, so the
// command in it can be pasted as it is.
std::string reason_remedy_for(Reason r, std::string_view host, uint16_t port,
                              std::string_view server_name);

}  // namespace portsentinel::probes
