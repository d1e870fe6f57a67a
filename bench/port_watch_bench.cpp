// Port watch benchmark (issue: port ownership watch). In one run on one machine:
//  1. 1,000 idle processes holding 10,000 open fds in all, plus an owner on a watched port;
//  2. the steady-state CPU cost of one poll (the watcher alone runs; CPU from getrusage over
//     many polls / the poll count in port_poll_duration_seconds);
//  3. `ss -tlnp 'sport = :PORT'` for the same answer, CPU per run (children's rusage);
//  4. the time from a rogue's bind() to port_hijacked 1 in the metrics, poll interval 1 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "daemon/logging.h"
#include "daemon/port_watch.h"

using namespace std::chrono;
using namespace portsentinel;

namespace {

double cpu_seconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Starts `argv` with stdout to a pipe; returns the pid once it printed a line ("ready").
pid_t start_ready(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) {
    return -1;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(out[1], 1);
    close(out[0]);
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') {
  }
  close(out[0]);
  return pid;
}

double metric(exporters::Metrics& m, const std::string& prefix) {
  const std::string text = m.text();
  const auto at = text.find("\n" + prefix);
  if (at == std::string::npos) {
    return -1;
  }
  const auto eol = text.find('\n', at + 1);
  const std::string line = text.substr(at + 1, eol - at - 1);
  return std::stod(line.substr(line.rfind(' ') + 1));
}

}  // namespace

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int fds_each = argc > 2 ? std::atoi(argv[2]) : 10;
  daemon::setup_logging("error", config::LogFormat::kText);

  // 1. The crowd: idle processes with open fds, as on a busy host.
  std::vector<pid_t> crowd;
  for (int i = 0; i < processes; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (int f = 0; f < fds_each; ++f) {
        open("/dev/null", O_RDONLY);
      }
      for (;;) {
        pause();
      }
    }
    crowd.push_back(pid);
  }
  const uint16_t port = free_port();
  const pid_t owner = start_ready({LISTENER_HELPER, "0.0.0.0", std::to_string(port), "--reuseport"});
  std::this_thread::sleep_for(milliseconds(300));  // let the crowd open its fds

  // 2. Steady-state poll cost.
  exporters::Metrics metrics("bench", "bench");
  const std::string tmp = std::filesystem::temp_directory_path() / "portsentinel-bench-XXXXXX";
  std::string state = tmp;
  mkdtemp(state.data());
  double poll_us = 0;
  double thread_us = 0;
  int polls = 0;
  {
    daemon::PortWatcher watcher(metrics, state);
    config::PortsConfig cfg;
    cfg.poll_interval = milliseconds(20);
    cfg.watch.push_back({port, {}});
    watcher.apply(cfg);
    std::this_thread::sleep_for(milliseconds(500));  // first poll: attribution, learning
    const double polls_before = metric(metrics, "portsentinel_port_poll_duration_seconds_count");
    const double sum_before = metric(metrics, "portsentinel_port_poll_duration_seconds_sum");
    const double cpu_before = cpu_seconds(RUSAGE_SELF);
    std::this_thread::sleep_for(seconds(3));
    const double cpu = cpu_seconds(RUSAGE_SELF) - cpu_before;
    polls = static_cast<int>(metric(metrics, "portsentinel_port_poll_duration_seconds_count") -
                             polls_before);
    const double sum = metric(metrics, "portsentinel_port_poll_duration_seconds_sum") - sum_before;
    poll_us = sum / polls * 1e6;   // inside poll(): no blocking work, so wall ~ CPU
    thread_us = cpu / polls * 1e6;  // the whole process, including the timer wake-ups
  }

  // 3. ss -tlnp for the same answer.
  const int ss_runs = 20;
  const double children_before = cpu_seconds(RUSAGE_CHILDREN);
  for (int i = 0; i < ss_runs; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      const std::string filter = "sport = :" + std::to_string(port);
      execlp("ss", "ss", "-tlnp", filter.c_str(), nullptr);
      _exit(127);
    }
    waitpid(pid, nullptr, 0);
  }
  const double ss_us = (cpu_seconds(RUSAGE_CHILDREN) - children_before) / ss_runs * 1e6;

  // 4. bind() -> port_hijacked 1, at the default poll interval of 1 s.
  std::vector<double> latencies;
  {
    daemon::PortWatcher watcher(metrics, state);
    config::PortsConfig cfg;
    cfg.poll_interval = seconds(1);
    cfg.watch.push_back({port, {}});
    watcher.apply(cfg);
    const std::string rogue = state + "/rogue-listener";
    std::filesystem::copy_file(LISTENER_HELPER, rogue);
    std::filesystem::permissions(rogue, std::filesystem::perms::owner_all);
    const std::string hijacked = "portsentinel_port_hijacked{port=\"" + std::to_string(port) + "\"}";
    std::this_thread::sleep_for(milliseconds(1500));
    for (int i = 0; i < 5; ++i) {
      const auto bound = steady_clock::now();  // the helper prints "ready" right after listen()
      const pid_t r = start_ready({rogue, "127.0.0.1", std::to_string(port), "--reuseport"});
      while (metric(metrics, hijacked) != 1) {
        std::this_thread::sleep_for(milliseconds(1));
      }
      latencies.push_back(duration<double, std::milli>(steady_clock::now() - bound).count());
      kill(r, SIGKILL);
      waitpid(r, nullptr, 0);
      while (metric(metrics, hijacked) != 0) {
        std::this_thread::sleep_for(milliseconds(1));
      }
      // Spread the binds over the poll phase.
      std::this_thread::sleep_for(milliseconds(170 * (i + 1)));
    }
  }
  std::sort(latencies.begin(), latencies.end());

  kill(owner, SIGKILL);
  for (pid_t p : crowd) {
    kill(p, SIGKILL);
  }
  while (wait(nullptr) > 0) {
  }
  std::filesystem::remove_all(state);

  std::printf("port watch benchmark: %d idle processes, %d open fds, 1 watched port\n",
              processes, processes * fds_each);
  std::printf("  %-44s %10.1f us (%d polls, mean time inside a poll)\n",
              "portsentinel steady-state poll", poll_us, polls);
  std::printf("  %-44s %10.1f us CPU per poll\n", "  whole process incl. timer wake-ups", thread_us);
  std::printf("  %-44s %10.1f us CPU\n", "ss -tlnp 'sport = :PORT' (same answer)", ss_us);
  std::printf("  %-44s %10.0fx\n", "ratio ss / portsentinel", ss_us / poll_us);
  std::printf("  %-44s %10.1f ms median, %.1f ms max (5 binds)\n",
              "rogue bind() -> port_hijacked 1 (poll 1 s)", latencies[latencies.size() / 2],
              latencies.back());
  std::printf("  targets: poll <= 100 us: %s; >= 100x less than ss: %s; latency <= 1050 ms: %s\n",
              poll_us <= 100 ? "yes" : "NO", ss_us / poll_us >= 100 ? "yes" : "NO",
              latencies.back() <= 1050 ? "yes" : "NO");
  return 0;
}
