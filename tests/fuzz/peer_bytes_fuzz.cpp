// libFuzzer target: whatever a peer sends, the parsers and classifiers that read it return a
// verdict without crashing, reading out of bounds or growing without bound. The first byte
// picks how the probe ended (EOF, reset, timeout, an OpenSSL error), the rest is what the
// server sent. Built and run by tests/fuzz/run.sh (`make fuzz`), not by `make test`.
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "probes/classify.h"
#include "probes/http_response.h"
#include "probes/reason.h"

namespace {

using portsentinel::probes::error_code;
namespace asio = boost::asio;

error_code ending(uint8_t selector) {
  switch (selector % 5) {
    case 0:
      return asio::error::eof;
    case 1:
      return asio::error::connection_reset;
    case 2:
      return asio::ssl::error::stream_truncated;
    case 3:
      return {};  // with timed_out
    default:
      // An OpenSSL error code as asio reports it (library and reason packed).
      return error_code(static_cast<int>(0x0A000000u | (selector * 37u)),
                        asio::error::get_ssl_category());
  }
}

void check_at(bool condition, const char* what, int line) {
  if (!condition) {
    std::fprintf(stderr, "peer_bytes_fuzz.cpp:%d: broken: %s\n", line, what);
    std::abort();
  }
}
#define CHECK(condition) check_at((condition), #condition, __LINE__)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace portsentinel::probes;
  if (size == 0) {
    return 0;
  }
  const uint8_t selector = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  if (auto head = parse_http_head(bytes)) {
    CHECK(head->head_size <= bytes.size());
    CHECK(head->status >= 0 && head->status <= 999);
    CHECK(head->status_line.size() <= bytes.size());
    CHECK(head->location.size() <= bytes.size());
  }
  looks_like_http_response(bytes);
  looks_like_tls_record(bytes);
  if (auto r = classify_first_bytes_for_tls(bytes)) {
    CHECK(*r == Reason::kPlaintextHttp || *r == Reason::kNotTls);
  }
  const std::string line = printable_first_line(bytes);
  CHECK(line.size() <= 120);
  for (char c : line) {
    CHECK(c >= 0x20 && c < 0x7f);
  }

  std::string detail;
  const Reason r = classify_handshake_error(ending(selector), bytes, selector % 5 == 3, &detail);
  CHECK(static_cast<size_t>(r) < kReasonCount);
  CHECK(!reason_name(r).empty());
  CHECK(detail.size() < 4096);  // evidence for a log line, not the peer's bytes
  return 0;
}
