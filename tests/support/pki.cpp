#include "tests/support/pki.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace portsentinel::testing {
namespace {

EVP_PKEY* new_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) {
    throw std::runtime_error("EVP_EC_gen failed");
  }
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) {
    throw std::runtime_error("bad extension " + value);
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                long serial, long not_before, long not_after, bool ca,
                const std::string& san) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert), not_after);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("portsentinel tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  if (ca) {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert, signer, NID_ext_key_usage, "serverAuth");
    if (!san.empty()) {
      add_ext(cert, signer, NID_subject_alt_name, san);
    }
  }
  add_ext(cert, signer, NID_subject_key_identifier, "hash");
  X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return cert;
}

std::string pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

std::string pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/portsentinel-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string p = file(name);
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

TestPki::TestPki(const TempDir& dir) : dir_(dir) {
  EVP_PKEY* key = new_key();
  X509* cert = make_cert(key, "portsentinel test CA", nullptr, nullptr, serial_++, -86400,
                         365L * 86400, true, "");
  ca_key_ = key;
  ca_cert_ = cert;
  ca_file_ = dir_.write("ca.pem", pem(cert));
}

TestPki::~TestPki() {
  X509_free(static_cast<X509*>(ca_cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(ca_key_));
}

TestPki::Leaf TestPki::issue(const std::string& name, const LeafOptions& o) {
  std::string san;
  for (const auto& d : o.dns_names) {
    san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  }
  for (const auto& ip : o.ip_addresses) {
    san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  }
  EVP_PKEY* key = new_key();
  auto* ca_cert = static_cast<X509*>(ca_cert_);
  auto* ca_key = static_cast<EVP_PKEY*>(ca_key_);
  X509* cert = make_cert(key, o.common_name, o.self_signed ? nullptr : ca_cert,
                         o.self_signed ? nullptr : ca_key, serial_++, o.not_before.count(),
                         o.not_after.count(), false, san);
  std::string chain = pem(cert);
  for (int i = 0; i < o.extra_chain_certs; ++i) {
    // Filler: unrelated CA certificates, only there to make the served chain huge.
    EVP_PKEY* k = new_key();
    X509* filler = make_cert(k, "filler " + std::to_string(i), nullptr, nullptr, serial_++,
                             -3600, 3600, true, "");
    chain += pem(filler);
    X509_free(filler);
    EVP_PKEY_free(k);
  }
  Leaf leaf{dir_.write(name + ".pem", chain), dir_.write(name + ".key", pem(key)),
            fingerprint(cert)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return leaf;
}

}  // namespace portsentinel::testing
