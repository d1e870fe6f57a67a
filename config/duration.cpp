#include "config/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace portsentinel::config {
namespace {

struct Unit {
  std::string_view name;
  int64_t ms;
};

// Ordered from largest to smallest, as Prometheus requires them to appear.
constexpr std::array<Unit, 7> kUnits{{{"y", 365LL * 24 * 3600 * 1000},
                                      {"w", 7LL * 24 * 3600 * 1000},
                                      {"d", 24LL * 3600 * 1000},
                                      {"h", 3600LL * 1000},
                                      {"m", 60LL * 1000},
                                      {"s", 1000},
                                      {"ms", 1}}};

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  if (text == "0") {
    return Duration{0};
  }
  int64_t total = 0;
  size_t next_unit = 0;  // units must not repeat or go up
  size_t i = 0;
  while (i < text.size()) {
    int64_t value = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (value > std::numeric_limits<int64_t>::max() / 10 - 10) {
        return std::nullopt;
      }
      value = value * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) {
      return std::nullopt;
    }
    // "ms" must win over "m": try the two-letter unit first.
    size_t found = kUnits.size();
    for (size_t u = next_unit; u < kUnits.size(); ++u) {
      if (text.substr(i, kUnits[u].name.size()) == kUnits[u].name &&
          (kUnits[u].name != "m" || text.substr(i, 2) != "ms")) {
        found = u;
        break;
      }
    }
    if (found == kUnits.size()) {
      return std::nullopt;
    }
    if (value > std::numeric_limits<int64_t>::max() / kUnits[found].ms) {
      return std::nullopt;
    }
    total += value * kUnits[found].ms;
    i += kUnits[found].name.size();
    next_unit = found + 1;
  }
  return Duration{total};
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  for (const auto& unit : kUnits) {
    if (unit.name == "y" || unit.name == "w") {
      continue;  // days read better than weeks in logs
    }
    if (ms >= unit.ms) {
      out += std::to_string(ms / unit.ms);
      out += unit.name;
      ms %= unit.ms;
    }
  }
  return out;
}

}  // namespace portsentinel::config
