// What needs a network: firewalls (nftables DROP / REJECT) and an unreachable resolver, each in
// a network namespace this test makes and removes. Nothing leaves the namespace: it has only
// its own loopback. Root only; skipped with the reason otherwise.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <thread>

#include "probes/probe.h"
#include "probes/tls_context.h"
#include "tests/support/nginx.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace portsentinel::testing {
namespace {

using namespace std::chrono_literals;
using probes::Reason;

class Netns {
 public:
  Netns() {
    static std::atomic<int> counter{0};
    name_ = "pstest-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    std::string out;
    if (run_command({"ip", "netns", "add", name_}, &out) != 0 ||
        run_command({"ip", "-n", name_, "link", "set", "lo", "up"}, &out) != 0) {
      throw std::runtime_error("cannot make network namespace: " + out);
    }
  }
  ~Netns() { run_command({"ip", "netns", "del", name_}); }

  // Loads an nftables script inside the namespace.
  void nft(const std::string& script) {
    std::string out;
    const int rc = run_command({"ip", "netns", "exec", name_, "nft", "-f", "-"}, &out, script);
    if (rc != 0) {
      throw std::runtime_error("nft failed: " + out);
    }
  }

  // Runs f on a thread inside the namespace. Sockets, resolver threads and child processes
  // made there belong to the namespace.
  void run_inside(const std::function<void()>& f) {
    std::exception_ptr error;
    std::thread t([&] {
      try {
        const int fd = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
          throw std::runtime_error("setns failed");
        }
        close(fd);
        f();
      } catch (...) {
        error = std::current_exception();
      }
    });
    t.join();
    if (error) {
      std::rethrow_exception(error);
    }
  }

 private:
  std::string name_;
};

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root for network namespaces and nftables (CI runs as root)";
    }
    if (!have_program("ip") || !have_program("nft")) {
      GTEST_SKIP() << "needs iproute2 and nftables (make deps installs them)";
    }
    ns_ = std::make_unique<Netns>();
  }

  // A probe of `host:port` from inside the namespace.
  static probes::ProbeResult probe(const std::string& host, uint16_t port,
                                   std::chrono::milliseconds timeout,
                                   config::Expect expect = config::Expect::kTcp) {
    asio::io_context io;
    probes::Resolver resolver(1);
    probes::ProbeSpec spec;
    spec.address = {host, port};
    spec.expect = expect;
    spec.server_name = host;
    spec.timeout = timeout;
    probes::TlsContextCache contexts;
    spec.tls_context = contexts.get({});
    probes::ProbeResult out;
    asio::co_spawn(io, probes::run_probe(spec, resolver),
                   [&](std::exception_ptr, probes::ProbeResult r) { out = std::move(r); });
    io.run();
    return out;
  }

  // A listening server inside the namespace with `rule` applied to its port.
  probes::ProbeResult probe_behind(const std::string& rule) {
    probes::ProbeResult result;
    ns_->run_inside([&] {
      asio::io_context server_io;
      LoopbackServer server(server_io, {Script::kHang});
      ns_->nft("table inet pstest {\n chain input {\n  type filter hook input priority 0;\n"
               "  tcp dport " + std::to_string(server.port()) + " " + rule + "\n }\n}\n");
      // The server never needs to run: the rule stops the SYN before it is accepted.
      result = probe("127.0.0.1", server.port(), 500ms);
    });
    return result;
  }

  std::unique_ptr<Netns> ns_;
};

TEST_F(NetnsTest, FirewallDropIsConnectTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto r = probe_behind("drop");
  EXPECT_EQ(r.reason, Reason::kConnectTimeout) << r.detail;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(NetnsTest, FirewallRejectWithIcmpIsHostUnreachable) {
  const auto r = probe_behind("reject with icmp type host-unreachable");
  EXPECT_EQ(r.reason, Reason::kHostUnreachable) << r.detail;
}

TEST_F(NetnsTest, FirewallRejectWithResetIsConnectionRefused) {
  const auto r = probe_behind("reject with tcp reset");
  EXPECT_EQ(r.reason, Reason::kConnectionRefused) << r.detail;
}

TEST_F(NetnsTest, UnreachableResolverIsDnsError) {
  // The namespace has only loopback: the system resolver cannot be reached from it, so the
  // lookup fails without a packet leaving the namespace.
  probes::ProbeResult r;
  ns_->run_inside([&] { r = probe("portsentinel-test.invalid", 443, 3000ms); });
  EXPECT_EQ(r.reason, Reason::kDnsError) << r.detail;
  EXPECT_NE(r.detail.find("portsentinel-test.invalid"), std::string::npos) << r.detail;
}

TEST_F(NetnsTest, PortForwardToThePlainPortIsPlaintextHttp) {
  if (!Nginx::available()) {
    GTEST_SKIP() << "nginx is not installed (make deps installs Debian's nginx)";
  }
  // The "public" TLS port is forwarded (DNAT) to nginx's plain HTTP port: the classic
  // port-mapping mistake, made real with nftables inside the namespace.
  TempDir dir;
  probes::ProbeResult r;
  ns_->run_inside([&] {
    const auto ports = free_ports(2);
    const uint16_t plain = ports[0];
    const uint16_t published = ports[1];
    Nginx nginx(dir, "  server {\n    listen 127.0.0.1:" + std::to_string(plain) +
                         ";\n    return 200 \"backend\\n\";\n  }\n",
                {plain});
    ns_->nft("table ip pstest_nat {\n chain output {\n  type nat hook output priority -100;\n"
             "  ip daddr 127.0.0.1 tcp dport " + std::to_string(published) +
             " dnat to 127.0.0.1:" + std::to_string(plain) + "\n }\n}\n");
    r = probe("127.0.0.1", published, 2000ms, config::Expect::kTls);
  });
  EXPECT_EQ(r.reason, Reason::kPlaintextHttp) << r.detail;
  EXPECT_NE(r.detail.find("HTTP/1.1 400 Bad Request"), std::string::npos) << r.detail;
}

TEST_F(NetnsTest, DaemonReportsConnectTimeoutInMetrics) {
  TempDir dir;
  ns_->run_inside([&] {
    asio::io_context server_io;
    LoopbackServer server(server_io, {Script::kHang});
    ns_->nft("table inet pstest {\n chain input {\n  type filter hook input priority 0;\n"
             "  tcp dport " + std::to_string(server.port()) + " drop\n }\n}\n");
    const auto cfg = dir.write(
        "c.yaml", "defaults: {interval: 500ms, timeout: 300ms}\ntargets:\n"
                  "  - {name: firewalled, address: \"" + server.host_port() +
                      "\", expect: tls}\n");
    // Forked from this thread, the daemon lives in the namespace too.
    Process daemon({portsentinel_binary(), "run", "--config", cfg, "--web.listen-address",
                    "127.0.0.1:0", "--state-dir", dir.path()},
                   dir.file("log"));
    std::optional<uint16_t> port;
    ASSERT_TRUE(eventually([&] { return (port = listen_port_from_log(daemon.log())).has_value(); }))
        << daemon.log();
    const std::string line =
        "portsentinel_probe_reason{reason=\"connect_timeout\",target=\"firewalled\"} 1";
    EXPECT_TRUE(eventually([&] {
      auto reply = http_request(*port, "GET", "/metrics");
      return reply && reply->body.find(line) != std::string::npos;
    })) << daemon.log();
    EXPECT_EQ(daemon.stop(SIGTERM, 3s), std::optional<int>(0));
  });
}

}  // namespace
}  // namespace portsentinel::testing
