#include "daemon/diagnose.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "config/config.h"
#include "daemon/logging.h"
#include "probes/probe.h"
#include "probes/tls_context.h"

namespace portsentinel::daemon {
namespace {

namespace asio = boost::asio;
using probes::Reason;

struct Check {
  std::string name;
  Reason reason;
  std::string detail;
};

int usage(const std::string& message) {
  std::cerr << "portsentinel diagnose: " << message
            << "\nusage: portsentinel diagnose HOST[:PORT] [--json] [--timeout DUR] "
               "[--ca-file FILE] [--server-name NAME]\n";
  return 2;
}

// Which check a reason belongs to, in the order a person checks them.
std::string check_of(Reason r) {
  switch (r) {
    case Reason::kDnsError:
      return "dns";
    case Reason::kConnectionRefused:
    case Reason::kConnectTimeout:
    case Reason::kHostUnreachable:
      return "tcp_connect";
    case Reason::kCertExpired:
    case Reason::kCertNotYetValid:
    case Reason::kCertHostnameMismatch:
    case Reason::kCertUntrusted:
      return "certificate";
    case Reason::kHttpStatus:
    case Reason::kHttpNoResponse:
    case Reason::kNoHttpsRedirect:
      return "http";
    default:
      return "tls_handshake";
  }
}

std::vector<Check> checks_from(const probes::ProbeResult& r) {
  const std::vector<std::string> order{"dns", "tcp_connect", "tls_handshake", "certificate",
                                       "http"};
  std::vector<Check> out;
  const std::string failed = r.ok() ? "" : check_of(r.reason);
  for (const auto& name : order) {
    if (name == failed) {
      out.push_back({name, r.reason, r.detail});
      break;
    }
    std::string detail;
    if (name == "tcp_connect") {
      detail = "connected to " + r.peer;
    } else if (name == "tls_handshake" && r.tls) {
      detail = r.tls->version + " " + r.tls->cipher;
    } else if (name == "certificate" && r.tls && r.tls->leaf) {
      const auto days = (r.tls->leaf->not_after - std::time(nullptr)) / 86400;
      detail = r.tls->leaf->subject + ", issued by " + r.tls->leaf->issuer + ", " +
               std::to_string(days) + " days left";
    } else if (name == "http" && r.http) {
      detail = r.http->status_line;
    }
    out.push_back({name, Reason::kOk, detail});
  }
  return out;
}

}  // namespace

int run_diagnose(const std::vector<std::string>& args) {
  std::string target;
  bool json = false;
  config::Target t;
  t.name = "diagnose";
  t.expect = config::Expect::kHttps;
  t.timeout = std::chrono::seconds(5);
  std::string server_name;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "--json") {
      json = true;
    } else if (a == "--timeout") {
      auto v = value();
      auto d = v ? config::parse_duration(*v) : std::nullopt;
      if (!d || d->count() <= 0) {
        return usage("--timeout needs a duration like 5s");
      }
      t.timeout = *d;
    } else if (a == "--ca-file") {
      auto v = value();
      if (!v) {
        return usage("--ca-file needs a FILE");
      }
      t.tls.ca_file = *v;
    } else if (a == "--server-name") {
      auto v = value();
      if (!v) {
        return usage("--server-name needs a NAME");
      }
      server_name = *v;
    } else if (!a.empty() && a[0] == '-') {
      return usage("unknown option \"" + a + "\"");
    } else if (target.empty()) {
      target = a;
    } else {
      return usage("only one HOST[:PORT] is diagnosed at a time");
    }
  }
  if (target.empty()) {
    return usage("missing HOST[:PORT]");
  }
  std::string error;
  const bool has_port = target.front() == '[' ? target.find("]:") != std::string::npos
                                              : target.find(':') != std::string::npos &&
                                                    target.find(':') == target.rfind(':');
  const std::string with_port =
      has_port ? target
               : (target.find(':') != std::string::npos ? "[" + target + "]" : target) + ":443";
  auto hp = config::parse_host_port(with_port, &error);
  if (!hp) {
    return usage(error);
  }
  t.address = *hp;
  t.server_name = server_name.empty() ? hp->host : server_name;

  probes::ProbeSpec spec;
  spec.address = t.address;
  spec.expect = t.expect;
  spec.server_name = t.server_name;
  spec.timeout = t.timeout;
  spec.http = t.http;
  probes::TlsContextCache contexts;
  try {
    spec.tls_context = contexts.get(t.tls);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  asio::io_context io(1);
  probes::Resolver resolver(1);
  probes::ProbeResult result;
  asio::co_spawn(io, probes::run_probe(spec, resolver),
                 [&](std::exception_ptr e, probes::ProbeResult r) {
                   if (e) {
                     result.reason = Reason::kProbeError;
                     result.detail = "internal error";
                   } else {
                     result = std::move(r);
                   }
                 });
  io.run();

  const auto checks = checks_from(result);
  if (json) {
    std::string out = "{\"input\":" + json_quote(target) +
                      ",\"address\":" + json_quote(config::format_host_port(t.address)) +
                      ",\"server_name\":" + json_quote(t.server_name) +
                      ",\"ok\":" + (result.ok() ? "true" : "false") + ",\"checks\":[";
    for (size_t i = 0; i < checks.size(); ++i) {
      const auto& c = checks[i];
      out += (i ? "," : "") + std::string("{\"name\":") + json_quote(c.name) +
             ",\"reason\":" + json_quote(probes::reason_name(c.reason)) +
             ",\"detail\":" + json_quote(c.detail) +
             ",\"remedy\":" + json_quote(c.reason == Reason::kOk ? "" : probes::reason_remedy(c.reason)) +
             "}";
    }
    std::cout << out << "]}\n";
  } else {
    const bool color = isatty(STDOUT_FILENO) != 0;
    std::cout << "portsentinel diagnose " << config::format_host_port(t.address)
              << " (server name " << t.server_name << ")\n";
    for (const auto& c : checks) {
      const bool ok = c.reason == Reason::kOk;
      const char* mark = ok ? (color ? "\033[32m✔\033[0m" : "OK  ") : (color ? "\033[31m✘\033[0m" : "FAIL");
      std::cout << "  " << mark << " " << c.name;
      if (!ok) {
        std::cout << ": " << probes::reason_name(c.reason);
      }
      if (!c.detail.empty()) {
        std::cout << " — " << c.detail;
      }
      std::cout << "\n";
      if (!ok) {
        std::cout << "       remedy: " << probes::reason_remedy(c.reason) << "\n";
      }
    }
  }
  return result.ok() ? 0 : 1;
}

}  // namespace portsentinel::daemon
