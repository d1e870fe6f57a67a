#!/usr/bin/env bash
# `make bench`: every benchmark, figures printed. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
echo "== port watch"
"$build/bench/port_watch_bench"
echo "== TLS probe cost against blackbox_exporter"
bench/tls_bench.sh "$build"
echo "== TLS libraries from Debian 12: the same bare client against each"
bench/tls_libraries.sh "$build"
echo "== scale: 10,000 targets every 30 s"
bench/scale_bench.sh "$build" 10000 30
echo "== scale: 50,000 targets every 60 s"
bench/scale_bench.sh "$build" 50000 60
