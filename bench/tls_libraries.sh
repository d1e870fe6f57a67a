#!/usr/bin/env bash
# Would another TLS library from Debian 12 make a probe's handshake cheaper? In one run against
# the benchmarks' nginx (ECDSA P-256 chain, TLS 1.3, no session reuse): the same blocking client
# built against OpenSSL 3.0 (what portsentinel uses), BoringSSL (android-libboringssl-dev) and
# wolfSSL (libwolfssl-dev), CPU per full handshake with verification. A library whose
# development package is missing is reported as such. Usage: bench/tls_libraries.sh [BUILD_DIR]
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
source "$bench_dir/lib.sh"

declare -A client
client[openssl]="$build/bench/openssl_client_bench"
if [ -f /usr/include/android/openssl/ssl.h ]; then
  android=/usr/lib/x86_64-linux-gnu/android
  g++ -O2 -I/usr/include/android -o boringssl_client "$bench_dir/openssl_client_bench.cpp" \
    -L"$android" -Wl,-rpath,"$android" -lssl -lcrypto
  client[boringssl]="$work/boringssl_client"
fi
if [ -f /usr/include/wolfssl/ssl.h ]; then
  g++ -O2 -o wolfssl_client "$bench_dir/wolfssl_client_bench.cpp" -lwolfssl
  client[wolfssl]="$work/wolfssl_client"
fi

printf '\nTLS libraries, one blocking client each, %s handshakes, same nginx\n' "${N:-2000}"
printf '| library | ok | CPU per handshake | of which kernel |\n|---|---|---|---|\n'
for lib in openssl boringssl wolfssl; do
  if [ -z "${client[$lib]:-}" ]; then
    printf '| %s | development package not installed | | |\n' "$lib"
    continue
  fi
  for round in 1 2; do
    read -r ok n us sys_us _ < <("${client[$lib]}" "$tls_port" "$work/ca.pem" "${N:-2000}")
    printf '| %s (round %s) | %s/%s | %s µs | %s µs |\n' "$lib" "$round" "$ok" "$n" "$us" "$sys_us"
  done
done
