// The port ownership watch: pure rules and state, /proc parsing (with a fake /proc for pid
// reuse), and real processes started by the test on ports chosen at run time (a real pid reuse
// too, as root).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "daemon/port_watch.h"
#include "tests/support/nginx.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"

namespace portsentinel::daemon {
namespace {

using namespace std::chrono_literals;
using probes::ProcessInfo;
using testing::Process;
using testing::TempDir;

ProcessInfo proc(int pid, const std::string& exe, const std::string& user,
                 const std::string& unit = "") {
  ProcessInfo p;
  p.pid = pid;
  p.exe = exe;
  p.comm = std::filesystem::path(exe).filename();
  p.user = user;
  p.unit = unit;
  return p;
}

config::OwnerRule rule(std::string exe, std::string unit, std::string comm, std::string user) {
  config::OwnerRule r;
  r.exe = std::move(exe);
  r.unit = std::move(unit);
  r.comm = std::move(comm);
  r.user = std::move(user);
  return r;
}

TEST(OwnerRules, EveryGivenFieldMustMatchAnyRuleIsEnough) {
  const auto nginx = proc(10, "/usr/sbin/nginx", "www-data", "nginx.service");
  EXPECT_TRUE(owner_matches(rule("/usr/sbin/nginx", "", "", ""), nginx));
  EXPECT_TRUE(owner_matches(rule("", "nginx.service", "", ""), nginx));
  EXPECT_TRUE(owner_matches(rule("", "", "nginx", "www-data"), nginx));
  EXPECT_FALSE(owner_matches(rule("", "", "nginx", "root"), nginx));
  EXPECT_FALSE(owner_matches(rule("/usr/bin/python3", "", "", ""), nginx));
  EXPECT_TRUE(owner_expected({rule("/usr/bin/x", "", "", ""), rule("", "nginx.service", "", "")},
                             nginx));
  EXPECT_FALSE(owner_expected({}, nginx));
}

Listening listening(const std::string& address, std::vector<ProcessInfo> owners) {
  return Listening{address, 1, 0, true, std::move(owners)};
}

TEST(AdvancePort, HijackFlaggedAndCleared) {
  PortState s;
  const std::vector<config::OwnerRule> rules{rule("/usr/sbin/nginx", "", "", "")};
  const auto owner = listening("0.0.0.0", {proc(1, "/usr/sbin/nginx", "root")});
  EXPECT_TRUE(advance_port(s, {owner}, rules, false).empty());
  EXPECT_FALSE(s.hijacked);
  auto events = advance_port(
      s, {owner, listening("127.0.0.1", {proc(66, "/tmp/rogue", "root")})}, rules, false);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, PortEventKind::kHijacked);
  EXPECT_NE(events[0].evidence.find("pid 66 rogue (exe /tmp/rogue, user root) on 127.0.0.1"),
            std::string::npos)
      << events[0].evidence;
  EXPECT_EQ(events[1].kind, PortEventKind::kOwnerChanged);
  EXPECT_TRUE(s.hijacked);
  events = advance_port(s, {owner}, rules, false);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].kind, PortEventKind::kHijackCleared);
  EXPECT_FALSE(s.hijacked);
}

TEST(AdvancePort, NotListeningOnlyAfterGracePolls) {
  PortState s;
  const auto owner = listening("0.0.0.0", {proc(1, "/usr/sbin/nginx", "root")});
  advance_port(s, {owner}, {}, false);
  EXPECT_TRUE(advance_port(s, {}, {}, false).empty());  // one empty poll: a reload, maybe
  auto events = advance_port(s, {}, {}, false);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PortEventKind::kNotListening);
  EXPECT_TRUE(advance_port(s, {}, {}, false).empty());  // said once
  events = advance_port(s, {owner}, {}, false);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, PortEventKind::kListeningAgain);
}

TEST(AdvancePort, NeverSeenPortAlarmsOnlyWithExplicitOwners) {
  PortState learned;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(advance_port(learned, {}, {}, false).empty());
  }
  PortState explicit_owners;
  advance_port(explicit_owners, {}, {}, true);
  EXPECT_EQ(advance_port(explicit_owners, {}, {}, true).size(), 1u);
}

TEST(AdvancePort, UnknownOwnersAreNeverAHijack) {
  PortState s;
  Listening unknown{"0.0.0.0", 1, 33, false, {}};
  EXPECT_TRUE(advance_port(s, {unknown}, {rule("/usr/sbin/nginx", "", "", "")}, false).empty());
  EXPECT_FALSE(s.hijacked);
}

TEST(AdvancePort, NginxReloadWithNewWorkerPidsIsNoOwnerChange) {
  PortState s;
  advance_port(s, {listening("0.0.0.0", {proc(1, "/usr/sbin/nginx", "root"),
                                         proc(2, "/usr/sbin/nginx", "www-data")})},
               {}, false);
  EXPECT_TRUE(advance_port(s, {listening("0.0.0.0", {proc(1, "/usr/sbin/nginx", "root"),
                                                     proc(9, "/usr/sbin/nginx", "www-data")})},
                           {}, false)
                  .empty());
}

TEST(Cgroup, UnitAndContainer) {
  EXPECT_EQ(probes::unit_from_cgroup("0::/system.slice/nginx.service\n"), "nginx.service");
  EXPECT_EQ(probes::unit_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n"),
            "session-3.scope");
  EXPECT_EQ(probes::unit_from_cgroup("12:pids:/\n1:name=systemd:/system.slice/ssh.service\n0::/\n"),
            "ssh.service");
  EXPECT_EQ(probes::unit_from_cgroup("0::/\n"), "");
  const std::string id(64, 'a');
  EXPECT_EQ(probes::container_from_cgroup("0::/system.slice/docker-" + id + ".scope\n"), id);
  EXPECT_EQ(probes::container_from_cgroup("0::/kubepods/burstable/pod1/cri-containerd-" + id +
                                          ".scope\n"),
            id);
  EXPECT_EQ(probes::container_from_cgroup("4:memory:/docker/" + id + "\n"), id);
  EXPECT_EQ(probes::container_from_cgroup("0::/system.slice/nginx.service\n"), "");
}

TEST(ProcFiles, StatAndStatus) {
  std::string comm;
  uint64_t start = 0;
  ASSERT_TRUE(probes::parse_stat(
      "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1 2",
      &comm, &start));
  EXPECT_EQ(comm, "my (odd) name");
  EXPECT_EQ(start, 987654u);
  uint32_t uid = 0;
  ASSERT_TRUE(probes::uid_from_status("Name:\tx\nUmask:\t0022\nUid:\t33\t33\t33\t33\n", &uid));
  EXPECT_EQ(uid, 33u);
  EXPECT_EQ(probes::user_name(0), "root");
}

// A fake /proc tree: what the kernel shows, written by the test.
void write_process(const std::string& root, int pid, const std::string& comm, uint64_t start,
                   const std::string& exe, uint64_t socket_inode) {
  namespace fs = std::filesystem;
  const std::string dir = root + "/" + std::to_string(pid);
  fs::create_directories(dir + "/fd");
  std::ofstream(dir + "/stat") << pid << " (" << comm
                               << ") S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 " << start
                               << " 0 0\n";
  std::ofstream(dir + "/status") << "Name:\t" << comm << "\nUid:\t0\t0\t0\t0\n";
  std::ofstream(dir + "/cgroup") << "0::/system.slice/" << comm << ".service\n";
  std::error_code ec;
  fs::remove(dir + "/exe", ec);
  fs::create_symlink(exe, dir + "/exe");
  fs::remove(dir + "/fd/3", ec);
  fs::create_symlink("socket:[" + std::to_string(socket_inode) + "]", dir + "/fd/3");
}

TEST(OwnerFinder, PidReuseIsDescribedAnew) {
  TempDir dir;
  write_process(dir.path(), 123, "nginx", 1000, "/usr/sbin/nginx", 555);
  probes::OwnerFinder finder(dir.path());
  auto owners = finder.find({555});
  ASSERT_EQ(owners[555].size(), 1u);
  EXPECT_EQ(owners[555][0].comm, "nginx");
  EXPECT_EQ(owners[555][0].exe, "/usr/sbin/nginx");
  EXPECT_EQ(owners[555][0].unit, "nginx.service");
  // nginx exits; pid 123 is reused by another program holding the same inode number later.
  write_process(dir.path(), 123, "evil", 2000, "/tmp/evil (deleted)", 555);
  owners = finder.find({555});
  ASSERT_EQ(owners[555].size(), 1u);
  EXPECT_EQ(owners[555][0].comm, "evil");
  EXPECT_EQ(owners[555][0].exe, "/tmp/evil");
  EXPECT_TRUE(owners[555][0].exe_deleted);
  EXPECT_EQ(owners[555][0].start_time, 2000u);
}

TEST(OwnerFinder, SameProcessIsServedFromTheCache) {
  TempDir dir;
  write_process(dir.path(), 7, "nginx", 1000, "/usr/sbin/nginx", 9);
  probes::OwnerFinder finder(dir.path());
  ProcessInfo info;
  ASSERT_TRUE(finder.describe(7, &info));
  // Same start time: the same process; its description is not read again.
  std::ofstream(dir.path() + "/7/cgroup") << "0::/system.slice/changed.service\n";
  ASSERT_TRUE(finder.describe(7, &info));
  EXPECT_EQ(info.unit, "nginx.service");
}

// Real listeners, started by the test.
class PortWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::free_port();
    rogue_exe_ = dir_.path() + "/rogue-listener";
    std::filesystem::copy_file(LISTENER_HELPER, rogue_exe_);
    chmod(rogue_exe_.c_str(), 0755);
  }

  std::unique_ptr<Process> listen(const std::string& exe, const std::string& address,
                                  std::vector<std::string> extra = {"--reuseport"}) {
    std::vector<std::string> argv{exe, address, std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Process>(argv, dir_.file("listener-" + std::to_string(++n_) + ".log"));
    EXPECT_TRUE(testing::eventually([&] { return p->log().find("ready") != std::string::npos; }))
        << p->log();
    return p;
  }

  std::string text() {
    return metrics_.text();
  }
  bool has(const std::string& line) { return text().find(line) != std::string::npos; }
  std::string port_label() { return "{port=\"" + std::to_string(port_) + "\"}"; }

  config::PortsConfig watch(std::vector<config::OwnerRule> owners) {
    config::PortsConfig cfg;
    cfg.poll_interval = 100ms;
    cfg.watch.push_back({port_, std::move(owners)});
    return cfg;
  }

  TempDir dir_;
  exporters::Metrics metrics_{"test", "test"};
  uint16_t port_ = 0;
  std::string rogue_exe_;
  int n_ = 0;
};

TEST_F(PortWatchTest, RogueJoiningWithReuseportIsFlaggedThenCleared) {
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  PortWatcher watcher(metrics_, dir_.path());
  watcher.apply(watch({rule(LISTENER_HELPER, "", "", "")}));
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_listeners" + port_label() + " 1"); }))
      << text();
  EXPECT_TRUE(has("portsentinel_port_hijacked" + port_label() + " 0"));

  auto rogue = listen(rogue_exe_, "127.0.0.1");
  const auto bound = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_hijacked" + port_label() + " 1"); }, 5s))
      << text();
  // Within two polls of the bind (generous for a loaded machine: the bench measures it).
  EXPECT_LT(std::chrono::steady_clock::now() - bound, 1s);
  EXPECT_TRUE(has("portsentinel_port_listeners" + port_label() + " 2"));
  const std::string t = text();
  EXPECT_NE(t.find("address=\"127.0.0.1\",comm=\"rogue-listener\",exe=\"" + rogue_exe_ +
                   "\",expected=\"false\",pid=\"" + std::to_string(rogue->pid()) + "\""),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("address=\"0.0.0.0\",comm=\"listener_helper\",exe=\"" +
                   std::string(LISTENER_HELPER) + "\",expected=\"true\",pid=\"" +
                   std::to_string(owner->pid()) + "\""),
            std::string::npos)
      << t;

  rogue.reset();
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_hijacked" + port_label() + " 0"); }))
      << text();
  EXPECT_TRUE(has("portsentinel_port_listeners" + port_label() + " 1"));
  EXPECT_EQ(text().find("rogue-listener"), std::string::npos);
}

TEST_F(PortWatchTest, OwnerExitingIsNotListeningAfterGracePolls) {
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  PortWatcher watcher(metrics_, dir_.path());
  watcher.apply(watch({rule(LISTENER_HELPER, "", "", "")}));
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_listeners" + port_label() + " 1"); }));
  owner.reset();
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_listeners" + port_label() + " 0"); }));
  EXPECT_EQ(text().find("portsentinel_port_owner_info{"), std::string::npos);
}

TEST_F(PortWatchTest, ParentAndForkedChildrenHoldingOneSocketAreNotFlagged) {
  auto owner = listen(LISTENER_HELPER, "0.0.0.0", {"--children", "3"});
  PortWatcher watcher(metrics_, dir_.path());
  watcher.apply(watch({rule(LISTENER_HELPER, "", "", "")}));
  ASSERT_TRUE(testing::eventually([&] {
    const std::string t = text();
    size_t n = 0;
    for (size_t at = 0; (at = t.find("expected=\"true\"", at)) != std::string::npos; ++at) {
      ++n;
    }
    return n == 4;
  })) << text();
  EXPECT_TRUE(has("portsentinel_port_listeners" + port_label() + " 1"));
  EXPECT_TRUE(has("portsentinel_port_hijacked" + port_label() + " 0"));
}

TEST_F(PortWatchTest, LearnedOwnersSurviveARestartSoAHijackerIsNotLearned) {
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  {
    PortWatcher first(metrics_, dir_.path());
    first.apply(watch({}));
    ASSERT_TRUE(testing::eventually([&] {
      return std::filesystem::exists(dir_.path() + "/learned-owners.tsv");
    }));
  }
  std::ifstream in(dir_.path() + "/learned-owners.tsv");
  std::string learned((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(learned.find(std::to_string(port_) + "\t" + LISTENER_HELPER + "\troot"),
            std::string::npos)
      << learned;

  // While the daemon was down, a rogue joined the port.
  auto rogue = listen(rogue_exe_, "127.0.0.1");
  PortWatcher second(metrics_, dir_.path());
  second.apply(watch({}));
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_hijacked" + port_label() + " 1"); }))
      << text();
  EXPECT_NE(text().find("comm=\"rogue-listener\",exe=\"" + rogue_exe_ + "\",expected=\"false\""),
            std::string::npos);
}

TEST_F(PortWatchTest, RemovedPortLosesItsSeries) {
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  PortWatcher watcher(metrics_, dir_.path());
  watcher.apply(watch({}));
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_listeners" + port_label() + " 1"); }));
  config::PortsConfig none;
  none.poll_interval = 100ms;
  watcher.apply(none);
  ASSERT_TRUE(testing::eventually(
      [&] { return text().find(port_label()) == std::string::npos; }))
      << text();
}

// A real pid reuse: the expected owner exits, and the kernel hands its pid to a rogue that binds
// the port. The watch described that pid as the expected program and, since nothing new was
// listening in between, still holds that description: it must see the new start time and
// describe the rogue afresh, not wave it through as the owner.
TEST_F(PortWatchTest, ExpectedOwnersPidReusedByARogueIsFlagged) {
  const char* last_pid_file = "/proc/sys/kernel/ns_last_pid";
  if (geteuid() != 0 || access(last_pid_file, W_OK) != 0) {
    GTEST_SKIP() << "needs root and " << last_pid_file << " to hand a chosen pid to the rogue";
  }
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  const pid_t pid = owner->pid();
  PortWatcher watcher(metrics_, dir_.path());
  watcher.apply(watch({rule(LISTENER_HELPER, "", "", "")}));
  ASSERT_TRUE(testing::eventually([&] {
    return has("expected=\"true\",pid=\"" + std::to_string(pid) + "\"");
  })) << text();
  owner.reset();  // killed and reaped: its pid is free again
  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_listeners" + port_label() + " 0"); }))
      << text();

  // The rogue is a shell that waits for a go-file, then execs the listener (keeping its pid).
  // A fork of another process may take the pid first: such a try is killed before it binds, so
  // the watch never scans in between and keeps its description of the old owner.
  const std::string go = dir_.file("go");
  const std::string script = "while [ ! -e " + go + " ]; do sleep 0.02; done; exec " +
                             rogue_exe_ + " 127.0.0.1 " + std::to_string(port_) + " --reuseport";
  std::unique_ptr<Process> rogue;
  for (int attempt = 0; attempt < 100 && !rogue; ++attempt) {
    std::ofstream(last_pid_file) << pid - 1;
    auto p = std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", script},
                                       dir_.file("rogue.log"));
    if (p->pid() == pid) {
      rogue = std::move(p);
    }
  }
  ASSERT_TRUE(rogue) << "the kernel never gave pid " << pid << " again";
  std::ofstream(go) << "";
  ASSERT_TRUE(testing::eventually([&] { return rogue->log().find("ready") != std::string::npos; }))
      << rogue->log();

  ASSERT_TRUE(testing::eventually(
      [&] { return has("portsentinel_port_hijacked" + port_label() + " 1"); }))
      << text();
  EXPECT_TRUE(has("address=\"127.0.0.1\",comm=\"rogue-listener\",exe=\"" + rogue_exe_ +
                  "\",expected=\"false\",pid=\"" + std::to_string(pid) + "\""))
      << text();
}

// Without privileges (no CAP_DAC_READ_SEARCH / CAP_SYS_PTRACE): the daemon as `nobody` still
// reports the listener and its uid, marks the owners unknown, says why once, and runs on.
TEST_F(PortWatchTest, UnprivilegedDaemonReportsListenersWithUnknownOwners) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to start a root-owned listener and drop the daemon to nobody";
  }
  auto owner = listen(LISTENER_HELPER, "0.0.0.0");
  // Everything the unprivileged daemon reads lives in a directory it may enter.
  chmod(dir_.path().c_str(), 0755);
  const std::string binary = dir_.path() + "/portsentinel";
  std::filesystem::copy_file(testing::portsentinel_binary(), binary);
  chmod(binary.c_str(), 0755);
  const std::string cfg = dir_.write(
      "c.yaml", "ports:\n  poll_interval: 100ms\n  watch: [{port: " + std::to_string(port_) +
                    "}]\n");
  chmod(cfg.c_str(), 0644);
  Process daemon({binary, "run", "--config", cfg, "--web.listen-address", "127.0.0.1:0",
                  "--state-dir", dir_.path() + "/state"},
                 dir_.file("daemon.log"), 65534);
  std::optional<uint16_t> port;
  ASSERT_TRUE(testing::eventually(
      [&] { return (port = testing::listen_port_from_log(daemon.log())).has_value(); }))
      << daemon.log();
  const std::string listeners = "portsentinel_port_listeners" + port_label() + " 1";
  const std::string unknown = "portsentinel_port_owner_info{address=\"0.0.0.0\",comm=\"\",exe=\"\","
                              "expected=\"unknown\",pid=\"\",port=\"" + std::to_string(port_) +
                              "\",unit=\"\",user=\"root\"} 1";
  std::string body;
  EXPECT_TRUE(testing::eventually([&] {
    auto reply = testing::http_request(*port, "GET", "/metrics");
    body = reply ? reply->body : "";
    return body.find(listeners) != std::string::npos && body.find(unknown) != std::string::npos;
  })) << body << daemon.log();
  EXPECT_NE(body.find("portsentinel_port_hijacked" + port_label() + " 0"), std::string::npos);
  const std::string log = daemon.log();
  const std::string why = "cannot attribute some listening sockets";
  ASSERT_NE(log.find(why), std::string::npos) << log;
  EXPECT_EQ(log.find(why, log.find(why) + 1), std::string::npos) << "said more than once\n" << log;
  EXPECT_TRUE(daemon.running());
  EXPECT_EQ(daemon.stop(SIGTERM, 3s), std::optional<int>(0));
}

}  // namespace
}  // namespace portsentinel::daemon
