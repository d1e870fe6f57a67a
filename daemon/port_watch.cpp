#include "daemon/port_watch.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/logging.h"

namespace portsentinel::daemon {
namespace {

using probes::ProcessInfo;

std::string describe(const ProcessInfo& p, const std::string& address) {
  std::string out = "pid " + std::to_string(p.pid) + " " + p.comm + " (exe " +
                    (p.exe.empty() ? "?" : p.exe) + (p.exe_deleted ? " (deleted)" : "") +
                    ", user " + p.user;
  if (!p.unit.empty()) {
    out += ", unit " + p.unit;
  }
  if (!p.container.empty()) {
    out += ", container " + p.container.substr(0, 12);
  }
  return out + ") on " + address;
}

std::string describe(const std::vector<config::OwnerRule>& rules) {
  std::string out;
  for (const auto& r : rules) {
    std::string one;
    auto add = [&](const char* key, const std::string& value) {
      if (!value.empty()) {
        one += (one.empty() ? "" : " ") + std::string(key) + "=" + value;
      }
    };
    add("exe", r.exe);
    add("unit", r.unit);
    add("comm", r.comm);
    add("user", r.user);
    out += (out.empty() ? "" : " | ") + one;
  }
  return out.empty() ? "none" : out;
}

std::string identity(const ProcessInfo& p) { return p.exe + " " + p.user + " " + p.unit; }

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += (out.empty() ? "" : ", ") + i;
  }
  return "{" + out + "}";
}

}  // namespace

bool owner_matches(const config::OwnerRule& rule, const ProcessInfo& p) {
  return (rule.exe.empty() || rule.exe == p.exe) && (rule.unit.empty() || rule.unit == p.unit) &&
         (rule.comm.empty() || rule.comm == p.comm) && (rule.user.empty() || rule.user == p.user);
}

bool owner_expected(const std::vector<config::OwnerRule>& rules, const ProcessInfo& p) {
  return std::any_of(rules.begin(), rules.end(),
                     [&](const config::OwnerRule& r) { return owner_matches(r, p); });
}

std::vector<config::OwnerRule> learn_rules(const std::vector<Listening>& listeners) {
  std::vector<config::OwnerRule> rules;
  for (const auto& l : listeners) {
    for (const auto& o : l.owners) {
      config::OwnerRule r;
      r.exe = o.exe;
      r.user = o.user;
      if (!r.exe.empty() && std::find(rules.begin(), rules.end(), r) == rules.end()) {
        rules.push_back(r);
      }
    }
  }
  return rules;
}

const char* port_event_name(PortEventKind kind) {
  switch (kind) {
    case PortEventKind::kHijacked:
      return "unexpected_owner";
    case PortEventKind::kHijackCleared:
      return "unexpected_owner_cleared";
    case PortEventKind::kNotListening:
      return "port_not_listening";
    case PortEventKind::kListeningAgain:
      return "port_listening";
    case PortEventKind::kOwnerChanged:
      return "owner_changed";
  }
  return "?";
}

std::vector<PortEvent> advance_port(PortState& s, const std::vector<Listening>& listeners,
                                    const std::vector<config::OwnerRule>& rules,
                                    bool expect_listening, int grace_polls) {
  std::vector<PortEvent> events;
  if (listeners.empty()) {
    ++s.empty_polls;
    if (s.hijacked) {
      s.hijacked = false;
      events.push_back({PortEventKind::kHijackCleared, "no listener is left on the port"});
    }
    if (!s.not_listening && s.empty_polls >= grace_polls && (s.ever_listening || expect_listening)) {
      s.not_listening = true;
      events.push_back({PortEventKind::kNotListening,
                        "nothing has listened on the port for " + std::to_string(s.empty_polls) +
                            " polls"});
    }
    return events;
  }
  s.empty_polls = 0;
  s.ever_listening = true;
  std::string addresses;
  for (const auto& l : listeners) {
    addresses += (addresses.empty() ? "" : ", ") + l.address;
  }
  if (s.not_listening) {
    s.not_listening = false;
    events.push_back({PortEventKind::kListeningAgain, "listening again on " + addresses});
  }
  std::string rogues;
  bool all_known = true;
  std::set<std::string> identities;
  for (const auto& l : listeners) {
    if (!l.owners_known) {
      all_known = false;
      continue;
    }
    for (const auto& o : l.owners) {
      identities.insert(identity(o));
      if (!owner_expected(rules, o)) {
        rogues += (rogues.empty() ? "" : "; ") + describe(o, l.address);
      }
    }
  }
  // Without rules (learning has not happened yet) nobody can be unexpected.
  const bool hijacked = !rules.empty() && !rogues.empty();
  if (hijacked && !s.hijacked) {
    events.push_back({PortEventKind::kHijacked,
                      rogues + " matches no expected owner (" + describe(rules) + ")"});
  } else if (!hijacked && s.hijacked) {
    events.push_back({PortEventKind::kHijackCleared, "every listener is owned as expected"});
  }
  s.hijacked = hijacked;
  if (all_known) {
    if (s.owners_seen && identities != s.identities) {
      events.push_back({PortEventKind::kOwnerChanged,
                        "owners changed from " + join(s.identities) + " to " + join(identities)});
    }
    s.identities = std::move(identities);
    s.owners_seen = true;
  }
  return events;
}

struct PortWatcher::Port {
  PortState state;
  prometheus::Gauge* listeners = nullptr;
  prometheus::Gauge* hijacked = nullptr;
  prometheus::Counter* changes = nullptr;
  std::map<std::string, prometheus::Gauge*> owner_info;  // by joined label values
  std::string signature;  // what owner_info was built from
};

PortWatcher::PortWatcher(exporters::Metrics& metrics, std::string state_dir, EventSink sink)
    : metrics_(metrics),
      state_file_(state_dir.empty() ? "" : state_dir + "/learned-owners.tsv"),
      sink_(std::move(sink)) {
  try {
    lister_ = std::make_unique<probes::ListenerLister>();
  } catch (const std::exception& e) {
    log_event(spdlog::level::err, "port watch disabled: cannot list listening sockets",
              {{"error", e.what()}});
  }
  load_learned();
}

PortWatcher::~PortWatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  auto& f = metrics_.ports();
  for (auto& [port, p] : ports_) {
    f.listeners.Remove(p->listeners);
    f.hijacked.Remove(p->hijacked);
    f.owner_changes.Remove(p->changes);
    for (auto& [key, g] : p->owner_info) {
      f.owner_info.Remove(g);
    }
  }
}

void PortWatcher::apply(const config::PortsConfig& ports) {
  std::lock_guard lock(mutex_);
  config_ = ports;
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { run(); });
  }
  wake_.notify_all();
}

void PortWatcher::run() {
  auto next = std::chrono::steady_clock::now();
  while (true) {
    poll();
    std::unique_lock lock(mutex_);
    next += config_.poll_interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) {
      next = now;  // a slow poll: do not try to catch up
    }
    if (wake_.wait_until(lock, next, [&] { return stopping_; })) {
      return;
    }
  }
}

void PortWatcher::poll() {
  const auto started = std::chrono::steady_clock::now();
  config::PortsConfig cfg;
  {
    std::lock_guard lock(mutex_);
    cfg = config_;
  }
  if (!lister_) {
    return;
  }
  std::set<uint16_t> watched;
  for (const auto& w : cfg.watch) {
    watched.insert(w.port);
  }
  std::vector<probes::Listener> all;
  try {
    all = lister_->list(&watched);
  } catch (const std::exception& e) {
    log_event(spdlog::level::err, "cannot list listening sockets", {{"error", e.what()}});
    return;
  }
  std::set<uint64_t> current;
  for (const auto& l : all) {
    if (watched.count(l.port)) {
      current.insert(l.inode);
    }
  }
  // Attribution only for sockets not seen before (and all of them every kRecheck).
  std::set<uint64_t> fresh;
  const bool recheck = started - last_full_scan_ >= kRecheck;
  for (uint64_t inode : current) {
    auto it = by_inode_.find(inode);
    if (recheck || it == by_inode_.end()) {
      fresh.insert(inode);
    }
  }
  for (auto it = by_inode_.begin(); it != by_inode_.end();) {
    it = current.count(it->first) ? std::next(it) : by_inode_.erase(it);
  }
  if (!fresh.empty()) {
    if (recheck) {
      last_full_scan_ = started;
    }
    probes::ScanStats stats;
    auto found = finder_.find(fresh, &stats);
    bool unknown = false;
    for (uint64_t inode : fresh) {
      auto it = found.find(inode);
      if (it != found.end()) {
        by_inode_[inode] = {true, std::move(it->second)};
      } else if (stats.denied > 0) {
        // Not readable without privileges: known as unknown until the next full recheck.
        by_inode_[inode] = {false, {}};
        unknown = true;
      }
      // Otherwise the holder is gone or not there yet: not cached, so the next poll retries.
    }
    if (unknown && !told_denied_) {
      told_denied_ = true;
      log_event(spdlog::level::warn,
                "cannot attribute some listening sockets to processes: /proc/PID/fd of " +
                    std::to_string(stats.denied) +
                    " processes is not readable. Owners are reported as unknown; run as root, "
                    "or grant CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE");
    }
  }

  for (const auto& w : cfg.watch) {
    std::vector<Listening> listeners;
    for (const auto& l : all) {
      if (l.port != w.port) {
        continue;
      }
      Listening view{l.address, l.inode, l.uid, false, {}};
      if (auto it = by_inode_.find(l.inode); it != by_inode_.end()) {
        view.owners_known = it->second.known;
        view.owners = it->second.owners;
      }
      listeners.push_back(std::move(view));
    }
    std::vector<config::OwnerRule> rules = w.expected_owners;
    if (rules.empty()) {
      auto learned = learned_.find(w.port);
      const bool all_known =
          !listeners.empty() && std::all_of(listeners.begin(), listeners.end(), [](auto& l) {
            return l.owners_known && !l.owners.empty();
          });
      if (learned == learned_.end() && all_known) {
        auto rules_now = learn_rules(listeners);
        if (!rules_now.empty()) {
          learned = learned_.emplace(w.port, std::move(rules_now)).first;
          log_event(spdlog::level::info, "learned the owners of a watched port",
                    {{"port", std::to_string(w.port)}, {"owners", describe(learned->second)}});
          save_learned();
        }
      }
      if (learned != learned_.end()) {
        rules = learned->second;
      }
    }
    auto& slot = ports_[w.port];
    if (!slot) {
      slot = std::make_unique<Port>();
    }
    for (const auto& e : advance_port(slot->state, listeners, rules, !w.expected_owners.empty())) {
      const std::string port = std::to_string(w.port);
      switch (e.kind) {
        case PortEventKind::kHijacked:
          log_event(spdlog::level::warn, "port hijacked",
                    {{"port", port},
                     {"evidence", e.evidence},
                     {"remedy", "Another program listens on port " + port +
                                    ": stop or move it (`ss -tlnp 'sport = :" + port +
                                    "'` shows it). If it is legitimate, add it to "
                                    "ports.watch[].expected_owners."}});
          break;
        case PortEventKind::kNotListening:
          log_event(spdlog::level::warn, "port not listening",
                    {{"port", port},
                     {"evidence", e.evidence},
                     {"remedy", "Start the server and check its log (`systemctl status` of its "
                                "unit, `journalctl -u UNIT`)."}});
          break;
        case PortEventKind::kOwnerChanged:
          slot->changes = slot->changes ? slot->changes
                                        : &metrics_.ports().owner_changes.Add({{"port", port}});
          slot->changes->Increment();
          log_event(spdlog::level::info, "port owner changed",
                    {{"port", port}, {"evidence", e.evidence}});
          break;
        default:
          log_event(spdlog::level::info, port_event_name(e.kind) == std::string("port_listening")
                                             ? "port listening again"
                                             : "port hijack cleared",
                    {{"port", port}, {"evidence", e.evidence}});
      }
      if (sink_) {
        sink_(w.port, e);
      }
    }
    publish(w.port, *slot, listeners, rules);
  }
  // Ports no longer watched: their series go away.
  auto& f = metrics_.ports();
  for (auto it = ports_.begin(); it != ports_.end();) {
    if (watched.count(it->first)) {
      ++it;
      continue;
    }
    f.listeners.Remove(it->second->listeners);
    f.hijacked.Remove(it->second->hijacked);
    if (it->second->changes != nullptr) {
      f.owner_changes.Remove(it->second->changes);
    }
    for (auto& [key, g] : it->second->owner_info) {
      f.owner_info.Remove(g);
    }
    it = ports_.erase(it);
  }
  f.poll_duration.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

void PortWatcher::publish(uint16_t port, Port& p, const std::vector<Listening>& listeners,
                          const std::vector<config::OwnerRule>& rules) {
  auto& f = metrics_.ports();
  const std::string port_text = std::to_string(port);
  if (p.listeners == nullptr) {
    p.listeners = &f.listeners.Add({{"port", port_text}});
    p.hijacked = &f.hijacked.Add({{"port", port_text}});
    p.changes = p.changes ? p.changes : &f.owner_changes.Add({{"port", port_text}});
  }
  p.listeners->Set(static_cast<double>(listeners.size()));
  p.hijacked->Set(p.state.hijacked ? 1 : 0);
  // The owner series only change when the sockets, their holders or the rules do: most polls
  // see the same, and rebuilding label sets is most of a steady-state poll's cost.
  std::string signature;
  for (const auto& l : listeners) {
    signature += std::to_string(l.inode) + (l.owners_known ? "+" : "?");
    for (const auto& o : l.owners) {
      signature += std::to_string(o.pid) + "." + std::to_string(o.start_time) + ",";
    }
  }
  for (const auto& r : rules) {
    signature += "|" + r.exe + r.unit + r.comm + r.user;
  }
  if (signature == p.signature) {
    return;
  }
  p.signature = std::move(signature);
  // The rules decide `expected`; recompute them as advance_port saw them.
  std::map<std::string, prometheus::Labels> wanted;
  for (const auto& l : listeners) {
    if (!l.owners_known) {
      prometheus::Labels labels{{"port", port_text},  {"address", l.address}, {"pid", ""},
                                {"comm", ""},         {"exe", ""},
                                {"user", probes::user_name(l.uid)},
                                {"unit", ""},         {"expected", "unknown"}};
      wanted.emplace(l.address + "|?|" + std::to_string(l.uid), std::move(labels));
      continue;
    }
    for (const auto& o : l.owners) {
      // Before the owners are learned, nobody is unexpected yet.
      const bool expected = rules.empty() || owner_expected(rules, o);
      prometheus::Labels labels{{"port", port_text},
                                {"address", l.address},
                                {"pid", std::to_string(o.pid)},
                                {"comm", o.comm},
                                {"exe", o.exe + (o.exe_deleted ? " (deleted)" : "")},
                                {"user", o.user},
                                {"unit", o.unit},
                                {"expected", expected ? "true" : "false"}};
      std::string key;
      for (const auto& [k, v] : labels) {
        key += v + "|";
      }
      wanted.emplace(std::move(key), std::move(labels));
    }
  }
  for (auto it = p.owner_info.begin(); it != p.owner_info.end();) {
    if (wanted.count(it->first)) {
      ++it;
    } else {
      f.owner_info.Remove(it->second);
      it = p.owner_info.erase(it);
    }
  }
  for (auto& [key, labels] : wanted) {
    if (!p.owner_info.count(key)) {
      auto& g = f.owner_info.Add(labels);
      g.Set(1);
      p.owner_info.emplace(key, &g);
    }
  }
}

void PortWatcher::load_learned() {
  if (state_file_.empty()) {
    return;
  }
  std::ifstream in(state_file_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    std::string port;
    config::OwnerRule rule;
    if (std::getline(fields, port, '\t') && std::getline(fields, rule.exe, '\t') &&
        std::getline(fields, rule.user, '\t')) {
      learned_[static_cast<uint16_t>(std::stoi(port))].push_back(rule);
    }
  }
  if (!learned_.empty()) {
    log_event(spdlog::level::info, "loaded learned port owners", {{"file", state_file_}});
  }
}

void PortWatcher::save_learned() {
  if (state_file_.empty()) {
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(state_file_).parent_path(), ec);
  const std::string tmp = state_file_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "# portsentinel: owners learned at first sight, per port: port<TAB>exe<TAB>user\n"
           "# Delete this file to learn again.\n";
    for (const auto& [port, rules] : learned_) {
      for (const auto& r : rules) {
        out << port << '\t' << r.exe << '\t' << r.user << '\n';
      }
    }
    if (!out) {
      log_event(spdlog::level::warn,
                "cannot save learned port owners: a restart will learn them again",
                {{"file", state_file_}});
      return;
    }
  }
  std::filesystem::rename(tmp, state_file_, ec);
  if (ec) {
    log_event(spdlog::level::warn, "cannot save learned port owners",
              {{"file", state_file_}, {"error", ec.message()}});
  }
}

}  // namespace portsentinel::daemon
