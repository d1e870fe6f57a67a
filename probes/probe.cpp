#include "probes/probe.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <ctime>

#include "config/address.h"
#include "probes/classify.h"
#include "probes/http_response.h"
#include "probes/tls_context.h"

namespace portsentinel::probes {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

// The server's first bytes, kept to tell "HTTP answered our ClientHello" from "another
// protocol" from "TLS"; OpenSSL alone only reports "wrong version number".
constexpr size_t kFirstBytes = 256;
// Bound on what an HTTP probe reads: the head of any sane response fits.
constexpr size_t kMaxHttpResponse = 16 * 1024;

// A TCP socket that records the first bytes it reads; the next layer of the TLS stream.
class RecordingSocket {
 public:
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;

  explicit RecordingSocket(tcp::socket socket) : socket_(std::move(socket)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
  std::string_view first_bytes() const { return {first_.data(), size_}; }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_compose<Token, void(error_code, size_t)>(
        [this, buffers, started = false](auto& self, error_code ec = {}, size_t n = 0) mutable {
          if (!started) {
            started = true;
            socket_.async_read_some(buffers, std::move(self));
            return;
          }
          if (size_ < first_.size() && n > 0) {
            size_ += asio::buffer_copy(asio::buffer(first_.data() + size_, first_.size() - size_),
                                       buffers, n);
          }
          self.complete(ec, n);
        },
        token, socket_);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  tcp::socket socket_;
  std::array<char, kFirstBytes> first_{};
  size_t size_ = 0;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hex(const unsigned char* data, size_t n) {
  static const char* kHex = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xf];
  }
  return out;
}

std::string name_rfc2253(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

int64_t unix_time(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

CertFacts cert_facts(SSL* ssl, X509* leaf) {
  CertFacts facts;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  X509_digest(leaf, EVP_sha256(), md, &md_len);
  facts.fingerprint_sha256 = hex(md, md_len);
  facts.subject = name_rfc2253(X509_get_subject_name(leaf));
  facts.issuer = name_rfc2253(X509_get_issuer_name(leaf));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr); bn != nullptr) {
    char* s = BN_bn2hex(bn);
    facts.serial = s;
    OPENSSL_free(s);
    BN_free(bn);
  }
  facts.not_before = unix_time(X509_get0_notBefore(leaf));
  facts.not_after = unix_time(X509_get0_notAfter(leaf));
  facts.chain_earliest_expiry = facts.not_after;
  // On the client side the peer chain includes the leaf.
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl); chain != nullptr) {
    for (int i = 0; i < sk_X509_num(chain); ++i) {
      const int64_t t = unix_time(X509_get0_notAfter(sk_X509_value(chain, i)));
      if (t != 0 && t < facts.chain_earliest_expiry) {
        facts.chain_earliest_expiry = t;
      }
    }
  }
  return facts;
}

std::string verify_detail(const std::vector<int>& errors, const std::string& name) {
  std::string out;
  for (int e : errors) {
    if (!out.empty()) {
      out += "; ";
    }
    out += X509_verify_cert_error_string(e);
    if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      out += " (for \"" + name + "\")";
    }
  }
  return out;
}

bool status_expected(const config::HttpOptions& http, int status) {
  return std::any_of(http.expect_status.begin(), http.expect_status.end(),
                     [&](const config::StatusRange& r) { return status >= r.low && status <= r.high; });
}

// Sends one GET and reads the response head (bounded), over a plain or TLS stream.
// Fills r.http and sets r.reason. Returns true when the server closed without sending a byte.
template <typename Stream>
asio::awaitable<bool> http_exchange(Stream& stream, const ProbeSpec& spec, bool over_tls,
                                    asio::steady_timer& deadline, ProbeResult& r) {
  const auto start = Clock::now();
  std::string request = "GET " + spec.http.path + " HTTP/1.1\r\nHost: " + spec.server_name;
  const bool default_port = spec.address.port == (over_tls ? 443 : 80);
  if (!default_port) {
    request += ":" + std::to_string(spec.address.port);
  }
  request +=
      "\r\nUser-Agent: portsentinel\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  auto written = co_await (asio::async_write(stream, asio::buffer(request), no_throw) ||
                           deadline.async_wait(no_throw));
  std::string response;
  response.reserve(1024);
  bool timed_out = written.index() == 1;
  error_code ec = timed_out ? error_code{} : std::get<0>(std::get<0>(written));
  std::array<char, 4096> buf;
  while (!timed_out && !ec && response.size() < kMaxHttpResponse) {
    auto got = co_await (stream.async_read_some(asio::buffer(buf), no_throw) ||
                         deadline.async_wait(no_throw));
    if (got.index() == 1) {
      timed_out = true;
      break;
    }
    auto [read_ec, n] = std::get<0>(got);
    response.append(buf.data(), std::min(n, kMaxHttpResponse - response.size()));
    ec = read_ec;
    if (!over_tls && looks_like_tls_record(response)) {
      break;  // a TLS server answered our plain request with an alert record
    }
    if (auto head = parse_http_head(response)) {
      // nginx's "plain HTTP request was sent to HTTPS port" page is in the body: read a little.
      if (head->status != 400 || response.size() >= head->head_size + 200) {
        break;
      }
    }
  }
  r.phases.http = seconds_since(start);
  if (!over_tls && looks_like_tls_record(response)) {
    r.detail = "a plain HTTP request was answered with a TLS record (first bytes \"" +
               printable_first_line(response, 16) + "\")";
    r.reason = Reason::kTlsOnPlainPort;
    co_return false;
  }
  const auto head = parse_http_head(response);
  if (!head) {
    if (response.empty()) {
      r.detail = timed_out ? "no HTTP response before the deadline"
                           : "the server closed the connection without an HTTP response";
    } else {
      r.detail = "not an HTTP response: \"" + printable_first_line(response) + "\"";
    }
    r.reason = Reason::kHttpNoResponse;
    co_return response.empty() && !timed_out;
  }
  r.http = HttpFacts{head->status, head->status_line, head->location};
  if (!over_tls && head->status == 400 &&
      response.find("The plain HTTP request was sent to HTTPS port") != std::string::npos) {
    r.detail = "nginx answered \"The plain HTTP request was sent to HTTPS port\"";
    r.reason = Reason::kTlsOnPlainPort;
    co_return false;
  }
  if (!over_tls && spec.http.redirect_to_https) {
    const bool redirect = head->status == 301 || head->status == 302 || head->status == 307 ||
                          head->status == 308;
    if (redirect && head->location.rfind("https://", 0) == 0) {
      r.reason = Reason::kOk;
    } else {
      r.detail = "\"" + head->status_line + "\"" +
                 (head->location.empty() ? "" : " Location: " + head->location) +
                 " is not a redirect to https://";
      r.reason = Reason::kNoHttpsRedirect;
    }
    co_return false;
  }
  if (!status_expected(spec.http, head->status)) {
    r.detail = "unexpected status \"" + head->status_line + "\"";
    r.reason = Reason::kHttpStatus;
    co_return false;
  }
  r.reason = Reason::kOk;
  co_return false;
}

asio::awaitable<void> tls_phase(tcp::socket socket, const ProbeSpec& spec,
                                asio::steady_timer& deadline, ProbeResult& r) {
  const auto start = Clock::now();
  asio::ssl::stream<RecordingSocket> tls(std::move(socket), *spec.tls_context);
  SSL* ssl = tls.native_handle();
  // Held for the handshake: a reload may give the target a new memo meanwhile.
  const std::shared_ptr<VerifyMemo> memo = spec.verify_memo;
  VerifyLog verify_log;
  verify_log.memo = memo.get();
  SSL_set_app_data(ssl, &verify_log);
  if (config::is_ip_literal(spec.server_name)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), spec.server_name.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, spec.server_name.c_str());
    SSL_set1_host(ssl, spec.server_name.c_str());
  }
  auto shaken = co_await (tls.async_handshake(asio::ssl::stream_base::client, no_throw) ||
                          deadline.async_wait(no_throw));
  r.phases.tls = seconds_since(start);
  const bool timed_out = shaken.index() == 1;
  const error_code ec = timed_out ? error_code{} : std::get<0>(std::get<0>(shaken));
  if (timed_out || ec) {
    r.reason = classify_handshake_error(ec, tls.next_layer().first_bytes(), timed_out, &r.detail);
    SSL_set_app_data(ssl, nullptr);
    co_return;
  }
  TlsFacts facts;
  facts.version = SSL_get_version(ssl);
  facts.cipher = SSL_get_cipher_name(ssl);
  if (X509* leaf = SSL_get1_peer_certificate(ssl); leaf != nullptr) {
    facts.leaf = cert_facts(ssl, leaf);
    X509_free(leaf);
  } else {
    verify_log.errors.push_back(X509_V_ERR_UNSPECIFIED);
  }
  SSL_set_app_data(ssl, nullptr);
  facts.verified = verify_log.errors.empty();
  r.tls = std::move(facts);
  const Reason verdict = classify_verify_errors(verify_log.errors);
  if (verdict != Reason::kOk && !spec.insecure_skip_verify) {
    r.detail = verify_detail(verify_log.errors, spec.server_name);
    r.reason = verdict;
    co_return;
  }
  if (spec.expect == config::Expect::kHttps) {
    co_await http_exchange(tls, spec, true, deadline, r);
    co_return;
  }
  r.reason = Reason::kOk;
}

// The TLS version a second connection to `peer` negotiates, or nullopt when it does not.
asio::awaitable<std::optional<std::string>> tls_answers(const tcp::endpoint& peer,
                                                        const ProbeSpec& spec,
                                                        asio::steady_timer& deadline) {
  tcp::socket socket(co_await asio::this_coro::executor);
  auto connected = co_await (socket.async_connect(peer, no_throw) || deadline.async_wait(no_throw));
  if (connected.index() == 1 || std::get<0>(std::get<0>(connected))) {
    co_return std::nullopt;
  }
  asio::ssl::stream<tcp::socket> tls(std::move(socket), *spec.tls_context);
  if (!config::is_ip_literal(spec.server_name)) {
    SSL_set_tlsext_host_name(tls.native_handle(), spec.server_name.c_str());
  }
  auto shaken = co_await (tls.async_handshake(asio::ssl::stream_base::client, no_throw) ||
                          deadline.async_wait(no_throw));
  if (shaken.index() == 1 || std::get<0>(std::get<0>(shaken))) {
    co_return std::nullopt;
  }
  co_return std::string(SSL_get_version(tls.native_handle()));
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return config::format_host_port({ep.address().to_string(), ep.port()});
}

}  // namespace

asio::awaitable<ProbeResult> run_probe(const ProbeSpec& spec, Resolver& resolver) {
  auto executor = co_await asio::this_coro::executor;
  const auto start = Clock::now();
  ProbeResult r;
  asio::steady_timer deadline(executor, spec.timeout);
  const std::string target = config::format_host_port(spec.address);

  auto resolved = co_await (resolver.resolve(spec.address.host, spec.address.port) ||
                            deadline.async_wait(no_throw));
  r.phases.resolve = seconds_since(start);
  if (resolved.index() == 1) {
    r.reason = Reason::kDnsError;
    r.detail = "DNS lookup of \"" + spec.address.host + "\" did not finish in time";
  } else if (auto& [ec, endpoints] = std::get<0>(resolved); ec) {
    r.reason = Reason::kDnsError;
    r.detail = "cannot resolve \"" + spec.address.host + "\": " + ec.message();
  } else {
    const auto connect_start = Clock::now();
    tcp::socket socket(executor);
    auto connected =
        co_await (asio::async_connect(socket, endpoints, no_throw) || deadline.async_wait(no_throw));
    r.phases.connect = seconds_since(connect_start);
    if (connected.index() == 1) {
      r.reason = Reason::kConnectTimeout;
      r.detail = "no answer to the TCP connection attempt to " + target + " in time";
    } else if (auto& [connect_ec, peer] = std::get<0>(connected); connect_ec) {
      r.reason = classify_connect_error(connect_ec);
      r.detail = "connect to " + target + ": " + connect_ec.message();
    } else {
      r.peer = endpoint_text(peer);
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      switch (spec.expect) {
        case config::Expect::kTcp:
          r.reason = Reason::kOk;
          break;
        case config::Expect::kTls:
        case config::Expect::kHttps:
          co_await tls_phase(std::move(socket), spec, deadline, r);
          break;
        case config::Expect::kHttp: {
          const bool closed_silently = co_await http_exchange(socket, spec, false, deadline, r);
          // A TLS server closes on a plain request without a word (OpenSSL does; nginx answers
          // with its 400 page, handled above). The evidence then is a TLS handshake that
          // succeeds on the same port.
          if (closed_silently && spec.tls_context) {
            if (auto version = co_await tls_answers(peer, spec, deadline)) {
              r.reason = Reason::kTlsOnPlainPort;
              r.detail = "the port closed a plain HTTP request without answering, and a TLS "
                         "handshake on it succeeded (" + *version + ")";
            }
          }
          break;
        }
      }
    }
  }
  r.phases.total = seconds_since(start);
  co_return r;
}

}  // namespace portsentinel::probes
