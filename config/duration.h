#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace portsentinel::config {

using Duration = std::chrono::milliseconds;

// Parses a Prometheus duration: one or more <number><unit> with units y, w, d, h, m, s, ms
// in decreasing order ("500ms", "30s", "1h30m", "21d"). Returns nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);

// The shortest Prometheus form of `d` ("1m30s", "500ms", "0s").
std::string format_duration(Duration d);

}  // namespace portsentinel::config
