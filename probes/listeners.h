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
  // How the kernel is asked. IPv4 and IPv6 TCP sockets share one listening hash, and walking it
  // cold is most of a steady-state poll: kBothFamilies (the TCPDIAG_GETSOCK request, whose dump
  // has no family filter) walks it once, kPerFamily (SOCK_DIAG_BY_FAMILY for AF_INET, then
  // AF_INET6) twice. kBothFamilies falls back to kPerFamily for good if the kernel refuses it.
  enum class Request { kBothFamilies, kPerFamily };

  // Throws std::system_error when the netlink socket cannot be opened.
  explicit ListenerLister(Request request = Request::kBothFamilies);
  ~ListenerLister();
  ListenerLister(const ListenerLister&) = delete;
  ListenerLister& operator=(const ListenerLister&) = delete;

  Request request() const { return request_; }

  // Every TCP listener, or only those on `ports` when given (the others cost no allocation).
  // Throws std::system_error on a netlink failure.
  std::vector<Listener> list(const std::set<uint16_t>* ports = nullptr);

 private:
  // Sends one dump request; returns false when the kernel rejects it (EINVAL, EOPNOTSUPP).
  bool dump(const void* request, size_t size, const std::set<uint16_t>* ports,
            std::vector<Listener>& out);
  void dump_family(int family, const std::set<uint16_t>* ports, std::vector<Listener>& out);
  int fd_ = -1;
  Request request_;
  std::vector<char> buffer_;
};

}  // namespace portsentinel::probes
