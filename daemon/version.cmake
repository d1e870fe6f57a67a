# Run at every build (cmake -P): writes version.cpp with the current git revision.
# configure_file leaves the file untouched when nothing changed, so nothing recompiles then.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE PORTSENTINEL_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT PORTSENTINEL_REVISION)
  set(PORTSENTINEL_REVISION "unknown")
endif()
configure_file("${INPUT}" "${OUTPUT}" @ONLY)
