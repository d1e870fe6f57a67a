#!/usr/bin/env bash
# Two portsentinel builds side by side against one nginx, alternating, so that the machine's
# drift hits both alike: CPU per TLS probe of each, and the ratio B/A per round.
#   nginx (TLS, ECDSA P-256 chain, no session cache or tickets) on loopback, as tls_bench.sh;
#   each build in turn probes TARGETS targets (distinct 127.0.0.0/8 addresses) every 1 s.
# Usage: bench/ab_bench.sh BUILD_DIR_A BUILD_DIR_B [TARGETS]
#   (ROUNDS=rounds, default 3; DURATION=seconds per measurement, default 10)
# Example, a change against the commit before it:
#   git worktree add /tmp/base HEAD~1 && cmake -S /tmp/base -B /tmp/base/build \
#     -DPORTSENTINEL_BUILD_TESTS=OFF && cmake --build /tmp/base/build --target portsentinel
#   bench/ab_bench.sh /tmp/base/build build 1000
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
build_a=$(cd "$1" && pwd)
build_b=$(cd "$2" && pwd)
targets=${3:-1000}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
source "$bench_dir/lib.sh"

ps_port=$(free_port)
portsentinel_config "$targets" 1s 900ms "$ps_port" > portsentinel.yaml

# measure BUILD: prints "PROBES CPU_US_PER_PROBE OK_TARGETS" for one daemon of that build.
measure() {
  "$1/daemon/portsentinel" run --config portsentinel.yaml --state-dir "$work" \
    > portsentinel.log 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_port "$ps_port"
  sleep 3  # every target has started (first runs spread over the 1 s interval)
  local n0 n1 t0 t1 ok
  n0=$(http_get "$ps_port" /metrics | awk '/^portsentinel_tls_handshake_duration_seconds_count/ {n += $2} END {print n}')
  t0=$(cpu_ticks "$pid")
  sleep "$duration"
  t1=$(cpu_ticks "$pid")
  n1=$(http_get "$ps_port" /metrics | awk '/^portsentinel_tls_handshake_duration_seconds_count/ {n += $2} END {print n}')
  ok=$(http_get "$ps_port" /metrics | grep -c '^portsentinel_probe_reason{reason="ok"' || true)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v n=$((n1 - n0)) -v t=$((t1 - t0)) -v hz="$hz" -v ok="$ok" \
    'BEGIN {printf "%d %.0f %d\n", n, t / hz / n * 1e6, ok}'
}

printf 'A: %s\nB: %s\n%s TLS targets every 1 s, %s s per measurement\n' \
  "$build_a" "$build_b" "$targets" "$duration"
printf '| round | A probes | A µs/probe | B probes | B µs/probe | B/A |\n|---|---|---|---|---|---|\n'
sum_ratio=0
for r in $(seq "$rounds"); do
  # Alternate which goes first, so neither always runs on a warmer machine.
  if [ $((r % 2)) = 1 ]; then
    read -r a_n a_us a_ok < <(measure "$build_a")
    read -r b_n b_us b_ok < <(measure "$build_b")
  else
    read -r b_n b_us b_ok < <(measure "$build_b")
    read -r a_n a_us a_ok < <(measure "$build_a")
  fi
  [ "$a_ok" = "$targets" ] && [ "$b_ok" = "$targets" ] ||
    echo "warning: not every target ok (A $a_ok, B $b_ok of $targets)"
  ratio=$(awk -v a="$a_us" -v b="$b_us" 'BEGIN {printf "%.2f", b / a}')
  sum_ratio=$(awk -v s="$sum_ratio" -v x="$ratio" 'BEGIN {print s + x}')
  printf '| %d | %d | %d | %d | %d | %sx |\n' "$r" "$a_n" "$a_us" "$b_n" "$b_us" "$ratio"
done
awk -v s="$sum_ratio" -v n="$rounds" 'BEGIN {printf "mean B/A over %d rounds: %.2fx\n", n, s / n}'
