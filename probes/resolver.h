#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace portsentinel::probes {

namespace asio = boost::asio;
using boost::system::error_code;

// Host-name lookups on a few worker threads, so that getaddrinfo() never blocks the event loop
// and one slow name does not queue the others (Asio's resolver uses a single thread).
// A lookup can be cancelled (per-operation cancellation, e.g. by a timeout race): the awaiting
// coroutine resumes at once and the answer, when getaddrinfo() returns, is dropped.
// Thread safety: resolve() is called from the event-loop thread only.
class Resolver {
 public:
  explicit Resolver(size_t threads = 4);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Addresses of `host` (A and AAAA) with `port`. An IP literal returns at once without a
  // lookup. The error is in the resolver's error category (e.g. host_not_found) on failure.
  asio::awaitable<std::tuple<error_code, std::vector<asio::ip::tcp::endpoint>>> resolve(
      std::string host, uint16_t port);

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace portsentinel::probes
