// libFuzzer target: any config file either loads or fails with a ConfigError that has a
// position (FILE:LINE:COL: message). Anything else escaping (a yaml-cpp exception, a crash) is
// a defect: check-config and a reload must always say where the file is wrong.
// Built and run by tests/fuzz/run.sh (`make fuzz`), not by `make test`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    portsentinel::config::parse_config(text, "fuzz.yaml");
  } catch (const portsentinel::config::ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind("fuzz.yaml:", 0) != 0) {
      std::abort();  // an error without the file and position
    }
  }
  return 0;
}
