#pragma once

#include <set>
#include <string>
#include <vector>

#include "probes/reason.h"

namespace portsentinel::daemon {

// One planted or real mistake in an nginx configuration, with where it is.
struct AuditFinding {
  probes::Reason reason;  // plaintext_http, tls_on_plain_port, config_error, cert_*
  std::string file;
  int line = 0;
  std::string detail;
  int port = 0;  // the listen directive's port, for a finding about one; 0 otherwise
};

// Audits the nginx configuration in `path`, following `include` directives (globs, relative
// to the file's directory). Finds: a TLS port's `listen` without `ssl`, `listen 80 ssl`, TLS
// server blocks without a certificate, certificate or key files that are missing, unreadable,
// expired, not yet valid or do not match, and server names their certificate does not cover.
// `tls_ports`: ports that must speak TLS (443 and 8443, plus the port being diagnosed).
std::vector<AuditFinding> audit_nginx_file(const std::string& path,
                                           const std::set<int>& tls_ports = {443, 8443});

// The same over `nginx -T` output, whose "# configuration file NAME:" lines say where each
// part comes from.
std::vector<AuditFinding> audit_nginx_dump(const std::string& dump,
                                           const std::set<int>& tls_ports = {443, 8443});

// The same checks on an Apache configuration: a <VirtualHost> on a TLS port without
// `SSLEngine on`, `SSLEngine on` on port 80, and the SSLCertificateFile/KeyFile and
// ServerName/ServerAlias checks; Include/IncludeOptional are followed.
std::vector<AuditFinding> audit_apache_file(const std::string& path,
                                            const std::set<int>& tls_ports = {443, 8443});

}  // namespace portsentinel::daemon
