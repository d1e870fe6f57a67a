#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace portsentinel::testing {

// A scratch directory removed with its contents when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Certificates made at test time: a CA and leaves it issues (ECDSA P-256), as PEM files.
class TestPki {
 public:
  struct Leaf {
    std::string cert_file;  // leaf, then the chain up to (not including) the root
    std::string key_file;
    std::string fingerprint_sha256;  // lowercase hex of the leaf's DER
  };
  struct LeafOptions {
    std::vector<std::string> dns_names{"localhost"};
    std::vector<std::string> ip_addresses{"127.0.0.1"};
    std::chrono::seconds not_before{-3600};  // relative to now
    std::chrono::seconds not_after{30 * 24 * 3600};
    bool self_signed = false;
    std::string common_name = "portsentinel test";
    int extra_chain_certs = 0;  // pad the served chain with this many extra certificates
  };

  explicit TestPki(const TempDir& dir);
  ~TestPki();
  const std::string& ca_file() const { return ca_file_; }
  Leaf issue(const std::string& name, const LeafOptions& options);

 private:
  const TempDir& dir_;
  void* ca_key_ = nullptr;   // EVP_PKEY*
  void* ca_cert_ = nullptr;  // X509*
  std::string ca_file_;
  long serial_ = 1;
};

}  // namespace portsentinel::testing
