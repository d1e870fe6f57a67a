#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/system/error_code.hpp>

#include "probes/reason.h"

// Pure functions that name failures from what a probe saw. No sockets, unit-tested alone.
namespace portsentinel::probes {

using boost::system::error_code;

// What a server's first bytes say when we expected TLS: nullopt when they look like a TLS
// record (or nothing arrived), kPlaintextHttp for an HTTP answer, kNotTls for anything else
// (an SSH or SMTP banner: another program owns the port).
std::optional<Reason> classify_first_bytes_for_tls(std::string_view bytes);

// True when the bytes start like a TLS record (content type 0x14-0x18, major version 3).
bool looks_like_tls_record(std::string_view bytes);

// A failed TCP connect: connection_refused, host_unreachable, connect_timeout or probe_error.
Reason classify_connect_error(const error_code& ec);

// A failed TLS handshake after TCP connected, given what the server sent first.
// `timed_out` is true when our deadline ended it. Returns the reason and fills `detail`.
Reason classify_handshake_error(const error_code& ec, std::string_view first_bytes,
                                bool timed_out, std::string* detail);

// Picks the reason from the X.509 verification errors collected during the handshake
// (X509_V_ERR_* codes). kOk when the list is empty. The most actionable error wins:
// expired, not yet valid, untrusted, then name mismatch.
Reason classify_verify_errors(const std::vector<int>& x509_errors);

// The first line of `bytes`, printable ASCII only, at most `max` characters: for logs.
std::string printable_first_line(std::string_view bytes, size_t max = 120);

}  // namespace portsentinel::probes
