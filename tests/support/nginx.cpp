#include "tests/support/nginx.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/support/servers.h"

namespace portsentinel::testing {

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/sbin:/usr/local/sbin";
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = dir + "/" + name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

namespace {
bool accepts(uint16_t port) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}
}  // namespace

Nginx::Nginx(const TempDir& dir, const std::string& servers, const std::vector<uint16_t>& ports)
    : prefix_(dir.path() + "/nginx") {
  mkdir(prefix_.c_str(), 0755);
  const std::string conf =
      "daemon off;\n"
      "master_process on;\n"
      "worker_processes 1;\n" +
      std::string(geteuid() == 0 ? "user root;\n" : "") +
      "pid " + prefix_ + "/nginx.pid;\n"
      "error_log " + prefix_ + "/error.log info;\n"
      "events { worker_connections 256; }\n"
      "http {\n"
      "  access_log off;\n"
      "  client_body_temp_path " + prefix_ + "/body;\n"
      "  proxy_temp_path " + prefix_ + "/proxy;\n"
      "  fastcgi_temp_path " + prefix_ + "/fastcgi;\n"
      "  uwsgi_temp_path " + prefix_ + "/uwsgi;\n"
      "  scgi_temp_path " + prefix_ + "/scgi;\n"
      "  ssl_session_cache off;\n"
      "  ssl_session_tickets off;\n" +
      servers + "}\n";
  std::ofstream(prefix_ + "/nginx.conf") << conf;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{find_program("nginx"), "-p", prefix_, "-e",
                               prefix_ + "/error.log", "-c", prefix_ + "/nginx.conf"},
      prefix_ + "/stderr.log");
  // Up when every port accepts and this nginx still runs: one that failed to bind a port
  // another process holds exits, and that process must not pass for it.
  const bool up = eventually(
      [&] {
        if (!process_->running()) {
          return true;  // ends the wait; reported below
        }
        for (uint16_t p : ports) {
          if (!accepts(p)) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(10));
  if (!up || !process_->running()) {
    throw std::runtime_error("nginx did not come up:\n" + process_->log() + error_log());
  }
}

Nginx::~Nginx() {
  // SIGQUIT is nginx's graceful stop; SIGKILL in Process's destructor is the backstop.
  process_->stop(SIGQUIT, std::chrono::seconds(5));
}

std::string Nginx::error_log() const {
  std::ifstream in(prefix_ + "/error.log");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace portsentinel::testing
