#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portsentinel::probes {

// The parts of an HTTP/1.x response head a probe needs.
struct HttpHead {
  int status = 0;
  std::string status_line;
  std::string location;
  size_t head_size = 0;  // bytes up to and including the blank line
};

// Parses a response head from the bytes received so far. nullopt when the head is not complete
// yet or the bytes are not HTTP/1.x (check the prefix with looks_like_http_response()).
std::optional<HttpHead> parse_http_head(std::string_view bytes);

// True when the bytes start like an HTTP/1.x status line (or a prefix of one).
bool looks_like_http_response(std::string_view bytes);

}  // namespace portsentinel::probes
