#include "probes/owners.h"

#include <dirent.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace portsentinel::probes {
namespace {

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return false;
  }
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

bool read_link(const std::string& path, std::string* out) {
  char buf[4096];
  const ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) {
    return false;
  }
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

bool all_digits(const char* s) {
  if (*s == '\0') {
    return false;
  }
  for (; *s != '\0'; ++s) {
    if (!std::isdigit(static_cast<unsigned char>(*s))) {
      return false;
    }
  }
  return true;
}

// The cgroup path that systemd manages: the v2 line, else the v1 name=systemd line.
std::string_view systemd_path(std::string_view file) {
  std::string_view v1;
  size_t pos = 0;
  while (pos < file.size()) {
    size_t eol = file.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = file.size();
    }
    const std::string_view line = file.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("0::", 0) == 0 && line.size() > 4) {
      return line.substr(3);
    }
    const size_t first = line.find(':');
    const size_t second = line.find(':', first + 1);
    if (first != std::string_view::npos && second != std::string_view::npos &&
        line.substr(first + 1, second - first - 1) == "name=systemd") {
      v1 = line.substr(second + 1);
    }
  }
  return v1;
}

}  // namespace

std::string unit_from_cgroup(std::string_view cgroup_file) {
  const std::string_view path = systemd_path(cgroup_file);
  std::string service;
  std::string scope;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) {
      slash = path.size();
    }
    const std::string_view part = path.substr(pos, slash - pos);
    if (part.size() > 8 && part.substr(part.size() - 8) == ".service") {
      service = std::string(part);
    } else if (part.size() > 6 && part.substr(part.size() - 6) == ".scope") {
      scope = std::string(part);
    }
    pos = slash + 1;
  }
  return service.empty() ? scope : service;
}

std::string container_from_cgroup(std::string_view cgroup_file) {
  // Look for 64 hex digits preceded by a container runtime's marker anywhere in the file.
  for (std::string_view marker :
       {"docker-", "/docker/", "libpod-", "cri-containerd-", "crio-", "containerd-"}) {
    size_t at = 0;
    while ((at = cgroup_file.find(marker, at)) != std::string_view::npos) {
      const size_t start = at + marker.size();
      size_t end = start;
      while (end < cgroup_file.size() && std::isxdigit(static_cast<unsigned char>(cgroup_file[end]))) {
        ++end;
      }
      if (end - start == 64) {
        return std::string(cgroup_file.substr(start, 64));
      }
      at = start;
    }
  }
  return "";
}

bool parse_stat(std::string_view stat, std::string* comm, uint64_t* start_time) {
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return false;
  }
  *comm = std::string(stat.substr(open + 1, close - open - 1));
  // After ") " come fields 3.. ; starttime is field 22, i.e. the 20th after the comm.
  std::string_view rest = stat.substr(close + 1);
  int field = 2;
  size_t pos = 0;
  while (pos < rest.size()) {
    while (pos < rest.size() && rest[pos] == ' ') {
      ++pos;
    }
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) {
      end = rest.size();
    }
    ++field;
    if (field == 22) {
      const auto r = std::from_chars(rest.data() + pos, rest.data() + end, *start_time);
      return r.ec == std::errc{};
    }
    pos = end;
  }
  return false;
}

bool uid_from_status(std::string_view status, uint32_t* uid) {
  const size_t at = status.find("\nUid:");
  if (at == std::string_view::npos) {
    return false;
  }
  size_t pos = at + 5;
  while (pos < status.size() && (status[pos] == ' ' || status[pos] == '\t')) {
    ++pos;
  }
  const auto r = std::from_chars(status.data() + pos, status.data() + status.size(), *uid);
  return r.ec == std::errc{};
}

std::string user_name(uint32_t uid) {
  passwd pw{};
  passwd* result = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr) {
    return pw.pw_name;
  }
  return std::to_string(uid);
}

OwnerFinder::OwnerFinder(std::string proc_root) : root_(std::move(proc_root)) {}

bool OwnerFinder::describe(int pid, ProcessInfo* out) {
  const std::string dir = root_ + "/" + std::to_string(pid);
  std::string stat;
  std::string comm;
  uint64_t start = 0;
  if (!read_file(dir + "/stat", &stat) || !parse_stat(stat, &comm, &start)) {
    cache_.erase(pid);
    return false;
  }
  if (auto it = cache_.find(pid); it != cache_.end() && it->second.start_time == start) {
    *out = it->second;
    return true;
  }
  // New, or the pid was reused by another process: describe it from scratch.
  ProcessInfo info;
  info.pid = pid;
  info.start_time = start;
  info.comm = comm;
  if (read_link(dir + "/exe", &info.exe)) {
    constexpr std::string_view kDeleted = " (deleted)";
    if (info.exe.size() > kDeleted.size() &&
        info.exe.compare(info.exe.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
      info.exe.resize(info.exe.size() - kDeleted.size());
      info.exe_deleted = true;
    }
  }
  std::string status;
  if (read_file(dir + "/status", &status) && uid_from_status(status, &info.uid)) {
    info.user = user_name(info.uid);
  }
  std::string cgroup;
  if (read_file(dir + "/cgroup", &cgroup)) {
    info.unit = unit_from_cgroup(cgroup);
    info.container = container_from_cgroup(cgroup);
  }
  cache_[pid] = info;
  *out = std::move(info);
  return true;
}

std::map<uint64_t, std::vector<ProcessInfo>> OwnerFinder::find(const std::set<uint64_t>& inodes,
                                                               ScanStats* stats) {
  std::map<uint64_t, std::vector<ProcessInfo>> owners;
  ScanStats local;
  DIR* proc = opendir(root_.c_str());
  if (proc == nullptr) {
    return owners;
  }
  std::set<int> alive;
  while (dirent* entry = readdir(proc)) {
    if (!all_digits(entry->d_name)) {
      continue;
    }
    const int pid = std::atoi(entry->d_name);
    alive.insert(pid);
    ++local.processes;
    const std::string fd_dir = root_ + "/" + entry->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) {
      if (errno == EACCES || errno == EPERM) {
        ++local.denied;
      }
      continue;
    }
    std::set<uint64_t> held;
    while (dirent* fd = readdir(fds)) {
      if (fd->d_name[0] == '.') {
        continue;
      }
      std::string target;
      ++local.fds;
      if (!read_link(fd_dir + "/" + fd->d_name, &target) || target.rfind("socket:[", 0) != 0) {
        continue;
      }
      uint64_t inode = 0;
      std::from_chars(target.data() + 8, target.data() + target.size() - 1, inode);
      if (inodes.count(inode)) {
        held.insert(inode);
      }
    }
    closedir(fds);
    if (!held.empty()) {
      ProcessInfo info;
      if (describe(pid, &info)) {
        for (uint64_t inode : held) {
          owners[inode].push_back(info);
        }
      }
    }
  }
  closedir(proc);
  // Forget processes that are gone, so the cache stays as small as the process table.
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = alive.count(it->first) ? std::next(it) : cache_.erase(it);
  }
  if (stats != nullptr) {
    *stats = local;
  }
  return owners;
}

}  // namespace portsentinel::probes
