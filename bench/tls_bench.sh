#!/usr/bin/env bash
# Side-by-side TLS probe cost, in one run on one machine (issue: performance).
#   nginx (TLS, ECDSA P-256 chain, no session cache or tickets) on loopback;
#   blackbox_exporter driven at its maximum rate by wrk against /probe?module=tls;
#   portsentinel scheduled with enough targets (distinct 127.0.0.0/8 addresses) at 1 s to do
#   the same rate; CPU seconds per completed probe from /proc/PID/stat; the crypto floor of
#   the client side of the handshake (2 X25519 + 2 P-256 verifies) from `openssl speed`.
# Usage: bench/tls_bench.sh [BUILD_DIR]   (DURATION=seconds per measurement, default 10)
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
duration=${DURATION:-10}
source "$bench_dir/lib.sh"

# blackbox_exporter at its maximum rate.
bb_port=$(free_port)
cat > blackbox.yml <<CONF
modules:
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config:
        ca_file: $work/ca.pem
        server_name: localhost
CONF
prometheus-blackbox-exporter --config.file=blackbox.yml --web.listen-address="127.0.0.1:$bb_port" \
  > blackbox.log 2>&1 &
bb_pid=$!
pids+=($bb_pid)
wait_port "$bb_port"
probe_url="/probe?module=tls&target=127.0.0.1:$tls_port"
http_get "$bb_port" "$probe_url" | grep -q '^probe_success 1' || { echo "blackbox probe fails"; http_get "$bb_port" "$probe_url"; exit 1; }
wrk -t2 -c16 -d2s "http://127.0.0.1:$bb_port$probe_url" > /dev/null  # warm-up
before=$(cpu_ticks "$bb_pid")
wrk -t2 -c16 -d"${duration}s" "http://127.0.0.1:$bb_port$probe_url" > wrk.txt
after=$(cpu_ticks "$bb_pid")
bb_probes=$(awk '/requests in/ {print $1}' wrk.txt)
bb_rate=$(awk -v n="$bb_probes" -v d="$duration" 'BEGIN {printf "%.0f", n / d}')
bb_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$bb_probes" 'BEGIN {printf "%.0f", t / hz / n * 1e6}')
kill "$bb_pid"

# portsentinel at the same rate: one target per probe per second, on distinct addresses.
targets=$bb_rate
ps_port=$(free_port)
portsentinel_config "$targets" 1s 900ms "$ps_port" > portsentinel.yaml
LD_PRELOAD=${PORTSENTINEL_PRELOAD:-} "$build/daemon/portsentinel" run --config portsentinel.yaml --state-dir "$work" > portsentinel.log 2>&1 &
ps_pid=$!
pids+=($ps_pid)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$ps_port") 2>/dev/null && break
  kill -0 "$ps_pid" 2>/dev/null || { echo "portsentinel exited:"; tail -20 portsentinel.log; wait "$ps_pid" || echo "exit status $?"; exit 1; }
  sleep 0.1
done
sleep 3  # every target has started (first runs spread over the 1 s interval)
probes_done() { http_get "$ps_port" /metrics | awk '/^portsentinel_tls_handshake_duration_seconds_count/ {n += $2} END {print n}'; }
ok_count() { http_get "$ps_port" /metrics | grep -c '^portsentinel_probe_reason{reason="ok"' || true; }
n0=$(probes_done)
before=$(cpu_ticks "$ps_pid")
if [ -n "${PERF_OUT:-}" ]; then  # profile portsentinel while it is measured
  perf record -g -p "$ps_pid" -o "$PERF_OUT" -- sleep "$duration" 2>/dev/null
else
  sleep "$duration"
fi
after=$(cpu_ticks "$ps_pid")
n1=$(probes_done)
ps_probes=$((n1 - n0))
ps_rate=$(awk -v n="$ps_probes" -v d="$duration" 'BEGIN {printf "%.0f", n / d}')
ps_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$ps_probes" 'BEGIN {printf "%.0f", t / hz / n * 1e6}')
ps_ok=$(ok_count)
ps_version=$(http_get "$ps_port" /metrics | sed -n 's/^portsentinel_tls_version_info{.*version="\([^"]*\)".*/\1/p' | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
kill "$ps_pid"

# What OpenSSL itself costs per client handshake here (a plain blocking client, no Asio).
read -r lib_ok lib_n lib_us lib_sys_us < <("$build/bench/openssl_client_bench" "$tls_port" "$work/ca.pem" 2000)

# The crypto floor: the client's share of a TLS 1.3 handshake with this chain.
openssl speed -seconds 2 ecdhx25519 ecdsap256 > speed.txt 2>/dev/null
x25519=$(awk '/ecdh \(X25519\)/ {v = $(NF)} END {print v}' speed.txt)
verify=$(awk '/ecdsa \(nistp256\)/ {v = $(NF)} END {print v}' speed.txt)
floor_us=$(awk -v x="$x25519" -v v="$verify" 'BEGIN {printf "%.0f", (2 / x + 2 / v) * 1e6}')

printf '\nTLS probe cost (%s s per measurement, %s CPU ticks/s; nginx negotiated %s; portsentinel with %s)\n' \
  "$duration" "$hz" "$ps_version" "$(allocator "$build/daemon/portsentinel")"
printf '| | probes/s | CPU per TLS probe |\n|---|---|---|\n'
printf '| crypto floor (2 X25519 at %s/s + 2 P-256 verifies at %s/s) | | %s µs |\n' "$x25519" "$verify" "$floor_us"
printf '| blackbox_exporter %s (wrk, 16 connections) | %s | %s µs |\n' \
  "$(prometheus-blackbox-exporter --version 2>&1 | awk '/version/ {print $3; exit}')" "$bb_rate" "$bb_us"
printf '| portsentinel (%s targets every 1 s; %s ok) | %s | %s µs |\n' "$targets" "$ps_ok" "$ps_rate" "$ps_us"
printf '| plain OpenSSL %s client, blocking, no Asio (%s/%s ok) | | %s µs |\n' \
  "$(openssl version | awk '{print $2}')" "$lib_ok" "$lib_n" "$lib_us"
awk -v b="$bb_us" -v p="$ps_us" -v f="$floor_us" 'BEGIN {
  printf "| ratio blackbox / portsentinel | | %.1fx (target >= 4x) |\n", b / p
  printf "| ratio portsentinel / floor | | %.2fx (target <= 2x) |\n", p / f }'
awk -v l="$lib_us" -v p="$ps_us" -v f="$floor_us" 'BEGIN {
  printf "| ratio plain OpenSSL / floor | | %.2fx |\n", l / f
  printf "| ratio portsentinel / plain OpenSSL | | %.2fx |\n", p / l }'
# No client can cost less than the handshake's cryptography plus the kernel's part of one TCP
# connection over loopback (socket, connect, the TLS records, close: the plain client's system
# time), so blackbox's cost over that bounds the ratio any prober could reach here.
awk -v b="$bb_us" -v f="$floor_us" -v k="$lib_sys_us" 'BEGIN {
  printf "| kernel per connection (plain client system time) | | %s µs |\n", k
  printf "| least any prober could cost here (floor + kernel) | | %s µs |\n", f + k
  printf "| ratio blackbox / that least cost: the best any prober could reach | | %.1fx |\n", b / (f + k) }'
