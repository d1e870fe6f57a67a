// openssl_client_bench's twin for wolfSSL: N blocking TLS client handshakes with verification
// (SNI, host name check, no tickets), to compare TLS libraries' cost per handshake in one run.
// Prints the handshakes that succeeded, N, CPU per handshake and its system part (µs), version.
// Usage: wolfssl_client_bench PORT CA_FILE N
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <arpa/inet.h>
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
  wolfSSL_Init();
  WOLFSSL_CTX* ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (wolfSSL_CTX_load_verify_locations(ctx, argv[2], nullptr) != WOLFSSL_SUCCESS) {
    std::fprintf(stderr, "cannot load %s\n", argv[2]);
    return 2;
  }
  wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, nullptr);
  wolfSSL_CTX_NoTicketTLSv12(ctx);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = 0;
  const char* version = "none";
  const Cpu start = process_cpu();
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    WOLFSSL* ssl = wolfSSL_new(ctx);
    wolfSSL_set_fd(ssl, fd);
    wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, "localhost", 9);
    wolfSSL_check_domain_name(ssl, "localhost");
    if (wolfSSL_connect(ssl) == WOLFSSL_SUCCESS) {
      ++ok;
      version = wolfSSL_get_version(ssl);
    }
    wolfSSL_free(ssl);
    close(fd);
  }
  const Cpu end = process_cpu();
  std::printf("%d %d %.0f %.0f %s\n", ok, n, (end.total - start.total) / n * 1e6,
              (end.system - start.system) / n * 1e6, version);
  wolfSSL_CTX_free(ctx);
  wolfSSL_Cleanup();
  return ok == n ? 0 : 1;
}
