// The netlink listing on its own, against sockets this test opens: both families, the fields
// the port watch relies on, more listeners than one receive holds, and both request kinds.
#include "probes/listeners.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>
#include <string>
#include <vector>

namespace portsentinel::probes {
namespace {

// A listening socket on `address`:0 (the kernel picks the port); closed with the object.
class OpenListener {
 public:
  explicit OpenListener(const std::string& address) {
    const bool v6 = address.find(':') != std::string::npos;
    fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
      a->sin6_family = AF_INET6;
      inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&storage);
      a->sin_family = AF_INET;
      inet_pton(AF_INET, address.c_str(), &a->sin_addr);
      len = sizeof *a;
    }
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&storage), len) != 0 ||
        listen(fd_, 1) != 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
      ADD_FAILURE() << "cannot listen on " << address;
      return;
    }
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    struct stat st {};
    fstat(fd_, &st);
    inode_ = st.st_ino;
  }
  ~OpenListener() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  OpenListener(const OpenListener&) = delete;
  OpenListener& operator=(const OpenListener&) = delete;

  uint16_t port() const { return port_; }
  uint64_t inode() const { return inode_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  uint64_t inode_ = 0;
};

const Listener* find(const std::vector<Listener>& all, uint16_t port) {
  auto it = std::find_if(all.begin(), all.end(), [&](const Listener& l) { return l.port == port; });
  return it == all.end() ? nullptr : &*it;
}

class ListenersTest : public ::testing::TestWithParam<ListenerLister::Request> {};

TEST_P(ListenersTest, BothFamiliesWithAddressUidAndInode) {
  OpenListener v4("127.0.0.1");
  OpenListener v6("::1");
  OpenListener unwatched("127.0.0.1");
  ListenerLister lister(GetParam());
  const std::set<uint16_t> watched{v4.port(), v6.port()};
  const auto listed = lister.list(&watched);
  EXPECT_EQ(lister.request(), GetParam()) << "the kernel refused the request";
  ASSERT_EQ(listed.size(), 2u);
  const Listener* a = find(listed, v4.port());
  const Listener* b = find(listed, v6.port());
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->address, "127.0.0.1");
  EXPECT_EQ(b->address, "::1");
  EXPECT_EQ(a->uid, getuid());
  EXPECT_EQ(b->uid, getuid());
  EXPECT_EQ(a->inode, v4.inode());
  EXPECT_EQ(b->inode, v6.inode());
  // Unfiltered, the unwatched one is there too.
  EXPECT_NE(find(lister.list(), unwatched.port()), nullptr);
}

TEST_P(ListenersTest, MoreListenersThanOneReceiveHolds) {
  // About 45 listeners fit in one page-sized receive: 120 take several.
  std::vector<std::unique_ptr<OpenListener>> open;
  std::set<uint16_t> ports;
  std::set<std::pair<std::string, uint16_t>> ours;
  for (int i = 0; i < 120; ++i) {
    const std::string address = i % 2 == 0 ? "127.0.0.1" : "::1";
    open.push_back(std::make_unique<OpenListener>(address));
    ports.insert(open.back()->port());
    ours.emplace(address, open.back()->port());
  }
  ListenerLister lister(GetParam());
  std::set<uint64_t> inodes;
  for (const auto& l : lister.list(&ports)) {
    // A test running beside this one may listen on one of these port numbers in the other
    // family (or on another address): only our own sockets count.
    if (ours.count({l.address, l.port}) != 0) {
      inodes.insert(l.inode);
    }
  }
  std::set<uint64_t> expected;
  for (const auto& l : open) {
    expected.insert(l->inode());
  }
  EXPECT_EQ(inodes, expected);
}

INSTANTIATE_TEST_SUITE_P(Requests, ListenersTest,
                         ::testing::Values(ListenerLister::Request::kBothFamilies,
                                           ListenerLister::Request::kPerFamily),
                         [](const auto& param_info) {
                           return param_info.param == ListenerLister::Request::kBothFamilies
                                      ? std::string("BothFamilies")
                                      : std::string("PerFamily");
                         });

TEST(Listeners, BothRequestKindsGiveTheSameAnswer) {
  OpenListener v4("127.0.0.1");
  OpenListener v6("::1");
  ListenerLister both(ListenerLister::Request::kBothFamilies);
  ListenerLister per_family(ListenerLister::Request::kPerFamily);
  auto key = [](const std::vector<Listener>& all) {
    std::set<std::string> out;
    for (const auto& l : all) {
      out.insert(l.address + " " + std::to_string(l.port) + " " + std::to_string(l.uid) + " " +
                 std::to_string(l.inode));
    }
    return out;
  };
  EXPECT_EQ(key(both.list()), key(per_family.list()));
}

}  // namespace
}  // namespace portsentinel::probes
