#pragma once

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "exporters/json.h"

namespace portsentinel::daemon {

using Field = std::pair<std::string_view, std::string>;

// Configures the default logger on stderr: text ("TIME LEVEL message key=value") or JSON, one
// object per line. Under systemd (JOURNAL_STREAM set) the text form drops the timestamp, which
// the journal adds. Call before other threads log.
void setup_logging(const std::string& level, config::LogFormat format);

// One event with structured fields, rendered in the configured format.
void log_event(spdlog::level::level_enum level, std::string_view message,
               std::initializer_list<Field> fields = {});

using exporters::json_quote;

}  // namespace portsentinel::daemon
