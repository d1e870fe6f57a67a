// The library's own cost: N blocking TLS client handshakes with plain OpenSSL (no Asio, no
// portsentinel), full handshakes with verification, like a probe. Prints the handshakes that
// succeeded, N, CPU per handshake and the kernel's (system) part of it, in microseconds.
// Usage: openssl_client_bench PORT CA_FILE N
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "process_cpu.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT CA_FILE N\n", argv[0]);
    return 2;
  }
  const int n = std::atoi(argv[3]);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_load_verify_locations(ctx, argv[2], nullptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = 0;
  const Cpu start = process_cpu();
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    ok += SSL_connect(ssl) == 1 ? 1 : 0;
    SSL_free(ssl);
    close(fd);
  }
  const Cpu end = process_cpu();
  std::printf("%d %d %.0f %.0f\n", ok, n, (end.total - start.total) / n * 1e6,
              (end.system - start.system) / n * 1e6);
  SSL_CTX_free(ctx);
  return ok == n ? 0 : 1;
}
