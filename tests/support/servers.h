#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "tests/support/pki.h"

namespace portsentinel::testing {

namespace asio = boost::asio;

// What a scripted loopback server does with each connection.
enum class Script {
  kAcceptClose,     // read what the client sent, then close (FIN)
  kAcceptReset,     // read what the client sent, then reset (RST)
  kHang,            // accept and never answer
  kHttp,            // answer the first bytes with `http_response` and close
  kSshBanner,       // send an SSH banner at once, then hang
  kGarbageForever,  // send non-TLS bytes without end
  kTls,             // TLS handshake with `tls`, then answer one request with `http_response`
};

struct ServerOptions {
  static constexpr const char* kBadRequest =
      "HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n"
      "Content-Length: 0\r\nConnection: close\r\n\r\n";
  ServerOptions(Script s = Script::kHang, std::string response = kBadRequest,
                std::shared_ptr<asio::ssl::context> context = nullptr,
                std::string bind_address = "127.0.0.1")
      : script(s),
        http_response(std::move(response)),
        tls(std::move(context)),
        address(std::move(bind_address)) {}
  Script script;
  std::string http_response;
  std::shared_ptr<asio::ssl::context> tls;
  std::string address;
  uint16_t port = 0;  // 0: the kernel picks one
};

struct TlsServerOptions {
  int max_version = 0;  // e.g. TLS1_2_VERSION; 0: the library's maximum
  int fatal_alert = 0;  // abort every handshake with this alert (e.g. SSL_AD_UNRECOGNIZED_NAME)
  std::string groups{};  // key exchange groups, e.g. "P-256"; empty: the library's default
};

std::shared_ptr<asio::ssl::context> make_server_tls(const TestPki::Leaf& leaf,
                                                    TlsServerOptions options = {});

// A server on `address`:`port` (port 0: the kernel picks it) running `script` on the given
// io_context. Counts connections and the most open at once. The script can change at run time.
class LoopbackServer {
 public:
  LoopbackServer(asio::io_context& io, ServerOptions options);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  uint16_t port() const { return port_; }
  std::string host_port() const;
  int connections() const { return state_->connections; }
  int max_concurrent() const { return state_->max_open; }
  void set_script(Script s) { state_->script = s; }
  void set_tls(std::shared_ptr<asio::ssl::context> tls);

  struct State {
    std::atomic<Script> script{Script::kHang};
    std::atomic<int> connections{0};
    std::atomic<int> open{0};
    std::atomic<int> max_open{0};
    std::shared_ptr<asio::ssl::context> tls;
    std::string http_response;
    std::mutex mutex;
  };

 private:
  std::shared_ptr<State> state_;
  std::shared_ptr<asio::ip::tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::string address_;
};

// A port on 127.0.0.1 where nothing listens and nothing will while this process runs:
// "refused".
uint16_t refused_port();

// A port on 127.0.0.1 that was free a moment ago, for a server to bind next.
uint16_t free_port();

// `n` distinct ports on 127.0.0.1 that were free a moment ago, for servers that cannot bind
// port 0 and report it (nginx). All are held while choosing: ports picked one after another
// may repeat, since the kernel can hand out a just-closed port again.
std::vector<uint16_t> free_ports(size_t n);

// An io_context running on its own thread, for servers that a separate process probes.
class ServerThread {
 public:
  ServerThread();
  ~ServerThread();
  asio::io_context& io() { return io_; }
  // Runs `f` on the server thread and waits for it (servers are made and changed there).
  void run(std::function<void()> f);

 private:
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
};

}  // namespace portsentinel::testing
