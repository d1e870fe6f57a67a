#include "exporters/metrics.h"

#include <openssl/opensslv.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>

namespace portsentinel::exporters {
namespace {

using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::array<const char*, 5> kPhases{"resolve", "connect", "tls", "http", "total"};

// Handshakes on a LAN take milliseconds, across continents hundreds.
constexpr std::array<double, 12> kHandshakeBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   5};
const Histogram::BucketBoundaries kLagBuckets{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                              0.25,  0.5,   1,    2.5,   5,    10};

prometheus::Family<Gauge>& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
prometheus::Family<Counter>& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
prometheus::Family<Histogram>& histogram(prometheus::Registry& r, const char* name,
                                         const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

// The per-target families, in the order they are written.
enum class Family {
  kSuccess,
  kReason,
  kFailures,
  kDuration,
  kHandshake,
  kLastProbe,
  kTlsVersion,
  kTlsCipher,
  kCertInfo,
  kNotAfter,
  kNotBefore,
  kChainExpiry,
  kVerified,
  kCertChanges,
  kHttpStatus,
  kCount,
};

struct FamilyInfo {
  const char* name;
  const char* type;
  const char* help;
};

constexpr std::array<FamilyInfo, static_cast<size_t>(Family::kCount)> kFamilies{{
    {"portsentinel_probe_success", "gauge", "1 when the last probe met its expectation"},
    {"portsentinel_probe_reason", "gauge",
     "The reason of the last probe: one series per target, value 1"},
    {"portsentinel_probe_failures_total", "counter", "Failed probes by reason"},
    {"portsentinel_probe_duration_seconds", "gauge", "Duration of each phase of the last probe"},
    {"portsentinel_tls_handshake_duration_seconds", "histogram", "TLS handshake latency"},
    {"portsentinel_last_probe_timestamp_seconds", "gauge", "When the last probe ended (unix time)"},
    {"portsentinel_tls_version_info", "gauge", "1 for the negotiated TLS version"},
    {"portsentinel_tls_cipher_info", "gauge", "1 for the negotiated cipher"},
    {"portsentinel_tls_cert_info", "gauge",
     "The leaf certificate served, exported even when verification fails"},
    {"portsentinel_tls_cert_not_after_timestamp_seconds", "gauge",
     "Leaf certificate expiry (unix time)"},
    {"portsentinel_tls_cert_not_before_timestamp_seconds", "gauge",
     "Leaf certificate start (unix time)"},
    {"portsentinel_tls_chain_earliest_expiry_timestamp_seconds", "gauge",
     "Earliest expiry in the served chain (unix time)"},
    {"portsentinel_tls_cert_verified", "gauge", "1 when the chain and the name verified"},
    {"portsentinel_tls_cert_changes_total", "counter", "Leaf certificate fingerprint changes seen"},
    {"portsentinel_http_status_code", "gauge", "The last HTTP status"},
}};

using Label = std::pair<std::string_view, std::string_view>;

// As prometheus-cpp writes values: 16 significant digits, NaN and infinities spelled out.
void append_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value < 0 ? "-Inf" : "+Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general, 16);
    out.append(buf, r.ptr);
  }
}

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_label(std::string& out, bool& first, const Label& label) {
  if (!first) {
    out += ',';
  }
  first = false;
  out.append(label.first);
  out += "=\"";
  append_escaped(out, label.second);
  out += '"';
}

}  // namespace

// One target's series. `base` is fixed at creation; the rest is guarded by `mutex`.
struct TargetSeries {
  std::vector<std::pair<std::string, std::string>> base;  // sorted by name, like prometheus-cpp
  size_t index = 0;  // position in Metrics::targets_, guarded by Metrics::targets_mutex_

  std::mutex mutex;
  bool probed = false;
  double success = 0;
  double last_probe = 0;
  std::array<double, kPhases.size()> phases{};
  probes::Reason reason = probes::Reason::kCount;
  std::array<uint64_t, probes::kReasonCount> failures{};
  bool tls = false;
  std::array<uint64_t, kHandshakeBuckets.size() + 1> buckets{};  // the last one is +Inf
  double handshake_sum = 0;
  uint64_t handshake_count = 0;
  double verified = 0;
  uint64_t cert_changes = 0;
  std::string version;
  std::string cipher;
  bool leaf = false;
  std::string fingerprint, subject, issuer, serial;
  double not_after = 0, not_before = 0, chain_expiry = 0;
  bool http = false;
  double http_status = 0;

  // One sample line: name+suffix{base labels merged with `extra` (sorted by name), then
  // `trailing` as the last label} value.
  void sample(std::string& out, std::string_view name, std::string_view suffix,
              std::initializer_list<Label> extra, double value,
              const Label* trailing = nullptr) const {
    out.append(name);
    out.append(suffix);
    out += '{';
    bool first = true;
    auto next = extra.begin();
    for (const auto& [label, label_value] : base) {
      while (next != extra.end() && next->first < label) {
        append_label(out, first, *next++);
      }
      append_label(out, first, {label, label_value});
    }
    while (next != extra.end()) {
      append_label(out, first, *next++);
    }
    if (trailing != nullptr) {
      append_label(out, first, *trailing);
    }
    out += "} ";
    append_value(out, value);
    out += '\n';
  }

  // Appends this target's samples of `family`. Caller holds `mutex`.
  void write(std::string& out, Family family) const {
    if (!probed) {
      return;
    }
    const std::string_view name = kFamilies[static_cast<size_t>(family)].name;
    switch (family) {
      case Family::kSuccess:
        sample(out, name, "", {}, success);
        break;
      case Family::kReason:
        sample(out, name, "", {{"reason", probes::reason_name(reason)}}, 1);
        break;
      case Family::kFailures:
        for (size_t i = 0; i < failures.size(); ++i) {
          if (failures[i] != 0) {
            sample(out, name, "", {{"reason", probes::reason_name(static_cast<probes::Reason>(i))}},
                   static_cast<double>(failures[i]));
          }
        }
        break;
      case Family::kDuration:
        for (size_t i = 0; i < kPhases.size(); ++i) {
          sample(out, name, "", {{"phase", kPhases[i]}}, phases[i]);
        }
        break;
      case Family::kHandshake:
        if (tls) {
          uint64_t cumulative = 0;
          char bound[32];
          for (size_t i = 0; i < buckets.size(); ++i) {
            cumulative += buckets[i];
            std::string_view le = "+Inf";
            if (i < kHandshakeBuckets.size()) {
              const auto r = std::to_chars(bound, bound + sizeof bound, kHandshakeBuckets[i],
                                           std::chars_format::general, 16);
              le = std::string_view(bound, static_cast<size_t>(r.ptr - bound));
            }
            const Label le_label{"le", le};
            sample(out, name, "_bucket", {}, static_cast<double>(cumulative), &le_label);
          }
          sample(out, name, "_sum", {}, handshake_sum);
          sample(out, name, "_count", {}, static_cast<double>(handshake_count));
        }
        break;
      case Family::kLastProbe:
        sample(out, name, "", {}, last_probe);
        break;
      case Family::kTlsVersion:
        if (!version.empty()) {
          sample(out, name, "", {{"version", version}}, 1);
        }
        break;
      case Family::kTlsCipher:
        if (!cipher.empty()) {
          sample(out, name, "", {{"cipher", cipher}}, 1);
        }
        break;
      case Family::kCertInfo:
        if (leaf) {
          sample(out, name, "",
                 {{"fingerprint_sha256", fingerprint},
                  {"issuer", issuer},
                  {"serial", serial},
                  {"subject", subject}},
                 1);
        }
        break;
      case Family::kNotAfter:
        if (leaf) {
          sample(out, name, "", {}, not_after);
        }
        break;
      case Family::kNotBefore:
        if (leaf) {
          sample(out, name, "", {}, not_before);
        }
        break;
      case Family::kChainExpiry:
        if (leaf) {
          sample(out, name, "", {}, chain_expiry);
        }
        break;
      case Family::kVerified:
        if (tls) {
          sample(out, name, "", {}, verified);
        }
        break;
      case Family::kCertChanges:
        if (tls) {
          sample(out, name, "", {}, static_cast<double>(cert_changes));
        }
        break;
      case Family::kHttpStatus:
        if (http) {
          sample(out, name, "", {}, http_status);
        }
        break;
      case Family::kCount:
        break;
    }
  }
};

Metrics::Metrics(const std::string& version, const std::string& revision)
    : registry_(std::make_shared<prometheus::Registry>()),
      ports_(new PortFamilies{
          gauge(*registry_, "portsentinel_port_listeners",
                "Listening sockets on the port (>1 means shared, e.g. SO_REUSEPORT)"),
          gauge(*registry_, "portsentinel_port_owner_info",
                "1 per process owning a listener on the port; expected is true, false, or "
                "unknown when the daemon may not read the process"),
          gauge(*registry_, "portsentinel_port_hijacked",
                "1 while a listener on the port is owned by an unexpected process"),
          counter(*registry_, "portsentinel_port_owner_changes_total",
                  "Changes of the programs owning the port"),
          histogram(*registry_, "portsentinel_port_poll_duration_seconds",
                    "Wall time of one port watch poll")
              .Add({}, Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                   0.0025, 0.005, 0.01, 0.025, 0.05, 0.1}),
      }),
      alerting_(new AlertingFamilies{
          counter(*registry_, "portsentinel_alertmanager_send_failures_total",
                  "Failed pushes to an Alertmanager (retried with backoff)"),
          counter(*registry_, "portsentinel_alerts_dropped_total",
                  "Resolved alerts dropped because an Alertmanager stayed unreachable and the "
                  "queue was full"),
      }),
      scheduler_lag_(histogram(*registry_, "portsentinel_scheduler_lag_seconds",
                               "How late probes start against their schedule")
                         .Add({}, kLagBuckets)),
      in_flight_(gauge(*registry_, "portsentinel_probes_in_flight", "Probes running now").Add({})),
      reload_ok_(gauge(*registry_, "portsentinel_config_last_reload_successful",
                       "Whether the last configuration reload attempt was successful")
                     .Add({})),
      reload_time_(gauge(*registry_, "portsentinel_config_last_reload_success_timestamp_seconds",
                         "Timestamp of the last successful configuration reload")
                       .Add({})),
      path_groups_(gauge(*registry_, "portsentinel_path_group_consistent",
                         "1 when every member of the path group succeeded and serves the same "
                         "leaf certificate")) {
  gauge(*registry_, "portsentinel_build_info", "Build information, value 1")
      .Add({{"version", version}, {"revision", revision}, {"openssl", OPENSSL_VERSION_STR}})
      .Set(1);
}

prometheus::Gauge& Metrics::add_path_group(const std::string& group) {
  return path_groups_.Add({{"group", group}});
}

void Metrics::remove_path_group(prometheus::Gauge& gauge) { path_groups_.Remove(&gauge); }

void Metrics::set_reload_result(bool ok, double unix_seconds) {
  reload_ok_.Set(ok ? 1 : 0);
  if (ok) {
    reload_time_.Set(unix_seconds);
  }
}


void Metrics::add_target(const std::shared_ptr<TargetSeries>& series) {
  std::lock_guard lock(targets_mutex_);
  series->index = targets_.size();
  targets_.push_back(series);
}

void Metrics::remove_target(const std::shared_ptr<TargetSeries>& series) {
  std::lock_guard lock(targets_mutex_);
  const size_t at = series->index;
  if (at >= targets_.size() || targets_[at] != series) {
    return;
  }
  targets_[at] = std::move(targets_.back());
  targets_[at]->index = at;
  targets_.pop_back();
}

void Metrics::write_text(const std::function<void(std::string_view)>& out) const {
  constexpr size_t kPiece = 64 * 1024;
  std::vector<std::shared_ptr<TargetSeries>> targets;
  {
    // A removed target's record stays alive until this scrape lets go of it.
    std::lock_guard lock(targets_mutex_);
    targets = targets_;
  }
  std::string text;
  text.reserve(kPiece + 4096);
  for (size_t f = 0; f < kFamilies.size(); ++f) {
    const FamilyInfo& family = kFamilies[f];
    text += "# HELP ";
    text += family.name;
    text += ' ';
    text += family.help;
    text += "\n# TYPE ";
    text += family.name;
    text += ' ';
    text += family.type;
    text += '\n';
    for (const auto& series : targets) {
      {
        std::lock_guard lock(series->mutex);
        series->write(text, static_cast<Family>(f));
      }
      if (text.size() >= kPiece) {
        out(text);
        text.clear();
      }
    }
  }
  text += prometheus::TextSerializer().Serialize(registry_->Collect());
  out(text);
}

std::string Metrics::text() const {
  std::string all;
  write_text([&](std::string_view piece) { all.append(piece); });
  return all;
}

TargetMetrics::TargetMetrics(Metrics& metrics, const config::Target& target)
    : m_(metrics), series_(std::make_shared<TargetSeries>()) {
  std::map<std::string, std::string> sorted(target.labels.begin(), target.labels.end());
  sorted.insert_or_assign("target", target.name);
  series_->base.assign(sorted.begin(), sorted.end());
  m_.add_target(series_);
}

TargetMetrics::~TargetMetrics() { m_.remove_target(series_); }

void TargetMetrics::record(const probes::ProbeResult& r, double end_unix_seconds) {
  TargetSeries& s = *series_;
  std::lock_guard lock(s.mutex);
  s.probed = true;
  s.success = r.ok() ? 1 : 0;
  s.last_probe = end_unix_seconds;
  s.phases = {r.phases.resolve, r.phases.connect, r.phases.tls, r.phases.http, r.phases.total};
  s.reason = r.reason;  // exactly one probe_reason series per target: the last reason
  if (!r.ok()) {
    ++s.failures[static_cast<size_t>(r.reason)];
  }
  if (r.tls) {
    const auto& tls = *r.tls;
    s.tls = true;
    const auto bucket = std::lower_bound(kHandshakeBuckets.begin(), kHandshakeBuckets.end(),
                                         r.phases.tls) -
                        kHandshakeBuckets.begin();
    ++s.buckets[static_cast<size_t>(bucket)];
    s.handshake_sum += r.phases.tls;
    ++s.handshake_count;
    s.verified = tls.verified ? 1 : 0;
    s.version = tls.version;
    s.cipher = tls.cipher;
    if (tls.leaf) {
      const auto& leaf = *tls.leaf;
      if (s.leaf && s.fingerprint != leaf.fingerprint_sha256) {
        ++s.cert_changes;
      }
      if (!s.leaf || s.fingerprint != leaf.fingerprint_sha256) {
        s.fingerprint = leaf.fingerprint_sha256;
        s.subject = leaf.subject;
        s.issuer = leaf.issuer;
        s.serial = leaf.serial;
      }
      s.leaf = true;
      s.not_after = static_cast<double>(leaf.not_after);
      s.not_before = static_cast<double>(leaf.not_before);
      s.chain_expiry = static_cast<double>(leaf.chain_earliest_expiry);
    }
  }
  if (r.http) {
    s.http = true;
    s.http_status = r.http->status;
  }
}

}  // namespace portsentinel::exporters
