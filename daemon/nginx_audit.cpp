#include "daemon/nginx_audit.h"

#include <glob.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace portsentinel::daemon {
namespace {

struct Token {
  std::string text;
  std::string file;
  int line = 0;
  bool quoted = false;
};

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

void tokenize(const std::string& text, const std::string& file, int first_line,
              std::vector<Token>& out) {
  int line = first_line;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') {
        ++i;
      }
    } else if (c == ';' || c == '{' || c == '}') {
      out.push_back({std::string(1, c), file, line, false});
      ++i;
    } else if (c == '"' || c == '\'') {
      const char quote = c;
      std::string word;
      const int start = line;
      ++i;
      while (i < text.size() && text[i] != quote) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          ++i;
        }
        if (text[i] == '\n') {
          ++line;
        }
        word += text[i++];
      }
      ++i;
      out.push_back({word, file, start, true});
    } else {
      std::string word;
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) &&
             text[i] != ';' && text[i] != '{' && text[i] != '}') {
        word += text[i++];
      }
      out.push_back({word, file, line, false});
    }
  }
}

// Tokens of `path` with include directives replaced by the included files' tokens.
void tokenize_file(const std::string& path, std::vector<Token>& out,
                   std::vector<AuditFinding>& findings, int depth) {
  bool ok = false;
  const std::string text = read_file(path, &ok);
  if (!ok) {
    findings.push_back({probes::Reason::kConfigError, path, 0, "cannot read " + path});
    return;
  }
  std::vector<Token> own;
  tokenize(text, path, 1, own);
  for (size_t i = 0; i < own.size(); ++i) {
    if (own[i].text == "include" && !own[i].quoted && i + 2 < own.size() &&
        own[i + 2].text == ";" && depth < 16) {
      std::string pattern = own[i + 1].text;
      if (!pattern.empty() && pattern[0] != '/') {
        pattern = dir_of(path) + "/" + pattern;
      }
      glob_t g{};
      if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
        for (size_t k = 0; k < g.gl_pathc; ++k) {
          tokenize_file(g.gl_pathv[k], out, findings, depth + 1);
        }
      }
      globfree(&g);
      i += 2;
      continue;
    }
    out.push_back(std::move(own[i]));
  }
}

struct Directive {
  std::vector<Token> words;  // name first
};

struct Server {
  Token start;
  bool apache = false;  // VirtualHost + SSLEngine rather than listen ... ssl
  std::vector<Directive> listens;
  std::vector<Directive> names;
  std::vector<Directive> certificates;
  std::vector<Directive> keys;
  bool ssl_on = false;
};

// Walks the token stream and collects every `server { }` block's directives of interest.
std::vector<Server> servers(const std::vector<Token>& tokens) {
  std::vector<Server> out;
  std::vector<int> open_servers;  // stack depth at which each open server block started
  std::vector<std::string> blocks;
  std::vector<Token> words;
  for (const Token& t : tokens) {
    if (!t.quoted && t.text == "{") {
      const std::string name = words.empty() ? "" : words[0].text;
      if (name == "server" && (blocks.empty() || blocks.back() != "upstream")) {
        out.push_back(Server{words[0], false, {}, {}, {}, {}, false});
        open_servers.push_back(static_cast<int>(out.size()) - 1);
      } else {
        open_servers.push_back(-1);
      }
      blocks.push_back(name);
      words.clear();
    } else if (!t.quoted && t.text == "}") {
      if (!blocks.empty()) {
        blocks.pop_back();
        open_servers.pop_back();
      }
      words.clear();
    } else if (!t.quoted && t.text == ";") {
      // The innermost open server block owns the directive (not one inside a location).
      int server = -1;
      if (!open_servers.empty() && open_servers.back() >= 0) {
        server = open_servers.back();
      }
      if (server >= 0 && !words.empty()) {
        Server& s = out[static_cast<size_t>(server)];
        const std::string& name = words[0].text;
        if (name == "listen") {
          s.listens.push_back({words});
        } else if (name == "server_name") {
          s.names.push_back({words});
        } else if (name == "ssl_certificate") {
          s.certificates.push_back({words});
        } else if (name == "ssl_certificate_key") {
          s.keys.push_back({words});
        } else if (name == "ssl" && words.size() > 1 && words[1].text == "on") {
          s.ssl_on = true;
        }
      }
      words.clear();
    } else {
      words.push_back(t);
    }
  }
  return out;
}

int listen_port(const std::string& arg) {
  if (arg.rfind("unix:", 0) == 0) {
    return -1;
  }
  std::string port = arg;
  const auto colon = arg.rfind(':');
  if (colon != std::string::npos) {
    port = arg.substr(colon + 1);
  } else if (arg.find('.') != std::string::npos || arg == "*") {
    return 80;  // an address alone listens on 80
  }
  if (port.empty() || !std::all_of(port.begin(), port.end(), ::isdigit)) {
    return -1;
  }
  return std::stoi(port);
}

void audit_certificate(const Server& s, const std::string& base_dir,
                       std::vector<AuditFinding>& findings) {
  if (s.certificates.empty()) {
    findings.push_back({probes::Reason::kConfigError, s.start.file, s.start.line,
                        s.apache ? "a VirtualHost with SSLEngine on but no SSLCertificateFile"
                                 : "a TLS server block without ssl_certificate: the handshake "
                                   "fails"});
    return;
  }
  const Directive& cert_directive = s.certificates.front();
  if (cert_directive.words.size() < 2) {
    return;
  }
  const Token& cert_path = cert_directive.words[1];
  if (cert_path.text.find('$') != std::string::npos) {
    return;  // chosen at run time ($ssl_server_name): nothing to check statically
  }
  auto resolve = [&](const std::string& p) { return p[0] == '/' ? p : base_dir + "/" + p; };
  const std::string cert_file = resolve(cert_path.text);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(cert_file.c_str(), "r"), std::fclose);
  if (!f) {
    findings.push_back({probes::Reason::kConfigError, cert_path.file, cert_path.line,
                        "ssl_certificate " + cert_file + " is missing or unreadable: " +
                            std::strerror(errno)});
    return;
  }
  std::unique_ptr<X509, void (*)(X509*)> cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr),
                                              X509_free);
  if (!cert) {
    findings.push_back({probes::Reason::kConfigError, cert_path.file, cert_path.line,
                        "ssl_certificate " + cert_file + " holds no PEM certificate"});
    return;
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0) {
    findings.push_back({probes::Reason::kCertExpired, cert_path.file, cert_path.line,
                        "ssl_certificate " + cert_file + " has expired"});
  } else if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) > 0) {
    findings.push_back({probes::Reason::kCertNotYetValid, cert_path.file, cert_path.line,
                        "ssl_certificate " + cert_file + " is not valid yet"});
  }
  if (!s.keys.empty() && s.keys.front().words.size() > 1 &&
      s.keys.front().words[1].text.find('$') == std::string::npos) {
    const Token& key_path = s.keys.front().words[1];
    const std::string key_file = resolve(key_path.text);
    std::unique_ptr<FILE, int (*)(FILE*)> k(std::fopen(key_file.c_str(), "r"), std::fclose);
    if (!k) {
      findings.push_back({probes::Reason::kConfigError, key_path.file, key_path.line,
                          "ssl_certificate_key " + key_file + " is missing or unreadable: " +
                              std::strerror(errno)});
    } else {
      std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
          PEM_read_PrivateKey(k.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
      if (!key || X509_check_private_key(cert.get(), key.get()) != 1) {
        findings.push_back({probes::Reason::kConfigError, key_path.file, key_path.line,
                            "ssl_certificate_key " + key_file + " does not match " + cert_file});
      }
      ERR_clear_error();
    }
  }
  for (const auto& names : s.names) {
    for (size_t i = 1; i < names.words.size(); ++i) {
      const Token& name = names.words[i];
      if (name.text.empty() || name.text == "_" || name.text == "localhost.localdomain" ||
          name.text[0] == '~' || name.text.find('*') != std::string::npos) {
        continue;  // catch-all, regex or wildcard names: not a single host to check
      }
      if (X509_check_host(cert.get(), name.text.c_str(), name.text.size(), 0, nullptr) != 1) {
        findings.push_back({probes::Reason::kCertHostnameMismatch, name.file, name.line,
                            "server_name " + name.text + " is not covered by " + cert_file});
      }
    }
  }
}

std::vector<AuditFinding> audit_servers(const std::vector<Server>& parsed, const std::string& base,
                                        const std::set<int>& tls_ports,
                                        std::vector<AuditFinding> findings) {
  for (const Server& s : parsed) {
    bool tls = s.ssl_on;
    for (const auto& l : s.listens) {
      if (l.words.size() < 2) {
        continue;
      }
      const bool ssl = std::any_of(l.words.begin() + 2, l.words.end(),
                                   [](const Token& w) { return w.text == "ssl"; }) ||
                       s.ssl_on;
      tls = tls || ssl;
      const int port = listen_port(l.words[1].text);
      const std::string what = s.apache ? "<VirtualHost " + l.words[1].text + ">"
                                        : "listen " + l.words[1].text;
      if (tls_ports.count(port) && !ssl) {
        findings.push_back({probes::Reason::kPlaintextHttp, l.words[0].file, l.words[0].line,
                            what + (s.apache ? " without SSLEngine on" : " without ssl") +
                                ": TLS clients on port " + std::to_string(port) +
                                " get plain HTTP",
                            port});
      }
      if (port == 80 && ssl) {
        findings.push_back({probes::Reason::kTlsOnPlainPort, l.words[0].file, l.words[0].line,
                            what + (s.apache ? " with SSLEngine on" : " ssl") +
                                ": the plain HTTP port speaks TLS; http:// clients fail",
                            port});
      }
    }
    if (tls) {
      audit_certificate(s, base, findings);
    }
  }
  return findings;
}

// Apache: one directive per line, <VirtualHost ...> sections, Include/IncludeOptional globs
// (relative to the ServerRoot, taken as the main file's directory).
void apache_lines(const std::string& path, const std::string& root,
                  std::vector<std::vector<Token>>& out, std::vector<AuditFinding>& findings,
                  int depth) {
  bool ok = false;
  const std::string text = read_file(path, &ok);
  if (!ok) {
    findings.push_back({probes::Reason::kConfigError, path, 0, "cannot read " + path});
    return;
  }
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::vector<Token> words;
    tokenize(line, path, number, words);  // '#' comments and quotes as in nginx
    if (words.empty()) {
      continue;
    }
    std::string name = words[0].text;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if ((name == "include" || name == "includeoptional") && words.size() > 1 && depth < 16) {
      std::string pattern = words[1].text;
      if (!pattern.empty() && pattern[0] != '/') {
        pattern = root + "/" + pattern;
      }
      glob_t g{};
      if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
        for (size_t k = 0; k < g.gl_pathc; ++k) {
          apache_lines(g.gl_pathv[k], root, out, findings, depth + 1);
        }
      }
      globfree(&g);
      continue;
    }
    out.push_back(std::move(words));
  }
}

std::vector<Server> apache_servers(const std::vector<std::vector<Token>>& lines) {
  std::vector<Server> out;
  Server* current = nullptr;
  for (const auto& words : lines) {
    std::string name = words[0].text;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "<virtualhost") {
      out.push_back(Server{words[0], true, {}, {}, {}, {}, false});
      current = &out.back();
      for (size_t i = 1; i < words.size(); ++i) {
        std::string address = words[i].text;
        if (!address.empty() && address.back() == '>') {
          address.pop_back();
        }
        if (!address.empty()) {
          Token t = words[i];
          t.text = address;
          current->listens.push_back({{words[0], t}});
        }
      }
    } else if (name == "</virtualhost>") {
      current = nullptr;
    } else if (current != nullptr && words.size() > 1) {
      std::string value = words[1].text;
      std::transform(value.begin(), value.end(), value.begin(), ::tolower);
      if (name == "sslengine") {
        current->ssl_on = value == "on";
      } else if (name == "sslcertificatefile") {
        current->certificates.push_back({words});
      } else if (name == "sslcertificatekeyfile") {
        current->keys.push_back({words});
      } else if (name == "servername" || name == "serveralias") {
        current->names.push_back({words});
      }
    }
  }
  return out;
}

}  // namespace

std::vector<AuditFinding> audit_apache_file(const std::string& path,
                                            const std::set<int>& tls_ports) {
  std::vector<std::vector<Token>> lines;
  std::vector<AuditFinding> findings;
  apache_lines(path, dir_of(path), lines, findings, 0);
  return audit_servers(apache_servers(lines), dir_of(path), tls_ports, std::move(findings));
}

std::vector<AuditFinding> audit_nginx_file(const std::string& path,
                                           const std::set<int>& tls_ports) {
  std::vector<Token> tokens;
  std::vector<AuditFinding> findings;
  tokenize_file(path, tokens, findings, 0);
  return audit_servers(servers(tokens), dir_of(path), tls_ports, std::move(findings));
}

std::vector<AuditFinding> audit_nginx_dump(const std::string& dump,
                                           const std::set<int>& tls_ports) {
  std::vector<Token> tokens;
  std::istringstream in(dump);
  std::string line;
  std::string file = "nginx -T";
  std::string section;
  int first_line = 1;
  auto flush = [&] {
    tokenize(section, file, first_line, tokens);
    section.clear();
  };
  constexpr std::string_view kMarker = "# configuration file ";
  while (std::getline(in, line)) {
    if (line.rfind(kMarker, 0) == 0 && !line.empty() && line.back() == ':') {
      flush();
      file = line.substr(kMarker.size(), line.size() - kMarker.size() - 1);
      first_line = 1;
      continue;
    }
    if (line.rfind("nginx: ", 0) == 0) {
      continue;  // nginx -T's own status lines
    }
    section += line + "\n";
  }
  flush();
  return audit_servers(servers(tokens), "/etc/nginx", tls_ports, {});
}

}  // namespace portsentinel::daemon
