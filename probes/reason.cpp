#include "probes/reason.h"

namespace portsentinel::probes {
namespace {

struct ReasonInfo {
  std::string_view name;
  std::string_view remedy;
};

constexpr std::array<ReasonInfo, kReasonCount> kInfo{{
    {"ok", "Nothing to do."},
    {"dns_error",
     "The name does not resolve: check the DNS record and the resolver (`getent hosts NAME`, "
     "`dig NAME`)."},
    {"connection_refused",
     "Nothing listens on the port, or a firewall rejects it: check the server runs and listens "
     "(`ss -tlnp 'sport = :PORT'`), then the firewall (`nft list ruleset`)."},
    {"connect_timeout",
     "SYN got no answer: a firewall or cloud security group drops the port, or the host is down. "
     "Check `nft list ruleset` / the security group inbound rules, then `ping HOST`."},
    {"host_unreachable",
     "No route to the host, or a firewall answers with ICMP unreachable: check routing "
     "(`ip route get ADDR`) and reject rules (`nft list ruleset`)."},
    {"handshake_timeout",
     "TCP connected but nothing answered the TLS ClientHello: a port forward or load balancer "
     "sends this port to a backend that does not speak TLS. Check the mapping and "
     "`openssl s_client -connect HOST:PORT`."},
    {"handshake_eof",
     "The server closed the connection during the TLS handshake: a port forward to the wrong "
     "backend port, or a proxy with no backend. Check the mapping and the server's error log."},
    {"handshake_reset",
     "The connection was reset during the TLS handshake: a proxy or middlebox rejects it, or the "
     "backend port is wrong. Check the forward and `openssl s_client -connect HOST:PORT`."},
    {"plaintext_http",
     "The port answers plain HTTP to a TLS ClientHello: the server listens without TLS (nginx: "
     "`listen 443;` lacks `ssl`). Add `ssl` to the listen directive; `curl -v http://HOST:PORT/` "
     "proves it."},
    {"not_tls",
     "Another protocol answers on this port (another program owns it): find the owner with "
     "`ss -tlnp 'sport = :PORT'` and move it or the web server."},
    {"tls_protocol_version",
     "Client and server share no TLS version: enable TLS 1.2/1.3 on the server (nginx "
     "`ssl_protocols TLSv1.2 TLSv1.3;`) or lower tls.min_version; "
     "`openssl s_client -tls1_3 -connect HOST:PORT` proves it."},
    {"tls_handshake_failure",
     "The server rejected the handshake (no shared cipher or key type): check ssl_ciphers and the "
     "certificate key type; `openssl s_client -connect HOST:PORT` shows the alert."},
    {"tls_unrecognized_name",
     "The server has no certificate for this SNI name: add the name to server_name/the "
     "certificate, or fix server_name here; `openssl s_client -servername NAME -connect "
     "HOST:PORT`."},
    {"tls_alert",
     "The server aborted the handshake with a TLS alert: see the detail for which, and "
     "`openssl s_client -connect HOST:PORT` for the server's view."},
    {"cert_expired",
     "The served certificate has expired: renew it and reload the server; `openssl s_client "
     "-connect HOST:PORT | openssl x509 -noout -dates` proves it."},
    {"cert_not_yet_valid",
     "The served certificate is not valid yet: check the clocks (`timedatectl`) and the "
     "certificate's notBefore."},
    {"cert_hostname_mismatch",
     "The certificate does not cover the name: serve the right certificate for this server_name "
     "(a default server block or another vhost answered); check its SANs with `openssl x509 "
     "-noout -ext subjectAltName`."},
    {"cert_untrusted",
     "The chain does not verify: serve the full chain (fullchain.pem, not cert.pem) or set "
     "tls.ca_file for a private CA; `openssl s_client -showcerts -connect HOST:PORT`."},
    {"tls_on_plain_port",
     "A plain-HTTP port speaks TLS (nginx: `listen 80 ssl;`): remove `ssl` from the plain "
     "listen directive; `curl -v http://HOST:PORT/` proves it."},
    {"http_status",
     "The HTTP status is not the expected one: check the application and the proxy's upstream; "
     "`curl -sv URL` shows it."},
    {"no_https_redirect",
     "The plain-HTTP port does not redirect to https: add `return 301 https://$host$request_uri;` "
     "to the port-80 server; `curl -sI http://HOST/` proves it."},
    {"http_no_response",
     "The port accepted the connection but sent no HTTP response (closed or stayed silent): a "
     "port forward to a dead backend or a proxy without upstream. `curl -v http://HOST:PORT/` "
     "proves it."},
    {"path_mismatch",
     "The paths or addresses of one service disagree (another certificate, no TLS, or a "
     "failure on one of them): a load balancer member, CDN edge or DNS record points at a stale "
     "or wrong host. Compare `openssl s_client -connect ADDR:PORT -servername NAME` on each."},
    {"config_error",
     "The server's TLS configuration cannot work (a certificate or key file missing, unreadable, "
     "or not matching): fix the file and check with `nginx -t` before reloading."},
    {"probe_error",
     "The probe itself failed (local resources or an unexpected error): see the detail and the "
     "daemon's log."},
}};

}  // namespace

std::string_view reason_name(Reason r) { return kInfo[static_cast<size_t>(r)].name; }

std::string_view reason_remedy(Reason r) { return kInfo[static_cast<size_t>(r)].remedy; }

std::string reason_remedy_for(Reason r, std::string_view host, uint16_t port,
                              std::string_view server_name) {
  const std::string port_text = std::to_string(port);
  const std::string_view remedy = reason_remedy(r);
  std::string out;
  out.reserve(remedy.size() + 32);
  for (size_t i = 0; i < remedy.size();) {
    auto take = [&](std::string_view token, std::string_view value) {
      if (remedy.substr(i, token.size()) == token) {
        out += value;
        i += token.size();
        return true;
      }
      return false;
    };
    if (!take("HOST", host) && !take("PORT", port_text) && !take("NAME", server_name) &&
        !take("ADDR", host)) {
      out += remedy[i++];
    }
  }
  return out;
}

std::optional<Reason> reason_from_name(std::string_view name) {
  for (size_t i = 0; i < kReasonCount; ++i) {
    if (kInfo[i].name == name) {
      return static_cast<Reason>(i);
    }
  }
  return std::nullopt;
}

}  // namespace portsentinel::probes
