#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "exporters/metrics.h"
#include "probes/listeners.h"
#include "probes/owners.h"

namespace portsentinel::daemon {

// One listening socket on a watched port, with the processes that hold it.
struct Listening {
  std::string address;
  uint64_t inode = 0;
  uint32_t uid = 0;            // from netlink: known even without privileges
  bool owners_known = false;   // false when /proc could not be read for it
  std::vector<probes::ProcessInfo> owners;
};

// True when every field the rule gives matches (exe, unit, comm, user).
bool owner_matches(const config::OwnerRule& rule, const probes::ProcessInfo& process);
// Any rule matching is enough.
bool owner_expected(const std::vector<config::OwnerRule>& rules,
                    const probes::ProcessInfo& process);
// The rules learned from what listens now: one {exe, user} per distinct pair.
std::vector<config::OwnerRule> learn_rules(const std::vector<Listening>& listeners);

enum class PortEventKind { kHijacked, kHijackCleared, kNotListening, kListeningAgain, kOwnerChanged };
const char* port_event_name(PortEventKind kind);

struct PortEvent {
  PortEventKind kind;
  std::string evidence;  // who, where, how: one line for the log and the alert
};

// What the watch remembers of one port between polls.
struct PortState {
  bool ever_listening = false;
  int empty_polls = 0;
  bool not_listening = false;
  bool hijacked = false;
  bool owners_seen = false;
  std::set<std::string> identities;  // "exe user unit" of the owners: what an owner change is
};

// The pure step: a poll's listeners of one port -> the next state and its transitions.
// `expect_listening`: alarm on an empty port even if it was never seen listening (explicit
// expected_owners). An empty port is `not listening` only after `grace_polls` empty polls, so a
// server reload does not alarm.
std::vector<PortEvent> advance_port(PortState& state, const std::vector<Listening>& listeners,
                                    const std::vector<config::OwnerRule>& rules,
                                    bool expect_listening, int grace_polls = 2);

// Watches the configured ports on its own thread: lists listeners through netlink every
// poll_interval, attributes new sockets (and all every 60 s) to processes from /proc, learns
// and persists owners when none are configured, and keeps the port_ metrics.
// Thread safety: apply() and the destructor from any one thread; events go to `sink` on the
// watcher's thread.
class PortWatcher {
 public:
  using EventSink = std::function<void(uint16_t port, const PortEvent& event)>;

  PortWatcher(exporters::Metrics& metrics, std::string state_dir, EventSink sink = nullptr);
  ~PortWatcher();
  PortWatcher(const PortWatcher&) = delete;
  PortWatcher& operator=(const PortWatcher&) = delete;

  // Starts or updates the watch. Ports still watched keep their state and learned owners.
  void apply(const config::PortsConfig& ports);

  // How often owners of known sockets are checked again: a socket can be passed to another
  // process without changing its inode.
  static constexpr std::chrono::seconds kRecheck{60};

 private:
  struct Port;
  void run();
  void poll();
  void load_learned();
  void save_learned();
  void publish(uint16_t port, Port& p, const std::vector<Listening>& listeners,
               const std::vector<config::OwnerRule>& rules);

  exporters::Metrics& metrics_;
  std::string state_file_;
  EventSink sink_;

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  config::PortsConfig config_;
  std::thread thread_;

  // Below: the watcher thread's own.
  std::unique_ptr<probes::ListenerLister> lister_;
  probes::OwnerFinder finder_;
  struct Attribution {
    bool known = false;
    std::vector<probes::ProcessInfo> owners;
  };
  std::map<uint64_t, Attribution> by_inode_;
  std::chrono::steady_clock::time_point last_full_scan_{};
  std::map<uint16_t, std::unique_ptr<Port>> ports_;
  std::map<uint16_t, std::vector<config::OwnerRule>> learned_;
  bool told_denied_ = false;
};

}  // namespace portsentinel::daemon
