#include "daemon/scheduler.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <stdexcept>

#include "daemon/logging.h"
#include "daemon/state.h"
#include "probes/probe.h"

namespace portsentinel::daemon {

namespace {
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct Scheduler::Target {
  config::Target config;
  probes::ProbeSpec spec;
  std::unique_ptr<exporters::TargetMetrics> metrics;
  TargetState state;
  GroupMember as_member;  // what path groups compare: the last result's reason and leaf
  TargetAlertState alerts;  // hysteresis and baselines; kept across reloads with the target
  asio::cancellation_signal cancel;
  bool stopped = false;
  bool started = false;  // the loop has run: only then may its cancellation slot be emitted
};

void prepare_tls_contexts(const config::Config& cfg, probes::TlsContextCache& cache) {
  std::vector<config::TlsOptions> needed;
  for (const auto& t : cfg.targets) {
    // Plain HTTP targets get one too: it tells a TLS server on the plain port apart.
    if (t.expect != config::Expect::kTcp) {
      needed.push_back(t.tls);
    }
  }
  try {
    cache.refresh(needed);
  } catch (const probes::TlsContextError& e) {
    for (const auto& t : cfg.targets) {
      if (t.expect != config::Expect::kTcp && t.tls == e.options) {
        throw std::runtime_error("target \"" + t.name + "\": " + e.what());
      }
    }
    throw;
  }
}

double schedule_phase(const std::string& name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : name) {
    h = (h ^ c) * 1099511628211ULL;
  }
  return static_cast<double>(h % 1000003) / 1000003.0;
}

Scheduler::Scheduler(asio::io_context& io, exporters::Metrics& metrics,
                     probes::Resolver& resolver, probes::TlsContextCache& tls_contexts,
                     int max_concurrent_probes)
    : io_(io),
      metrics_(metrics),
      resolver_(resolver),
      tls_contexts_(tls_contexts),
      slots_(std::make_unique<asio::experimental::channel<void(boost::system::error_code)>>(
          io, static_cast<size_t>(max_concurrent_probes))),
      slot_count_(max_concurrent_probes) {}

Scheduler::~Scheduler() {
  stop();
  // Target loops reference this object until they finish: let their cancelled operations
  // complete before it goes away (the loop is not running here, see the header).
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  if (running_loops_ > 0) {
    io_.restart();
  }
  while (running_loops_ > 0 && Clock::now() < deadline) {
    io_.run_one_for(std::chrono::milliseconds(100));
  }
}

size_t Scheduler::failing_count() const {
  size_t n = 0;
  for (const auto& [name, t] : targets_) {
    if (t->state.last_reason && *t->state.last_reason != probes::Reason::kOk) {
      ++n;
    }
  }
  return n;
}

void Scheduler::apply(const config::Config& cfg) {
  // Build everything that can fail before touching the running set.
  prepare_tls_contexts(cfg, tls_contexts_);
  std::map<std::string, std::shared_ptr<Target>> next;
  for (const auto& tc : cfg.targets) {
    if (auto it = targets_.find(tc.name); it != targets_.end() && it->second->config == tc) {
      auto& kept = it->second;  // unchanged: keeps schedule, counters and state
      if (tc.expect != config::Expect::kTcp) {
        if (auto context = tls_contexts_.get(tc.tls); context != kept->spec.tls_context) {
          // Its CA file changed: verify against the new one from the next probe on (a probe
          // in flight holds what it started with).
          kept->spec.tls_context = std::move(context);
          kept->spec.verify_memo = std::make_shared<probes::VerifyMemo>();
        }
      }
      next.emplace(tc.name, kept);
      continue;
    }
    auto t = std::make_shared<Target>();
    t->config = tc;
    t->spec.address = tc.address;
    t->spec.expect = tc.expect;
    t->spec.server_name = tc.server_name;
    t->spec.timeout = tc.timeout;
    t->spec.insecure_skip_verify = tc.tls.insecure_skip_verify;
    t->spec.http = tc.http;
    if (tc.expect != config::Expect::kTcp) {
      t->spec.tls_context = tls_contexts_.get(tc.tls);  // built above, cannot throw now
      t->spec.verify_memo = std::make_shared<probes::VerifyMemo>();
    }
    next.emplace(tc.name, std::move(t));
  }
  if (cfg.max_concurrent_probes != slot_count_) {
    log_event(spdlog::level::warn, "max_concurrent_probes changes take effect after a restart",
              {{"running", std::to_string(slot_count_)},
               {"configured", std::to_string(cfg.max_concurrent_probes)}});
  }
  for (auto& [name, t] : targets_) {
    if (auto it = next.find(name); it == next.end() || it->second != t) {
      cancel(t);
      if (rules_ != nullptr) {
        alert_sink_(rules_->on_target_removed(t->alerts));
      }
      log_event(spdlog::level::info, "target removed", {{"target", name}});
    }
  }
  for (auto& [name, t] : next) {
    if (!t->metrics) {
      t->metrics = std::make_unique<exporters::TargetMetrics>(metrics_, t->config);
      start(t);
    }
  }
  targets_ = std::move(next);

  // Path groups: keep the verdict (and so the log state) of groups that did not change.
  std::vector<Group> groups;
  for (const auto& gc : cfg.path_groups) {
    Group g{gc, {}, nullptr};
    for (auto& old : groups_) {
      if (old.config == gc) {
        g = old;
        old.gauge = nullptr;
      }
    }
    groups.push_back(std::move(g));
  }
  for (auto& old : groups_) {
    if (old.gauge != nullptr) {
      metrics_.remove_path_group(*old.gauge);
    }
  }
  groups_ = std::move(groups);
}

void Scheduler::update_groups(const std::string& member) {
  for (auto& g : groups_) {
    if (std::find(g.config.targets.begin(), g.config.targets.end(), member) ==
        g.config.targets.end()) {
      continue;
    }
    std::vector<GroupMember> members;
    for (const auto& name : g.config.targets) {
      auto it = targets_.find(name);
      if (it != targets_.end()) {
        members.push_back(it->second->as_member);
      } else {
        members.emplace_back().name = name;
      }
    }
    GroupVerdict v = evaluate_path_group(members);
    if (!v.known) {
      continue;
    }
    if (g.gauge == nullptr) {
      g.gauge = &metrics_.add_path_group(g.config.name);
    }
    g.gauge->Set(v.consistent ? 1 : 0);
    // Log a transition, or a new way of being inconsistent; not every probe.
    if (!g.verdict.known || g.verdict.consistent != v.consistent ||
        (!v.consistent && g.verdict.explanation != v.explanation)) {
      if (rules_ != nullptr) {
        alert_sink_(rules_->on_path_group(g.config.name, v, unix_now()));
      }
      if (v.consistent) {
        log_event(spdlog::level::info, "path group consistent",
                  {{"group", g.config.name}, {"detail", v.explanation}});
      } else {
        log_event(spdlog::level::warn, "path group inconsistent",
                  {{"group", g.config.name},
                   {"detail", v.explanation},
                   {"remedy",
                    "A path (CDN edge, load balancer, proxy, container port) serves another "
                    "certificate or no TLS: compare `openssl s_client -connect PATH "
                    "-servername NAME | openssl x509 -noout -fingerprint -sha256` across the "
                    "members and fix the one that differs."}});
      }
    }
    g.verdict = std::move(v);
  }
}

void Scheduler::start(std::shared_ptr<Target> t) {
  const auto interval = t->config.interval;
  const auto offset = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(interval.count() * schedule_phase(t->config.name)));
  auto slot = t->cancel.slot();
  ++running_loops_;
  asio::co_spawn(io_, run_target(std::move(t), Clock::now() + offset),
                 asio::bind_cancellation_slot(slot, [this](std::exception_ptr e) {
                   --running_loops_;
                   if (!e) {
                     return;
                   }
                   try {
                     std::rethrow_exception(e);
                   } catch (const boost::system::system_error& se) {
                     if (se.code() != asio::error::operation_aborted) {
                       log_event(spdlog::level::err, "target loop failed", {{"error", se.what()}});
                     }
                   } catch (const std::exception& ex) {
                     log_event(spdlog::level::err, "target loop failed", {{"error", ex.what()}});
                   }
                 }));
}

void Scheduler::cancel(const std::shared_ptr<Target>& t) {
  t->stopped = true;
  // A loop that has not run yet sees `stopped` at its first check and ends; emitting into its
  // slot before then races co_spawn's start-up (use after free under ASan). A running loop
  // is cancelled on the loop thread, with the target held until the emission has run.
  if (t->started) {
    asio::dispatch(io_, [t] { t->cancel.emit(asio::cancellation_type::terminal); });
  }
}

void Scheduler::stop() {
  for (auto& [name, t] : targets_) {
    cancel(t);
  }
  targets_.clear();
}

asio::awaitable<void> Scheduler::run_target(std::shared_ptr<Target> t, Clock::time_point next) {
  t->started = true;
  asio::steady_timer timer(io_);
  const auto interval = std::chrono::duration_cast<Clock::duration>(t->config.interval);
  while (!t->stopped) {
    timer.expires_at(next);
    co_await timer.async_wait(no_throw);
    if (t->stopped) {
      break;
    }
    // Wait for a slot under the global cap; the lag includes that wait.
    auto [slot_ec] = co_await slots_->async_send(boost::system::error_code{}, no_throw);
    if (slot_ec) {
      break;
    }
    probes::ProbeResult result;
    {
      // Released however the probe ends, including cancellation by a reload or a stop.
      struct SlotGuard {
        Scheduler& s;
        explicit SlotGuard(Scheduler& scheduler) : s(scheduler) {
          s.metrics_.set_probes_in_flight(++s.in_flight_);
        }
        ~SlotGuard() {
          s.metrics_.set_probes_in_flight(--s.in_flight_);
          s.slots_->try_receive([](boost::system::error_code) {});
        }
      } guard(*this);
      if (t->stopped) {
        break;
      }
      metrics_.observe_scheduler_lag(std::chrono::duration<double>(Clock::now() - next).count());
      result = co_await probes::run_probe(t->spec, resolver_);
    }
    if (t->stopped) {
      break;
    }
    t->metrics->record(result, unix_now());
    if (rules_ != nullptr) {
      alert_sink_(rules_->on_probe(t->config, t->alerts, result, unix_now()));
    }
    const Transition change = advance(t->state, result);
    t->as_member.name = t->config.name;
    t->as_member.probed = true;
    t->as_member.reason = result.reason;
    const bool has_leaf = result.tls && result.tls->leaf;
    t->as_member.fingerprint = has_leaf ? result.tls->leaf->fingerprint_sha256 : "";
    t->as_member.subject = has_leaf ? result.tls->leaf->subject : "";
    t->as_member.issuer = has_leaf ? result.tls->leaf->issuer : "";
    if (change.changed) {
      const std::string reason(probes::reason_name(result.reason));
      if (result.ok()) {
        log_event(spdlog::level::info, change.first ? "target ok" : "target recovered",
                  {{"target", t->config.name},
                   {"from", change.first ? "none" : std::string(probes::reason_name(change.from))},
                   {"reason", reason},
                   {"peer", result.peer}});
      } else {
        log_event(spdlog::level::warn, "target failing",
                  {{"target", t->config.name},
                   {"from", change.first ? "none" : std::string(probes::reason_name(change.from))},
                   {"reason", reason},
                   {"detail", result.detail},
                   {"remedy", probes::reason_remedy_for(result.reason, t->config.address.host,
                                                        t->config.address.port,
                                                        t->config.server_name)}});
      }
    }
    if (!groups_.empty()) {
      update_groups(t->config.name);
    }
    // Next deadline from the schedule, not from now: intervals do not drift. Missed runs
    // (a probe longer than the interval) are skipped, not bunched.
    next += interval;
    const auto now = Clock::now();
    if (next < now) {
      next += ((now - next) / interval + 1) * interval;
    }
  }
}

}  // namespace portsentinel::daemon
