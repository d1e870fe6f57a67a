#include "probes/http_response.h"

#include <algorithm>
#include <cctype>

namespace portsentinel::probes {

bool looks_like_http_response(std::string_view bytes) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  const size_t n = std::min(bytes.size(), kPrefix.size());
  return n > 0 && bytes.substr(0, n) == kPrefix.substr(0, n);
}

std::optional<HttpHead> parse_http_head(std::string_view bytes) {
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos || bytes.substr(0, 7) != "HTTP/1.") {
    return std::nullopt;
  }
  HttpHead head;
  head.head_size = end + 4;
  const std::string_view text = bytes.substr(0, end);
  const size_t line_end = text.find("\r\n");
  const std::string_view status_line = text.substr(0, line_end);
  head.status_line = std::string(status_line);
  // "HTTP/1.1 301 Moved Permanently": three digits after the first space.
  const size_t space = status_line.find(' ');
  if (space == std::string_view::npos || status_line.size() < space + 4) {
    return std::nullopt;
  }
  int status = 0;
  for (size_t i = space + 1; i < space + 4; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) {
      return std::nullopt;
    }
    status = status * 10 + (status_line[i] - '0');
  }
  head.status = status;
  size_t pos = line_end == std::string_view::npos ? text.size() : line_end + 2;
  while (pos < text.size()) {
    size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    const std::string_view line = text.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string name(line.substr(0, colon));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name == "location") {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
          value.remove_prefix(1);
        }
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
          value.remove_suffix(1);
        }
        head.location = std::string(value);
      }
    }
    pos = eol + 2;
  }
  return head;
}

}  // namespace portsentinel::probes
