#pragma once

#include <string>
#include <string_view>

namespace portsentinel::exporters {

// A JSON string literal for `s`, quotes included.
std::string json_quote(std::string_view s);

// RFC 3339 in UTC with milliseconds, as Alertmanager's API takes it.
std::string rfc3339(double unix_seconds);

}  // namespace portsentinel::exporters
