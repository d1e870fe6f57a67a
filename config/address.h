#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portsentinel::config {

// host:port as written in the config; `host` has no brackets ("::1", not "[::1]").
struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool operator==(const HostPort&) const = default;
};

// Parses "host:port", "1.2.3.4:443" or "[v6]:port". The port must be 1..65535 unless
// `allow_port_zero` (listen addresses may ask the kernel for a free port).
// Returns nullopt and sets `error` to what was expected when malformed.
std::optional<HostPort> parse_host_port(std::string_view text, std::string* error,
                                        bool allow_port_zero = false);

// "host:port" or "[v6]:port".
std::string format_host_port(const HostPort& hp);

// True when `host` is an IPv4 or IPv6 literal (no DNS needed).
bool is_ip_literal(std::string_view host);

}  // namespace portsentinel::config
