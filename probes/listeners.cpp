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
namespace {

// The kernel sizes each dump datagram to the largest receive seen on the socket (up to 32 KiB;
// at least NLMSG_GOODSIZE, which never exceeds a page). One page keeps that a small slab
// allocation per dump instead of a multi-page one; a page holds about 45 listeners, and more
// simply take further receives.
size_t receive_buffer_size() {
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<size_t>(page) : 4096;
}

// A netlink dump request for listening sockets: the header, then the inet_diag request
// (inet_diag_req or inet_diag_req_v2; both carry the state mask).
template <typename Request>
struct DumpRequest {
  nlmsghdr header;
  Request request;
};

template <typename Request>
DumpRequest<Request> listen_dump(uint16_t type) {
  DumpRequest<Request> r{};
  r.header.nlmsg_len = sizeof r;
  r.header.nlmsg_type = type;
  r.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  r.request.idiag_states = 1U << TCP_LISTEN;
  return r;
}

}  // namespace

ListenerLister::ListenerLister(Request request)
    : request_(request), buffer_(receive_buffer_size()) {
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
  if (request_ == Request::kBothFamilies) {
    // The inet_diag compatibility request: its dump runs with family AF_UNSPEC, so one walk of
    // the shared listening hash returns IPv4 and IPv6 sockets alike.
    const auto req = listen_dump<inet_diag_req>(TCPDIAG_GETSOCK);
    if (dump(&req, sizeof req, ports, out)) {
      return out;
    }
    out.clear();
    request_ = Request::kPerFamily;  // a kernel without the compatibility request
  }
  dump_family(AF_INET, ports, out);
  dump_family(AF_INET6, ports, out);
  return out;
}

void ListenerLister::dump_family(int family, const std::set<uint16_t>* ports,
                                 std::vector<Listener>& out) {
  auto req = listen_dump<inet_diag_req_v2>(SOCK_DIAG_BY_FAMILY);
  req.request.sdiag_family = static_cast<uint8_t>(family);
  req.request.sdiag_protocol = IPPROTO_TCP;
  if (!dump(&req, sizeof req, ports, out)) {
    throw std::system_error(EOPNOTSUPP, std::generic_category(), "netlink sock_diag dump");
  }
}

bool ListenerLister::dump(const void* request, size_t size, const std::set<uint16_t>* ports,
                          std::vector<Listener>& out) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, request, size, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    throw std::system_error(errno, std::generic_category(), "netlink sock_diag request");
  }
  while (true) {
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd_, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::system_error(errno, std::generic_category(), "netlink sock_diag receive");
    }
    if ((msg.msg_flags & MSG_TRUNC) != 0) {
      // Cannot happen with a page-sized buffer; if it did, listeners would be lost silently.
      throw std::system_error(EMSGSIZE, std::generic_category(), "netlink sock_diag receive");
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer_.data()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        return true;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const int error = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (error == EINVAL || error == EOPNOTSUPP || error == ENOENT) {
          return false;  // the request kind is not supported: nothing else follows
        }
        throw std::system_error(error, std::generic_category(), "netlink sock_diag dump");
      }
      const auto* diag = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      const uint16_t port = ntohs(diag->id.idiag_sport);
      if (ports != nullptr && ports->count(port) == 0) {
        continue;
      }
      Listener l;
      l.port = port;
      l.uid = diag->idiag_uid;
      l.inode = diag->idiag_inode;
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(diag->idiag_family, diag->id.idiag_src, text, sizeof text);
      l.address = text;
      out.push_back(std::move(l));
    }
  }
}

}  // namespace portsentinel::probes
