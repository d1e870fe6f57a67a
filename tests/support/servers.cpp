#include "tests/support/servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <stdexcept>

namespace portsentinel::testing {
namespace {

using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

int abort_with_alert(SSL*, int* alert, void* arg) {
  *alert = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

asio::awaitable<void> read_forever(tcp::socket& socket) {
  std::array<char, 4096> buf;
  while (true) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), no_throw);
    if (ec) {
      co_return;
    }
  }
}

asio::awaitable<void> serve(tcp::socket socket, std::shared_ptr<LoopbackServer::State> state) {
  struct Open {
    LoopbackServer::State& s;
    explicit Open(LoopbackServer::State& st) : s(st) {
      const int now = ++s.open;
      int seen = s.max_open.load();
      while (now > seen && !s.max_open.compare_exchange_weak(seen, now)) {
      }
    }
    ~Open() { --s.open; }
  } open(*state);
  ++state->connections;
  std::array<char, 4096> buf;
  std::string response;
  std::shared_ptr<asio::ssl::context> tls;
  {
    std::lock_guard lock(state->mutex);
    response = state->http_response;
    tls = state->tls;
  }
  switch (state->script.load()) {
    case Script::kAcceptClose: {
      co_await socket.async_read_some(asio::buffer(buf), no_throw);
      socket.shutdown(tcp::socket::shutdown_both);
      socket.close();
      break;
    }
    case Script::kAcceptReset: {
      co_await socket.async_read_some(asio::buffer(buf), no_throw);
      socket.set_option(asio::socket_base::linger(true, 0));
      socket.close();
      break;
    }
    case Script::kHang:
      co_await read_forever(socket);
      break;
    case Script::kHttp: {
      co_await socket.async_read_some(asio::buffer(buf), no_throw);
      co_await asio::async_write(socket, asio::buffer(response), no_throw);
      socket.shutdown(tcp::socket::shutdown_send);
      co_await read_forever(socket);
      break;
    }
    case Script::kSshBanner: {
      const std::string banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
      co_await asio::async_write(socket, asio::buffer(banner), no_throw);
      co_await read_forever(socket);
      break;
    }
    case Script::kGarbageForever: {
      const std::string garbage(4096, 'A');
      while (true) {
        auto [ec, n] = co_await asio::async_write(socket, asio::buffer(garbage), no_throw);
        if (ec) {
          break;
        }
      }
      break;
    }
    case Script::kTls: {
      asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
      auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, no_throw);
      if (ec) {
        break;
      }
      auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(buf), no_throw);
      if (!read_ec) {
        co_await asio::async_write(stream, asio::buffer(response), no_throw);
        co_await stream.async_shutdown(no_throw);
      }
      break;
    }
  }
}

asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                  std::shared_ptr<LoopbackServer::State> state) {
  while (true) {
    auto [ec, socket] = co_await acceptor->async_accept(no_throw);
    if (ec) {
      co_return;
    }
    asio::co_spawn(acceptor->get_executor(), serve(std::move(socket), state), asio::detached);
  }
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_server_tls(const TestPki::Leaf& leaf,
                                                    TlsServerOptions options) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->use_certificate_chain_file(leaf.cert_file);
  ctx->use_private_key_file(leaf.key_file, asio::ssl::context::pem);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  if (options.max_version != 0) {
    SSL_CTX_set_max_proto_version(native, options.max_version);
  }
  if (!options.groups.empty() && SSL_CTX_set1_groups_list(native, options.groups.c_str()) != 1) {
    throw std::runtime_error("unknown TLS groups \"" + options.groups + "\"");
  }
  if (options.fatal_alert != 0) {
    SSL_CTX_set_tlsext_servername_callback(native, abort_with_alert);
    SSL_CTX_set_tlsext_servername_arg(native,
                                      reinterpret_cast<void*>(intptr_t{options.fatal_alert}));
  }
  return ctx;
}

LoopbackServer::LoopbackServer(asio::io_context& io, ServerOptions options)
    : state_(std::make_shared<State>()),
      acceptor_(std::make_shared<tcp::acceptor>(
          io, tcp::endpoint(asio::ip::make_address(options.address), options.port))),
      port_(acceptor_->local_endpoint().port()),
      address_(options.address) {
  state_->script = options.script;
  state_->tls = options.tls;
  state_->http_response = options.http_response;
  asio::co_spawn(io, accept_loop(acceptor_, state_), asio::detached);
}

LoopbackServer::~LoopbackServer() {
  // The acceptor may belong to another thread's io_context: close it there.
  asio::post(acceptor_->get_executor(), [a = acceptor_] {
    boost::system::error_code ec;
    a->close(ec);
  });
}

void LoopbackServer::set_tls(std::shared_ptr<asio::ssl::context> tls) {
  std::lock_guard lock(state_->mutex);
  state_->tls = std::move(tls);
}

std::string LoopbackServer::host_port() const {
  if (address_.find(':') != std::string::npos) {
    return "[" + address_ + "]:" + std::to_string(port_);
  }
  return address_ + ":" + std::to_string(port_);
}

uint16_t refused_port() {
  // Bound and never listening: a SYN gets a reset, as from a closed port, and while the socket
  // stays bound (to the end of the test process) no test running beside this one can take the
  // port and turn "refused" into "connected".
  static std::mutex mutex;
  static std::vector<int> held;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error(std::string("refused_port: ") + std::strerror(errno));
  }
  std::lock_guard lock(mutex);
  held.push_back(fd);
  return ntohs(a.sin_port);
}

uint16_t free_port() { return free_ports(1).front(); }

std::vector<uint16_t> free_ports(size_t n) {
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> held;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < n; ++i) {
    held.push_back(std::make_unique<tcp::acceptor>(
        io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    ports.push_back(held.back()->local_endpoint().port());
  }
  return ports;  // the acceptors close here, all at once
}

ServerThread::ServerThread()
    : work_(std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
          io_.get_executor())),
      thread_([this] { io_.run(); }) {}

ServerThread::~ServerThread() {
  work_.reset();
  io_.stop();
  thread_.join();
}

void ServerThread::run(std::function<void()> f) {
  std::promise<void> done;
  asio::post(io_, [&] {
    f();
    done.set_value();
  });
  done.get_future().get();
}

}  // namespace portsentinel::testing
