#include "probes/resolver.h"

#include <netdb.h>

#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace portsentinel::probes {

using Endpoints = std::vector<asio::ip::tcp::endpoint>;
using Channel = asio::experimental::channel<void(error_code, Endpoints)>;

struct Resolver::Shared {
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::function<void()>> jobs;
  bool stopping = false;
};

namespace {

error_code gai_error(int rc) {
  switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
      return asio::error::host_not_found;
    case EAI_AGAIN:
      return asio::error::host_not_found_try_again;
    case EAI_MEMORY:
      return asio::error::no_memory;
    default:
      return asio::error::no_recovery;
  }
}

}  // namespace

Resolver::Resolver(size_t threads) : shared_(std::make_shared<Shared>()) {
  for (size_t i = 0; i < threads; ++i) {
    // Workers own a reference to the shared state and are detached: a lookup stuck in
    // getaddrinfo() for seconds must not hold up a shutdown that has to finish in 2 s.
    std::thread([shared = shared_] {
      std::unique_lock lock(shared->mutex);
      while (true) {
        shared->wake.wait(lock, [&] { return shared->stopping || !shared->jobs.empty(); });
        if (shared->stopping) {
          return;
        }
        auto job = std::move(shared->jobs.front());
        shared->jobs.pop_front();
        lock.unlock();
        job();
        lock.lock();
      }
    }).detach();
  }
}

Resolver::~Resolver() {
  std::lock_guard lock(shared_->mutex);
  shared_->stopping = true;
  shared_->jobs.clear();
  shared_->wake.notify_all();
}

asio::awaitable<std::tuple<error_code, Endpoints>> Resolver::resolve(std::string host,
                                                                      uint16_t port) {
  error_code ec;
  const auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    co_return std::tuple{error_code{}, Endpoints{{literal, port}}};
  }
  auto executor = co_await asio::this_coro::executor;
  auto channel = std::make_shared<Channel>(executor, 1);
  {
    std::lock_guard lock(shared_->mutex);
    // The job holds the channel and checks `stopping` before posting, so a late answer after
    // shutdown touches nothing that is gone.
    shared_->jobs.push_back([shared = shared_, channel, executor, host, port] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_ADDRCONFIG;
      addrinfo* list = nullptr;
      const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
      Endpoints endpoints;
      for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
          asio::ip::address_v4::bytes_type b;
          std::memcpy(b.data(), &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, 4);
          endpoints.emplace_back(asio::ip::address_v4(b), port);
        } else if (ai->ai_family == AF_INET6) {
          auto* sin6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
          asio::ip::address_v6::bytes_type b;
          std::memcpy(b.data(), &sin6->sin6_addr, 16);
          endpoints.emplace_back(asio::ip::address_v6(b, sin6->sin6_scope_id), port);
        }
      }
      if (list != nullptr) {
        freeaddrinfo(list);
      }
      const error_code result = rc == 0 ? error_code{} : gai_error(rc);
      std::lock_guard guard(shared->mutex);
      if (shared->stopping) {
        return;
      }
      asio::post(executor, [channel, result, endpoints = std::move(endpoints)]() mutable {
        channel->try_send(result, std::move(endpoints));
      });
    });
    shared_->wake.notify_one();
  }
  auto [recv_ec, endpoints] =
      co_await channel->async_receive(asio::as_tuple(asio::use_awaitable));
  if (!recv_ec && endpoints.empty()) {
    recv_ec = asio::error::host_not_found;
  }
  co_return std::tuple{recv_ec, std::move(endpoints)};
}

}  // namespace portsentinel::probes
