#!/usr/bin/env bash
# `make fuzz`: libFuzzer (clang, with ASan and UBSan) on what portsentinel reads from others:
# the bytes a peer sends (HTTP heads, first bytes, handshake endings) and config files. Each
# target is built from the pure sources it needs (no Asio event loop), seeded with a small
# corpus, and run for FUZZ_SECONDS (default 60). Exits non-zero on the first crash, leaving
# the input that caused it in the printed folder. Not part of `make test` (it runs for time).
# Usage: tests/fuzz/run.sh [WORK_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
mkdir -p "$work"
cxx=${FUZZ_CXX:-clang++}
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root" -Wall -Wextra)

echo "building the fuzz targets with $($cxx --version | head -1)"
"$cxx" "${flags[@]}" -o "$work/peer_bytes_fuzz" "$root/tests/fuzz/peer_bytes_fuzz.cpp" \
  "$root/probes/classify.cpp" "$root/probes/http_response.cpp" "$root/probes/reason.cpp" \
  "$root/config/address.cpp" -lssl -lcrypto
"$cxx" "${flags[@]}" -o "$work/config_fuzz" "$root/tests/fuzz/config_fuzz.cpp" \
  "$root/config/config.cpp" "$root/config/duration.cpp" "$root/config/address.cpp" -lyaml-cpp

# Seeds: what servers really send (the first byte picks how the handshake ended) and real
# config files.
mkdir -p "$work/corpus/peer_bytes" "$work/corpus/config"
seed() { printf "$2" > "$work/corpus/peer_bytes/$1"; }
seed nginx400 '\000HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\n<html></html>'
seed redirect '\001HTTP/1.1 301 Moved Permanently\r\nLocation: https://shop.example.com/\r\n\r\n'
seed ssh '\002SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'
seed alert '\003\025\003\003\000\002\002\050'
seed hello '\004\026\003\003\000\112\002\000\000\106\003\003'
seed smtp '\000220 mail.example.com ESMTP Postfix\r\n'
cp "$root/systemd/portsentinel.yaml" "$work/corpus/config/example.yaml"
sed -n '/^```yaml$/,/^```$/p' "$root/README.md" | grep -v '^```' > "$work/corpus/config/readme.yaml"

status=0
for target in peer_bytes config; do
  echo "== $target: $seconds s"
  mkdir -p "$work/artifacts/$target"
  if ! "$work/${target}_fuzz" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/$target/" \
      "$work/corpus/$target" > "$work/$target.log" 2>&1; then
    echo "CRASH in $target: see $work/$target.log and $work/artifacts/$target/"
    grep -E "ERROR|SUMMARY|runtime error" "$work/$target.log" | head -5
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^Done [0-9]+ runs" \
    "$work/$target.log" || true
  echo "corpus: $(ls "$work/corpus/$target" | wc -l) inputs"
done
exit $status
