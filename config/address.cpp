#include "config/address.h"

#include <arpa/inet.h>

#include <charconv>

namespace portsentinel::config {
namespace {

bool valid_hostname(std::string_view host) {
  if (host.empty() || host.size() > 253) {
    return false;
  }
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) {
        return false;
      }
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok || ++label > 63) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool is_ip_literal(std::string_view host) {
  const std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string* error,
                                        bool allow_port_zero) {
  auto fail = [&](std::string msg) -> std::optional<HostPort> {
    if (error != nullptr) {
      *error = std::move(msg);
    }
    return std::nullopt;
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return fail("expected [ipv6]:port, got \"" + std::string(text) + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const std::string h(host);
    unsigned char buf[16];
    if (inet_pton(AF_INET6, h.c_str(), buf) != 1) {
      return fail("\"" + h + "\" is not an IPv6 address");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return fail("expected host:port, got \"" + std::string(text) + "\" (no port)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("expected host:port, got \"" + std::string(text) +
                  "\" (write IPv6 addresses as [addr]:port)");
    }
    if (!valid_hostname(host)) {
      return fail("\"" + std::string(host) + "\" is not a valid host name or IPv4 address");
    }
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || value > 65535 ||
      (value == 0 && !allow_port_zero)) {
    return fail("expected a port 1-65535, got \"" + std::string(port) + "\"");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

std::string format_host_port(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) {
    return "[" + hp.host + "]:" + std::to_string(hp.port);
  }
  return hp.host + ":" + std::to_string(hp.port);
}

}  // namespace portsentinel::config
