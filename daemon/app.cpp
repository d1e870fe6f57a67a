#include "daemon/app.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include "config/config.h"
#include "daemon/alert_rules.h"
#include "daemon/logging.h"
#include "exporters/alertmanager.h"
#include "daemon/port_watch.h"
#include "daemon/scheduler.h"
#include "daemon/version.h"
#include "exporters/metrics.h"
#include "exporters/web.h"
#include "probes/listeners.h"
#include "probes/resolver.h"
#include "probes/tls_context.h"

namespace portsentinel::daemon {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

config::Config load_default() {
  bool on_443 = false;
  bool on_80 = false;
  try {
    probes::ListenerLister lister;
    for (const auto& l : lister.list()) {
      on_443 = on_443 || l.port == 443;
      on_80 = on_80 || l.port == 80;
    }
  } catch (const std::exception& e) {
    log_event(spdlog::level::warn, "cannot list local listeners", {{"error", e.what()}});
  }
  return config::parse_config(default_config_yaml(on_443, on_80), "<embedded default>");
}

}  // namespace

std::string default_config_yaml(bool listening_443, bool listening_80) {
  std::string yaml =
      "ports:\n"
      "  poll_interval: 1s\n"
      "  watch: [{port: 80}, {port: 443}, {port: 8443}]\n"
      "targets:\n";
  if (listening_443) {
    yaml += "  - {name: localhost-443, address: \"localhost:443\", expect: tls}\n";
  }
  if (listening_80) {
    yaml += "  - {name: localhost-80, address: \"localhost:80\", expect: http}\n";
  }
  if (!listening_443 && !listening_80) {
    yaml += "  []\n";
  }
  return yaml;
}

int run_daemon(const RunOptions& options) {
  // Until the config says otherwise, log as text at info.
  setup_logging("info", config::LogFormat::kText);
  config::Config cfg;
  try {
    cfg = options.config_file.empty() ? load_default() : config::load_config(options.config_file);
  } catch (const config::ConfigError& e) {
    log_event(spdlog::level::err, std::string("invalid configuration: ") + e.what());
    return 1;
  }
  if (!options.listen_address.empty()) {
    std::string error;
    auto hp = config::parse_host_port(options.listen_address, &error, true);
    if (!hp) {
      log_event(spdlog::level::err, "invalid --web.listen-address", {{"error", error}});
      return 1;
    }
    cfg.listen_address = *hp;
  }
  setup_logging(cfg.log_level, cfg.log_format);

  asio::io_context io(1);
  exporters::Metrics metrics(kVersion, kRevision);
  probes::TlsContextCache tls_contexts;
  auto resolver = std::make_unique<probes::Resolver>();
  Scheduler scheduler(io, metrics, *resolver, tls_contexts, cfg.max_concurrent_probes);
  // Everything that can fail comes before the first target loop is spawned: a start-up error
  // then leaves no coroutine behind to unwind.
  try {
    prepare_tls_contexts(cfg, tls_contexts);
  } catch (const std::exception& e) {
    log_event(spdlog::level::err, std::string("invalid configuration: ") + e.what());
    return 1;
  }
  metrics.set_reload_result(true, unix_now());
  // Alerts: rules on the loop thread, pushed to every Alertmanager from the loop.
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  AlertRules alert_rules(cfg.alerting, host);
  exporters::AlertmanagerClient alertmanager(io, metrics, *resolver);
  auto alert_sink = [&](const AlertChanges& changes) {
    for (const auto& a : changes.fired) {
      alertmanager.fire(a);
    }
    for (const auto& a : changes.resolved) {
      alertmanager.resolve(a, unix_now());
    }
  };
  scheduler.set_alerting(&alert_rules, alert_sink);
  // Port ownership runs on its own thread: /proc scans never block the probes. Its
  // transitions come to the loop for the alert rules.
  PortWatcher port_watcher(metrics, options.state_dir, [&](uint16_t port, const PortEvent& e) {
    asio::post(io, [&, port, e] { alert_sink(alert_rules.on_port_event(port, e, unix_now())); });
  });
  port_watcher.apply(cfg.ports);

  // The loop proves it is alive by ticking: /healthz reads the tick from the web threads, and
  // under systemd the same tick sends WATCHDOG=1, so a wedged loop stops the pings and systemd
  // restarts the service.
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  const auto tick_every = watchdog ? std::min<std::chrono::microseconds>(
                                         std::chrono::seconds(1),
                                         std::chrono::microseconds(watchdog_usec / 4))
                                   : std::chrono::microseconds(std::chrono::seconds(1));
  std::atomic<int64_t> last_tick{steady_ms()};
  // Set when SIGTERM/SIGINT arrives. Handlers that re-arm themselves check it: a completion
  // already queued when the stop cancelled its timer runs with success, and re-arming then
  // would keep run() from ever returning.
  bool stopping = false;
  std::string last_status;
  auto status_line = [&] {
    return std::to_string(scheduler.target_count()) + " targets, " +
           std::to_string(scheduler.failing_count()) + " failing, " +
           std::to_string(cfg.ports.watch.size()) + " watched ports";
  };
  asio::steady_timer heartbeat(io);
  std::function<void(boost::system::error_code)> tick = [&](boost::system::error_code ec) {
    if (ec || stopping) {
      return;
    }
    last_tick = steady_ms();
    if (watchdog) {
      sd_notify(0, "WATCHDOG=1");
    }
    if (std::string status = status_line(); status != last_status) {
      sd_notifyf(0, "STATUS=%s", status.c_str());
      last_status = std::move(status);
    }
    heartbeat.expires_after(tick_every);
    heartbeat.async_wait(tick);
  };

  // Reload: parse off the loop thread, apply on it. A bad file keeps the running config.
  std::atomic<bool> loop_done{false};
  std::string generator_url;
  std::mutex reload_mutex;  // one reload at a time (SIGHUP and HTTP may race)
  std::string current_file = options.config_file;
  auto reload = [&]() -> std::string {
    std::lock_guard serial(reload_mutex);
    sd_notify(0, "RELOADING=1");
    std::string error;
    config::Config next;
    try {
      next = current_file.empty() ? load_default() : config::load_config(current_file);
      if (!options.listen_address.empty()) {
        next.listen_address = cfg.listen_address;
      }
      // CA files are read here, off the event loop; a changed one is loaded anew.
      prepare_tls_contexts(next, tls_contexts);
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::promise<std::string> applied;
    auto done = applied.get_future();
    asio::post(io, [&, error]() mutable {
      if (error.empty()) {
        try {
          // The scheduler first: it is what can still fail, and a failure must leave the
          // running configuration whole, alerting included.
          scheduler.apply(next);
          alert_rules.set_config(next.alerting);
          if (!(next.alerting.alertmanager_urls == cfg.alerting.alertmanager_urls &&
                next.alerting.resend_interval == cfg.alerting.resend_interval)) {
            alertmanager.configure(next.alerting.alertmanager_urls, next.alerting.resend_interval,
                                   generator_url);
          }
          port_watcher.apply(next.ports);
          if (!(next.listen_address == cfg.listen_address)) {
            log_event(spdlog::level::warn, "web.listen_address changes take effect after a restart");
          }
          next.listen_address = cfg.listen_address;
          cfg = std::move(next);
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      metrics.set_reload_result(error.empty(), unix_now());
      sd_notifyf(0, "READY=1\nSTATUS=%s", status_line().c_str());
      if (error.empty()) {
        log_event(spdlog::level::info, "configuration reloaded",
                  {{"targets", std::to_string(scheduler.target_count())}});
      } else {
        log_event(spdlog::level::err,
                  "reload failed, keeping the running configuration: " + error);
      }
      applied.set_value(error);
    });
    // The loop may be shutting down and never run the post: do not wait for it then.
    for (int waited = 0; waited < 200; ++waited) {
      if (done.wait_for(std::chrono::milliseconds(50)) == std::future_status::ready) {
        return done.get();
      }
      if (loop_done.load()) {
        break;
      }
    }
    return "the event loop did not apply the configuration in time";
  };

  std::unique_ptr<exporters::WebServer> web;
  try {
    web = std::make_unique<exporters::WebServer>(
        cfg.listen_address, metrics,
        exporters::WebServer::Hooks{
            [&] { return steady_ms() - last_tick.load() < 10000; },
            [&] { return reload(); }});
  } catch (const std::exception& e) {
    log_event(spdlog::level::err, "cannot start the web server", {{"error", e.what()}});
    return 1;
  }
  scheduler.apply(cfg);  // the TLS contexts are built: this cannot fail now
  config::HostPort bound = cfg.listen_address;
  bound.port = web->port();
  generator_url = "http://" + config::format_host_port(bound) + "/metrics";
  alertmanager.configure(cfg.alerting.alertmanager_urls, cfg.alerting.resend_interval,
                         generator_url);
  log_event(spdlog::level::info, "portsentinel started",
            {{"version", kVersion},
             {"config", cfg.source},
             {"targets", std::to_string(scheduler.target_count())},
             {"listen", "http://" + config::format_host_port(bound) + "/metrics"}});
  // Config loaded and the listen socket bound: ready.
  sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", status_line().c_str(),
             static_cast<unsigned long>(getpid()));
  tick({});
  if (options.config_file.empty() && cfg.targets.empty()) {
    log_event(spdlog::level::info,
              "embedded default: nothing listens on localhost 443 or 80, so nothing is probed; "
              "pass --config FILE to probe your endpoints");
  }

  std::thread reloader;
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  asio::steady_timer force_exit(io);
  asio::steady_timer drained(io);
  std::function<void(boost::system::error_code)> wait_drained;
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int signo) {
        if (ec || stopping) {
          return;
        }
        if (signo == SIGHUP) {
          log_event(spdlog::level::info, "SIGHUP: reloading configuration");
          if (reloader.joinable()) {
            reloader.join();
          }
          reloader = std::thread([&] { reload(); });
          signals.async_wait(on_signal);
          return;
        }
        log_event(spdlog::level::info, "stopping",
                  {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}});
        stopping = true;
        sd_notify(0, "STOPPING=1");
        scheduler.stop();
        alertmanager.stop();
        heartbeat.cancel();
        signals.cancel();
        // Every operation a probe waits on is cancellable, so the loops drain at once; the
        // backstop keeps the 2 s promise if something does not.
        force_exit.expires_after(std::chrono::milliseconds(1500));
        force_exit.async_wait([](boost::system::error_code wait_ec) {
          if (!wait_ec) {
            log_event(spdlog::level::warn, "probes did not stop in time; exiting anyway");
            std::_Exit(0);
          }
        });
        wait_drained({});
      };
  wait_drained = [&](boost::system::error_code ec) {
    if (ec) {
      return;
    }
    if (scheduler.running_loops() == 0) {
      force_exit.cancel();
      return;
    }
    drained.expires_after(std::chrono::milliseconds(5));
    drained.async_wait(wait_drained);
  };
  signals.async_wait(on_signal);

  io.run();
  loop_done = true;
  if (reloader.joinable()) {
    reloader.join();
  }
  resolver.reset();
  log_event(spdlog::level::info, "stopped");
  spdlog::shutdown();
  // civetweb's master thread polls its listening socket in 2 s steps, so destroying the web
  // server can take that long; the probes are cancelled and the logs flushed, and nothing
  // else needs tearing down, so leave now to keep the 2 s promise of SIGTERM.
  std::_Exit(0);
}

}  // namespace portsentinel::daemon
