#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/address.h"
#include "exporters/metrics.h"

class CivetServer;

namespace portsentinel::exporters {

// The HTTP endpoints: GET /metrics (Metrics::write_text, streamed), GET /healthz, POST /-/reload
// and an index at /. Requests run on the web server's own threads, never the event loop.
// Only one WebServer may exist in a process (the civetweb request hook is global).
class WebServer {
 public:
  struct Hooks {
    // True while the event loop is responsive; /healthz answers 503 otherwise.
    std::function<bool()> healthy;
    // Reloads the config; returns an empty string on success, else the error. May block.
    std::function<std::string()> reload;
  };

  // Throws std::runtime_error when the address cannot be bound.
  WebServer(const config::HostPort& listen_address, const Metrics& metrics, Hooks hooks);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // The port actually bound (useful when the configured port is 0).
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<CivetServer> server_;
  uint16_t port_ = 0;
};

}  // namespace portsentinel::exporters
