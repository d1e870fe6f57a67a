// CPU this process has used, for the bare TLS client benchmarks (one per library).
#pragma once

#include <sys/resource.h>

struct Cpu {
  double total = 0;
  double system = 0;  // the kernel's share: socket, TCP over loopback, close
};

inline Cpu process_cpu() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  const double user = static_cast<double>(r.ru_utime.tv_sec) + r.ru_utime.tv_usec / 1e6;
  const double system = static_cast<double>(r.ru_stime.tv_sec) + r.ru_stime.tv_usec / 1e6;
  return {user + system, system};
}
