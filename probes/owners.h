#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portsentinel::probes {

// One process that holds a socket.
struct ProcessInfo {
  int pid = 0;
  uint64_t start_time = 0;  // clock ticks after boot (/proc/PID/stat field 22): pid + this = one process
  std::string comm;
  std::string exe;  // without the " (deleted)" suffix
  bool exe_deleted = false;
  uint32_t uid = 0;
  std::string user;
  std::string unit;       // systemd unit from /proc/PID/cgroup, e.g. "nginx.service"
  std::string container;  // container id when the cgroup path shows one
  bool operator==(const ProcessInfo&) const = default;
};

struct ScanStats {
  int processes = 0;  // /proc entries looked at
  int denied = 0;     // processes whose fds or exe could not be read (missing capabilities)
  int fds = 0;        // fd links read
};

// Finds the processes that hold listening sockets, by scanning /proc/*/fd for socket:[inode].
// Blocking file-system work: never call it on the event-loop thread.
// Thread safety: one caller at a time (it caches process descriptions).
class OwnerFinder {
 public:
  explicit OwnerFinder(std::string proc_root = "/proc");

  // Every process holding each of `inodes` (nginx's master and workers all hold one socket).
  std::map<uint64_t, std::vector<ProcessInfo>> find(const std::set<uint64_t>& inodes,
                                                    ScanStats* stats = nullptr);

  // The description of `pid`, cached by (pid, start time): a reused pid is described anew.
  // Returns false when the process is gone.
  bool describe(int pid, ProcessInfo* out);

 private:
  std::string root_;
  std::map<int, ProcessInfo> cache_;
};

// Pure parsers, unit-tested on their own.
// The systemd unit in a /proc/PID/cgroup file (v1 name=systemd or v2 "0::" line): the last
// path component ending in .service, else in .scope. "" when none.
std::string unit_from_cgroup(std::string_view cgroup_file);
// A container id (64 hex digits) from docker, containerd, CRI-O or podman cgroup paths.
std::string container_from_cgroup(std::string_view cgroup_file);
// comm and start time from /proc/PID/stat (comm may hold spaces and parentheses).
bool parse_stat(std::string_view stat, std::string* comm, uint64_t* start_time);
// The uid from the "Uid:" line of /proc/PID/status (real uid).
bool uid_from_status(std::string_view status, uint32_t* uid);
// The user name of a uid, or the number as text when it has none.
std::string user_name(uint32_t uid);

}  // namespace portsentinel::probes
