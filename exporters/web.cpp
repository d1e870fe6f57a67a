#include "exporters/web.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace portsentinel::exporters {
namespace {

struct Context {
  WebServer::Hooks hooks;
  const Metrics* metrics;
};

// civetweb's request hook is a plain function pointer: it finds the hooks here.
std::atomic<const Context*> g_context{nullptr};

void reply(mg_connection* conn, int status, const char* status_text, const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            status, status_text, body.size());
  mg_write(conn, body.data(), body.size());
}

bool accepts_gzip(const char* accept_encoding) {
  return accept_encoding != nullptr && std::strstr(accept_encoding, "gzip") != nullptr;
}

// The body of a response whose length is not known up front: chunked for HTTP/1.1 clients,
// ended by closing the connection for HTTP/1.0 ones.
class BodyWriter {
 public:
  BodyWriter(mg_connection* conn, bool chunked) : conn_(conn), chunked_(chunked) {}

  // False once the peer went away.
  bool write(const char* data, size_t size) {
    if (!ok_ || size == 0) {
      return ok_;  // an empty chunk would end the body
    }
    if (chunked_) {
      char head[24];
      const int n = std::snprintf(head, sizeof head, "%zx\r\n", size);
      ok_ = mg_write(conn_, head, static_cast<size_t>(n)) == n;
    }
    ok_ = ok_ && mg_write(conn_, data, size) == static_cast<int>(size);
    if (chunked_) {
      ok_ = ok_ && mg_write(conn_, "\r\n", 2) == 2;
    }
    return ok_;
  }
  void finish() {
    if (ok_ && chunked_) {
      mg_write(conn_, "0\r\n\r\n", 5);
    }
  }
  bool ok() const { return ok_; }

 private:
  mg_connection* conn_;
  bool chunked_;
  bool ok_ = true;
};

// GET /metrics: the exposition streamed as it is formatted, gzip-compressed when the client
// accepts it (Prometheus does), so a scrape of 10,000 targets holds 64 KiB, not 24 MB.
void serve_metrics(mg_connection* conn, const mg_request_info& info, const Metrics& metrics) {
  const bool gzip = accepts_gzip(mg_get_header(conn, "Accept-Encoding"));
  const bool chunked = info.http_version == nullptr || std::strcmp(info.http_version, "1.0") != 0;
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "%s%sConnection: close\r\n\r\n",
            gzip ? "Content-Encoding: gzip\r\n" : "",
            chunked ? "Transfer-Encoding: chunked\r\n" : "");
  if (std::strcmp(info.request_method, "HEAD") == 0) {
    return;  // no body, not even the last chunk
  }
  BodyWriter body(conn, chunked);
  if (!gzip) {
    metrics.write_text([&](std::string_view piece) { body.write(piece.data(), piece.size()); });
    body.finish();
    return;
  }
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper. Level 1: the text still shrinks about tenfold.
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return;  // the client sees a truncated body and fails the scrape
  }
  std::string compressed(64 * 1024, '\0');
  auto pump = [&](std::string_view input, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    z.avail_in = static_cast<uInt>(input.size());
    int rc = Z_OK;
    do {
      z.next_out = reinterpret_cast<Bytef*>(compressed.data());
      z.avail_out = static_cast<uInt>(compressed.size());
      rc = deflate(&z, flush);
      body.write(compressed.data(), compressed.size() - z.avail_out);
    } while (body.ok() && rc != Z_STREAM_ERROR &&
             (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END)));
  };
  metrics.write_text([&](std::string_view piece) {
    if (body.ok()) {
      pump(piece, Z_NO_FLUSH);
    }
  });
  if (body.ok()) {
    pump({}, Z_FINISH);
  }
  deflateEnd(&z);
  body.finish();
}

int begin_request(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const Context* context = g_context.load();
  if (info == nullptr || info->local_uri == nullptr || context == nullptr) {
    return 0;
  }
  const WebServer::Hooks* hooks = &context->hooks;
  const std::string uri = info->local_uri;
  const std::string method = info->request_method != nullptr ? info->request_method : "";
  if (uri == "/metrics") {
    if (method != "GET" && method != "HEAD") {
      reply(conn, 405, "Method Not Allowed", "use GET /metrics\n");
      return 405;
    }
    serve_metrics(conn, *info, *context->metrics);
    return 200;
  }
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
  reply(conn, 404, "Not Found", "not found: try /metrics\n");
  return 404;
}

}  // namespace

WebServer::WebServer(const config::HostPort& listen_address, const Metrics& metrics, Hooks hooks) {
  static CivetCallbacks callbacks{};
  callbacks.begin_request = begin_request;
  // Suppress civetweb's own stderr lines: start-up failures are reported by the exception.
  callbacks.log_message = [](const mg_connection*, const char*) { return 1; };
  auto* stored = new Context{std::move(hooks), &metrics};
  const Context* expected = nullptr;
  if (!g_context.compare_exchange_strong(expected, stored)) {
    delete stored;
    throw std::logic_error("only one WebServer may exist at a time");
  }
  const std::string address = config::format_host_port(listen_address);
  try {
    server_ = std::make_unique<CivetServer>(
        std::vector<std::string>{"listening_ports", address, "num_threads", "4",
                                 "request_timeout_ms", "10000"},
        &callbacks);
  } catch (const std::exception& e) {
    delete g_context.exchange(nullptr);
    throw std::runtime_error("cannot listen on " + address +
                             " (address in use, or not an address of this host?)");
  }
  const auto ports = server_->getListeningPorts();
  port_ = ports.empty() ? listen_address.port : static_cast<uint16_t>(ports.front());
}

WebServer::~WebServer() {
  server_.reset();  // joins the request threads before the hooks go away
  delete g_context.exchange(nullptr);
}

}  // namespace portsentinel::exporters
