#include "probes/listeners.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace portsentinel::probes {

ListenerLister::ListenerLister() : buffer_(64 * 1024) {
  fd_ = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "netlink sock_diag socket");
  }
}

ListenerLister::~ListenerLister() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::vector<Listener> ListenerLister::list(const std::set<uint16_t>* ports) {
  std::vector<Listener> out;
  dump(AF_INET, ports, out);
  dump(AF_INET6, ports, out);
  return out;
}

void ListenerLister::dump(int family, const std::set<uint16_t>* ports,
                          std::vector<Listener>& out) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } req{};
  req.header.nlmsg_len = sizeof req;
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.request.sdiag_family = static_cast<uint8_t>(family);
  req.request.sdiag_protocol = IPPROTO_TCP;
  req.request.idiag_states = 1U << TCP_LISTEN;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    throw std::system_error(errno, std::generic_category(), "netlink sock_diag request");
  }
  while (true) {
    const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::system_error(errno, std::generic_category(), "netlink sock_diag receive");
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer_.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        return;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        throw std::system_error(-err->error, std::generic_category(), "netlink sock_diag dump");
      }
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      const uint16_t port = ntohs(msg->id.idiag_sport);
      if (ports != nullptr && ports->count(port) == 0) {
        continue;
      }
      Listener l;
      l.port = port;
      l.uid = msg->idiag_uid;
      l.inode = msg->idiag_inode;
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(msg->idiag_family, msg->id.idiag_src, text, sizeof text);
      l.address = text;
      out.push_back(std::move(l));
    }
  }
}

}  // namespace portsentinel::probes
