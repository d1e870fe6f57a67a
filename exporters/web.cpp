#include "exporters/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

namespace portsentinel::exporters {
namespace {

// civetweb's request hook is a plain function pointer: it finds the hooks here.
std::atomic<const WebServer::Hooks*> g_hooks{nullptr};

void reply(mg_connection* conn, int status, const char* status_text, const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            status, status_text, body.size());
  mg_write(conn, body.data(), body.size());
}

int begin_request(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const WebServer::Hooks* hooks = g_hooks.load();
  if (info == nullptr || info->local_uri == nullptr || hooks == nullptr) {
    return 0;
  }
  const std::string uri = info->local_uri;
  const std::string method = info->request_method != nullptr ? info->request_method : "";
  if (uri == "/healthz") {
    if (hooks->healthy && !hooks->healthy()) {
      reply(conn, 503, "Service Unavailable", "event loop is not responding\n");
    } else {
      reply(conn, 200, "OK", "ok\n");
    }
    return 200;
  }
  if (uri == "/-/reload") {
    if (method != "POST" && method != "PUT") {
      reply(conn, 405, "Method Not Allowed", "use POST /-/reload\n");
      return 405;
    }
    const std::string error = hooks->reload ? hooks->reload() : "reload is not available";
    if (error.empty()) {
      reply(conn, 200, "OK", "reloaded\n");
      return 200;
    }
    reply(conn, 500, "Internal Server Error", "reload failed: " + error + "\n");
    return 500;
  }
  if (uri == "/") {
    reply(conn, 200, "OK",
          "portsentinel\n\n/metrics   Prometheus metrics\n/healthz   liveness\n"
          "/-/reload  POST to reload the configuration\n");
    return 200;
  }
  return 0;  // /metrics and the rest: prometheus-cpp's handlers (404 for unknown paths)
}

}  // namespace

WebServer::WebServer(const config::HostPort& listen_address, const Metrics& metrics, Hooks hooks) {
  static CivetCallbacks callbacks{};
  callbacks.begin_request = begin_request;
  // Suppress civetweb's own stderr lines: start-up failures are reported by the exception.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  auto* stored = new Hooks(std::move(hooks));
  const Hooks* expected = nullptr;
  if (!g_hooks.compare_exchange_strong(expected, stored)) {
    delete stored;
    throw std::logic_error("only one WebServer may exist at a time");
  }
  const std::string address = config::format_host_port(listen_address);
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "4",
                                 "request_timeout_ms", "10000"},
        &callbacks);
  } catch (const std::exception& e) {
    delete g_hooks.exchange(nullptr);
    throw std::runtime_error("cannot listen on " + address +
                             " (address in use, or not an address of this host?)");
  }
  exposer_->RegisterCollectable(metrics.registry());
  const auto ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? listen_address.port : static_cast<uint16_t>(ports.front());
}

WebServer::~WebServer() {
  exposer_.reset();  // joins the request threads before the hooks go away
  delete g_hooks.exchange(nullptr);
}

}  // namespace portsentinel::exporters
