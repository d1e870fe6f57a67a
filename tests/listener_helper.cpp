// A process that listens on ADDRESS:PORT and waits to be killed: the "owner" and the "rogue"
// of the port watch tests. Usage: listener_helper ADDRESS PORT [--reuseport] [--children N]
// Prints "ready" once listening (and its children are up). Children hold the same socket, as
// nginx's workers do, and die with the parent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ADDRESS PORT [--reuseport] [--children N]\n", argv[0]);
    return 2;
  }
  bool reuseport = false;
  int children = 0;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reuseport") == 0) {
      reuseport = true;
    } else if (std::strcmp(argv[i], "--children") == 0 && i + 1 < argc) {
      children = std::atoi(argv[++i]);
    }
  }
  const bool v6 = std::strchr(argv[1], ':') != nullptr;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  sockaddr_storage addr{};
  socklen_t len = 0;
  const auto port = static_cast<uint16_t>(std::atoi(argv[2]));
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, argv[1], &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, argv[1], &a->sin_addr);
    len = sizeof *a;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 16) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  int ready[2];
  if (pipe(ready) != 0) {
    return 1;
  }
  for (int i = 0; i < children; ++i) {
    if (fork() == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(ready[0]);
      close(ready[1]);  // the parent reads EOF once every child is up
      for (;;) {
        pause();
      }
    }
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  std::printf("ready\n");
  std::fflush(stdout);
  signal(SIGTERM, [](int) { _exit(0); });
  for (;;) {
    pause();
  }
}
