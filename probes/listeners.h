#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace portsentinel::probes {

// One listening TCP socket as the kernel reports it.
struct Listener {
  uint16_t port = 0;
  std::string address;  // "0.0.0.0", "::", "127.0.0.1"
  uint32_t uid = 0;
  uint64_t inode = 0;
};

// Lists listening TCP sockets (IPv4 and IPv6) through a persistent NETLINK_SOCK_DIAG socket.
// It asks for the LISTEN state only, so the kernel does not walk established connections.
// Thread safety: one caller at a time.
class ListenerLister {
 public:
  ListenerLister();  // throws std::system_error when the netlink socket cannot be opened
  ~ListenerLister();
  ListenerLister(const ListenerLister&) = delete;
  ListenerLister& operator=(const ListenerLister&) = delete;

  // Every TCP listener, or only those on `ports` when given (the others cost no allocation).
  // Throws std::system_error on a netlink failure.
  std::vector<Listener> list(const std::set<uint16_t>* ports = nullptr);

 private:
  void dump(int family, const std::set<uint16_t>* ports, std::vector<Listener>& out);
  int fd_ = -1;
  std::vector<char> buffer_;
};

}  // namespace portsentinel::probes
