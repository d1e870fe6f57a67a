#include "daemon/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>

namespace portsentinel::daemon {
namespace {

config::LogFormat g_format = config::LogFormat::kText;

bool needs_quotes(std::string_view v) {
  return v.empty() || v.find_first_of(" \"=\t\n") != std::string_view::npos;
}

}  // namespace

void setup_logging(const std::string& level, config::LogFormat format) {
  g_format = format;
  spdlog::drop("portsentinel");
  auto logger = spdlog::stderr_logger_mt("portsentinel");
  const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (format == config::LogFormat::kJson) {
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%v})");
  } else if (journal) {
    logger->set_pattern("%l %v");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<Field> fields) {
  if (!spdlog::should_log(level)) {
    return;
  }
  std::string line;
  if (g_format == config::LogFormat::kJson) {
    line = "\"msg\":" + json_quote(message);
    for (const auto& [key, value] : fields) {
      line += ",";
      line += json_quote(key);
      line += ":";
      line += json_quote(value);
    }
  } else {
    line = std::string(message);
    for (const auto& [key, value] : fields) {
      line += " ";
      line += key;
      line += "=";
      line += needs_quotes(value) ? json_quote(value) : value;
    }
  }
  spdlog::log(level, "{}", line);
}

}  // namespace portsentinel::daemon
