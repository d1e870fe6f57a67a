#include "probes/classify.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

namespace portsentinel::probes {

namespace asio = boost::asio;

bool looks_like_tls_record(std::string_view bytes) {
  if (bytes.empty()) {
    return false;
  }
  const auto type = static_cast<unsigned char>(bytes[0]);
  if (type < 0x14 || type > 0x18) {
    return false;
  }
  return bytes.size() < 2 || static_cast<unsigned char>(bytes[1]) == 0x03;
}

std::optional<Reason> classify_first_bytes_for_tls(std::string_view bytes) {
  if (bytes.empty() || looks_like_tls_record(bytes)) {
    return std::nullopt;
  }
  // Only a prefix may have arrived: "HTT" is still HTTP as far as we can tell.
  constexpr std::string_view kHttp = "HTTP/";
  if (kHttp.substr(0, std::min(bytes.size(), kHttp.size())) ==
      bytes.substr(0, std::min(bytes.size(), kHttp.size()))) {
    return Reason::kPlaintextHttp;
  }
  return Reason::kNotTls;
}

Reason classify_connect_error(const error_code& ec) {
  if (ec == asio::error::connection_refused) {
    return Reason::kConnectionRefused;
  }
  if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable) {
    return Reason::kHostUnreachable;
  }
  if (ec == asio::error::timed_out || ec == asio::error::operation_aborted) {
    return Reason::kConnectTimeout;
  }
  return Reason::kProbeError;
}

Reason classify_handshake_error(const error_code& ec, std::string_view first_bytes,
                                bool timed_out, std::string* detail) {
  // What the server sent decides first: OpenSSL only sees "wrong version number".
  if (auto by_bytes = classify_first_bytes_for_tls(first_bytes)) {
    *detail = "server answered the ClientHello with \"" + printable_first_line(first_bytes) + "\"";
    return *by_bytes;
  }
  if (timed_out) {
    *detail = first_bytes.empty() ? "no answer to the ClientHello before the deadline"
                                  : "TLS handshake did not finish before the deadline";
    return Reason::kHandshakeTimeout;
  }
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    *detail = "server closed the connection during the TLS handshake";
    return Reason::kHandshakeEof;
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    *detail = "connection reset during the TLS handshake";
    return Reason::kHandshakeReset;
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    const unsigned long code = static_cast<unsigned long>(ec.value());
    const int reason = ERR_GET_REASON(code);
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    *detail = buf;
    switch (reason) {
      case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        *detail = "server closed the connection during the TLS handshake";
        return Reason::kHandshakeEof;
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_VERSION_TOO_HIGH:
      case SSL_R_WRONG_SSL_VERSION:
        return Reason::kTlsProtocolVersion;
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      case SSL_R_NO_SHARED_CIPHER:
      case SSL_R_NO_CIPHERS_AVAILABLE:
      case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
        return Reason::kTlsHandshakeFailure;
      case SSL_R_TLSV1_UNRECOGNIZED_NAME:
        return Reason::kTlsUnrecognizedName;
      default:
        break;
    }
    if (reason >= SSL_AD_REASON_OFFSET) {
      *detail = std::string("server sent TLS alert \"") +
                SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET) + "\"";
      return Reason::kTlsAlert;
    }
    // Malformed records and other protocol violations by the peer.
    return Reason::kTlsHandshakeFailure;
  }
  *detail = "TLS handshake failed: " + ec.message();
  return Reason::kProbeError;
}

Reason classify_verify_errors(const std::vector<int>& x509_errors) {
  auto has = [&](std::initializer_list<int> codes) {
    return std::any_of(x509_errors.begin(), x509_errors.end(), [&](int e) {
      return std::find(codes.begin(), codes.end(), e) != codes.end();
    });
  };
  if (x509_errors.empty()) {
    return Reason::kOk;
  }
  if (has({X509_V_ERR_CERT_HAS_EXPIRED})) {
    return Reason::kCertExpired;
  }
  if (has({X509_V_ERR_CERT_NOT_YET_VALID})) {
    return Reason::kCertNotYetValid;
  }
  const bool name = has({X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH});
  const bool only_name = std::all_of(x509_errors.begin(), x509_errors.end(), [](int e) {
    return e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH;
  });
  if (name && only_name) {
    return Reason::kCertHostnameMismatch;
  }
  return Reason::kCertUntrusted;
}

std::string printable_first_line(std::string_view bytes, size_t max) {
  std::string out;
  for (char c : bytes) {
    if (c == '\r' || c == '\n' || out.size() >= max) {
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      if (out.size() + 4 > max) {
        break;  // an escape that does not fit whole is left out, not cut
      }
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

}  // namespace portsentinel::probes
