#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "probes/classify.h"
#include "probes/reason.h"

namespace portsentinel::probes {
namespace {

namespace asio = boost::asio;

TEST(Reasons, EveryReasonHasANameAndARemedyAndRoundTrips) {
  for (size_t i = 0; i < kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    EXPECT_FALSE(reason_name(r).empty());
    EXPECT_FALSE(reason_remedy(r).empty()) << reason_name(r);
    EXPECT_EQ(reason_from_name(reason_name(r)), r);
  }
  EXPECT_FALSE(reason_from_name("nope").has_value());
}

TEST(Reasons, DesignNamesAreThere) {
  for (const char* name :
       {"ok", "dns_error", "connection_refused", "connect_timeout", "host_unreachable",
        "handshake_timeout", "handshake_eof", "handshake_reset", "plaintext_http", "not_tls",
        "tls_protocol_version", "tls_handshake_failure", "tls_unrecognized_name", "tls_alert",
        "cert_expired", "cert_not_yet_valid", "cert_hostname_mismatch", "cert_untrusted",
        "tls_on_plain_port", "http_status", "no_https_redirect", "probe_error"}) {
    EXPECT_TRUE(reason_from_name(name).has_value()) << name;
  }
}

TEST(Reasons, RemedyForFillsInTheTarget) {
  EXPECT_EQ(reason_remedy_for(Reason::kConnectionRefused, "10.0.0.5", 8443, "shop.example.com"),
            "Nothing listens on the port, or a firewall rejects it: check the server runs and "
            "listens (`ss -tlnp 'sport = :8443'`), then the firewall (`nft list ruleset`).");
  EXPECT_NE(reason_remedy_for(Reason::kTlsUnrecognizedName, "h", 443, "shop.example.com")
                .find("-servername shop.example.com -connect h:443"),
            std::string::npos);
}

TEST(Reasons, ReadmeListsEveryReasonWithItsRemedy) {
  std::ifstream in(PORTSENTINEL_SOURCE_DIR "/README.md");
  std::ostringstream text;
  text << in.rdbuf();
  for (size_t i = 0; i < kReasonCount; ++i) {
    const auto r = static_cast<Reason>(i);
    std::string row = "| `" + std::string(reason_name(r)) + "` | ";
    EXPECT_NE(text.str().find(row), std::string::npos) << "README has no row for " << row;
    // The remedy's first clause is there too (the table is made from reason.cpp).
    const std::string start(reason_remedy(r).substr(0, 30));
    EXPECT_NE(text.str().find(row + start), std::string::npos) << row << start;
  }
}

TEST(FirstBytes, TellHttpFromOtherProtocolsFromTls) {
  EXPECT_EQ(classify_first_bytes_for_tls("HTTP/1.1 400 Bad Request\r\n"), Reason::kPlaintextHttp);
  EXPECT_EQ(classify_first_bytes_for_tls("HTT"), Reason::kPlaintextHttp);  // a prefix only
  EXPECT_EQ(classify_first_bytes_for_tls("SSH-2.0-OpenSSH_9.2\r\n"), Reason::kNotTls);
  EXPECT_EQ(classify_first_bytes_for_tls("220 mail.example.com ESMTP\r\n"), Reason::kNotTls);
  EXPECT_EQ(classify_first_bytes_for_tls(std::string("\x16\x03\x03\x00\x7a", 5)), std::nullopt);
  EXPECT_EQ(classify_first_bytes_for_tls(std::string("\x15\x03\x01\x00\x02", 5)), std::nullopt);
  EXPECT_EQ(classify_first_bytes_for_tls(""), std::nullopt);
  EXPECT_EQ(classify_first_bytes_for_tls(std::string("\x16\x01", 2)), Reason::kNotTls);
}

TEST(ConnectErrors, MapToReasons) {
  EXPECT_EQ(classify_connect_error(asio::error::connection_refused), Reason::kConnectionRefused);
  EXPECT_EQ(classify_connect_error(asio::error::host_unreachable), Reason::kHostUnreachable);
  EXPECT_EQ(classify_connect_error(asio::error::network_unreachable), Reason::kHostUnreachable);
  EXPECT_EQ(classify_connect_error(asio::error::timed_out), Reason::kConnectTimeout);
  EXPECT_EQ(classify_connect_error(asio::error::no_descriptors), Reason::kProbeError);
}

error_code ssl_error(int reason) {
  return error_code(static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)),
                    asio::error::get_ssl_category());
}

TEST(HandshakeErrors, BytesDecideBeforeOpenSsl) {
  std::string detail;
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_R_WRONG_VERSION_NUMBER),
                                     "HTTP/1.1 400 Bad Request\r\n", false, &detail),
            Reason::kPlaintextHttp);
  EXPECT_NE(detail.find("HTTP/1.1 400 Bad Request"), std::string::npos);
  EXPECT_EQ(classify_handshake_error(asio::error::eof, "SSH-2.0-x", false, &detail),
            Reason::kNotTls);
}

TEST(HandshakeErrors, TransportEndings) {
  std::string detail;
  EXPECT_EQ(classify_handshake_error(asio::error::eof, "", false, &detail), Reason::kHandshakeEof);
  EXPECT_EQ(classify_handshake_error(asio::ssl::error::stream_truncated, "", false, &detail),
            Reason::kHandshakeEof);
  EXPECT_EQ(classify_handshake_error(asio::error::connection_reset, "", false, &detail),
            Reason::kHandshakeReset);
  EXPECT_EQ(classify_handshake_error({}, "", true, &detail), Reason::kHandshakeTimeout);
}

TEST(HandshakeErrors, AlertsAndVersions) {
  std::string detail;
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION), "", false,
                                     &detail),
            Reason::kTlsProtocolVersion);
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_R_UNSUPPORTED_PROTOCOL), "", false, &detail),
            Reason::kTlsProtocolVersion);
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE), "", false,
                                     &detail),
            Reason::kTlsHandshakeFailure);
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_R_TLSV1_UNRECOGNIZED_NAME), "", false, &detail),
            Reason::kTlsUnrecognizedName);
  EXPECT_EQ(classify_handshake_error(ssl_error(SSL_AD_REASON_OFFSET + SSL_AD_INTERNAL_ERROR), "",
                                     false, &detail),
            Reason::kTlsAlert);
  EXPECT_NE(detail.find("internal error"), std::string::npos) << detail;
}

TEST(VerifyErrors, MostActionableWins) {
  EXPECT_EQ(classify_verify_errors({}), Reason::kOk);
  EXPECT_EQ(classify_verify_errors({X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_CERT_HAS_EXPIRED}),
            Reason::kCertExpired);
  EXPECT_EQ(classify_verify_errors({X509_V_ERR_CERT_NOT_YET_VALID}), Reason::kCertNotYetValid);
  EXPECT_EQ(classify_verify_errors({X509_V_ERR_HOSTNAME_MISMATCH}), Reason::kCertHostnameMismatch);
  EXPECT_EQ(classify_verify_errors({X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT}),
            Reason::kCertUntrusted);
  EXPECT_EQ(classify_verify_errors({X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                                    X509_V_ERR_HOSTNAME_MISMATCH}),
            Reason::kCertUntrusted);
}

TEST(PrintableFirstLine, EscapesAndStops) {
  EXPECT_EQ(printable_first_line("HTTP/1.1 400 Bad\r\nServer: x"), "HTTP/1.1 400 Bad");
  EXPECT_EQ(printable_first_line(std::string("\x16\x03", 2)), "\\x16\\x03");
  EXPECT_EQ(printable_first_line(std::string(500, 'a')).size(), 120u);
  // Escapes count against the bound too (found by tests/fuzz/peer_bytes_fuzz.cpp).
  EXPECT_EQ(printable_first_line(std::string(500, '\xff')).size(), 120u);
  EXPECT_EQ(printable_first_line("abcdefgh\x01", 10), "abcdefgh");
  EXPECT_EQ(printable_first_line("abcdef\x01", 10), "abcdef\\x01");
}

}  // namespace
}  // namespace portsentinel::probes
