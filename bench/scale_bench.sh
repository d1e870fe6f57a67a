#!/usr/bin/env bash
# Scale (issue: performance): N TLS targets on distinct 127.0.0.0/8 addresses, all served by one
# nginx, every INTERVAL. After the first runs have spread over one interval, measures for
# MEASURE seconds: RSS, CPU share of one core, p99 of scheduler_lag_seconds, and how long a
# full /metrics scrape takes. Usage: bench/scale_bench.sh [BUILD_DIR] [N] [INTERVAL_SECONDS]
set -euo pipefail
bench_dir=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
n=${2:-10000}
interval=${3:-30}
measure=${MEASURE:-$interval}
source "$bench_dir/lib.sh"

ps_port=$(free_port)
portsentinel_config "$n" "${interval}s" 5s "$ps_port" > portsentinel.yaml
LD_PRELOAD=${PORTSENTINEL_PRELOAD:-} "$build/daemon/portsentinel" run --config portsentinel.yaml --state-dir "$work" > portsentinel.log 2>&1 &
ps_pid=$!
pids+=($ps_pid)
wait_port "$ps_port"
sleep "$((interval + 2))"  # every target has had its first run

lag_buckets() { http_get "$ps_port" /metrics | grep '^portsentinel_scheduler_lag_seconds_bucket'; }
rss_before_mb=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$ps_pid/status")
b0=$(lag_buckets)
before=$(cpu_ticks "$ps_pid")
start=$(date +%s.%N)
# The full scrapes run in the middle of the window, so the lag percentile shows whether they
# hold up probes: one as text (HTTP/1.0), one gzip over HTTP/1.1 as Prometheus asks.
sleep "$((measure / 2))"
scrape_start=$(date +%s.%N)
http_get "$ps_port" /metrics > scrape.txt
scrape_s=$(awk -v s="$scrape_start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.3f", e - s}')
gzip_s=n/a
gzip_bytes=n/a
if command -v curl > /dev/null; then
  scrape_start=$(date +%s.%N)
  curl -sS -H 'Accept-Encoding: gzip' -o scrape.gz "http://127.0.0.1:$ps_port/metrics"
  gzip_s=$(awk -v s="$scrape_start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.3f", e - s}')
  gzip_bytes=$(wc -c < scrape.gz)
fi
sleep "$((measure - measure / 2))"
after=$(cpu_ticks "$ps_pid")
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
b1=$(lag_buckets)
rss_mb=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$ps_pid/status")
ok=$(grep -c '^portsentinel_probe_reason{reason="ok"' scrape.txt || true)
# p99 of the lag over the window, from the histogram's cumulative buckets.
p99=$(paste <(echo "$b0") <(echo "$b1") | awk '
  { match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5); d[NR] = $4 - $2; l[NR] = le }
  END { total = d[NR]; for (i = 1; i <= NR; i++) if (d[i] >= 0.99 * total) { print l[i]; exit } }')
probes=$(paste <(echo "$b0") <(echo "$b1") | awk 'END {print $4 - $2}')
cpu_pct=$(awk -v t=$((after - before)) -v hz="$hz" -v e="$elapsed" 'BEGIN {printf "%.1f", t / hz / e * 100}')

printf '\nScale: %s TLS targets every %ss (measured over %.0fs; portsentinel with %s)\n' \
  "$n" "$interval" "$elapsed" "$(allocator "$build/daemon/portsentinel")"
printf '| | |\n|---|---|\n'
printf '| probes in the window | %s (%s ok at the end) |\n' "$probes" "$ok"
printf '| RSS | %s MB before any scrape, %s MB after four full scrapes |\n' "$rss_before_mb" "$rss_mb"
printf '| CPU | %s%% of one core |\n' "$cpu_pct"
printf '| p99 scheduler_lag_seconds | <= %s s (bucket bound) |\n' "$p99"
printf '| full /metrics scrape, text | %s s, %s bytes |\n' "$scrape_s" "$(wc -c < scrape.txt)"
printf '| full /metrics scrape, gzip (as Prometheus) | %s s, %s bytes |\n' "$gzip_s" "$gzip_bytes"
