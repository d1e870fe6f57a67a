#pragma once

namespace portsentinel::daemon {
// Defined in the generated version.cpp, which is rewritten at build time only when the git
// revision changes, so a new commit recompiles one tiny file, not the units that print these.
extern const char* const kVersion;
extern const char* const kRevision;
}  // namespace portsentinel::daemon
