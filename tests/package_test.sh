#!/usr/bin/env bash
# The install rules and the .deb as an operator meets them: build the package, unpack it into a
# scratch root, check the files, the Depends and the conffiles, run the installed binary on the
# installed example config, and check the installed unit with systemd-analyze.
# Usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# cmake --install into a staging root.
DESTDIR="$work/install" cmake --install "$build" > "$work/install.log"
for f in usr/bin/portsentinel usr/lib/systemd/system/portsentinel.service \
         usr/lib/sysusers.d/portsentinel.conf usr/lib/tmpfiles.d/portsentinel.conf \
         etc/portsentinel/portsentinel.yaml usr/share/doc/portsentinel/README.md \
         usr/share/portsentinel/portsentinel.rules.yml usr/share/portsentinel/portsentinel.json; do
  [ -e "$work/install/$f" ] || fail "cmake --install did not install /$f"
done
# A second install keeps an edited config.
echo "# edited by the operator" >> "$work/install/etc/portsentinel/portsentinel.yaml"
DESTDIR="$work/install" cmake --install "$build" > /dev/null
grep -q "edited by the operator" "$work/install/etc/portsentinel/portsentinel.yaml" \
  || fail "cmake --install overwrote an edited /etc/portsentinel/portsentinel.yaml"

# The .deb.
(cd "$build" && cpack -G DEB -B "$work/pkg" > "$work/cpack.log") || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/pkg/portsentinel_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
libs="libssl3 libprometheus-cpp-core zlib1g libyaml-cpp0.7 libspdlog1 libsystemd0 libcivetweb libc6 systemd"
# A build that links jemalloc (the default, see daemon/CMakeLists.txt) must depend on it.
allocator=$(sed -n 's/^PORTSENTINEL_ALLOCATOR:STRING=//p' "$build/CMakeCache.txt")
sanitize=$(sed -n 's/^PORTSENTINEL_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
if [ "$allocator" = jemalloc ] && [ -z "$sanitize" ]; then libs="$libs libjemalloc2"; fi
for lib in $libs; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib"
done
dpkg-deb -e "$deb" "$work/control"
grep -qx "/etc/portsentinel/portsentinel.yaml" "$work/control/conffiles" \
  || fail "the example config is not a conffile"
dpkg-deb -x "$deb" "$work/root"
for f in usr/bin/portsentinel usr/lib/systemd/system/portsentinel.service \
         usr/lib/sysusers.d/portsentinel.conf usr/lib/tmpfiles.d/portsentinel.conf \
         etc/portsentinel/portsentinel.yaml; do
  [ -e "$work/root/$f" ] || fail "the package does not ship /$f"
done
"$work/root/usr/bin/portsentinel" version
"$work/root/usr/bin/portsentinel" check-config "$work/root/etc/portsentinel/portsentinel.yaml" \
  || fail "the installed binary rejects the installed example config"

# The installed unit: verify (with ExecStart pointing into the scratch root) and its score.
if command -v systemd-analyze > /dev/null; then
  unit="$work/verify/portsentinel.service"
  mkdir -p "$work/verify"
  sed "s|/usr/bin/portsentinel|$work/root/usr/bin/portsentinel|" \
    "$work/root/usr/lib/systemd/system/portsentinel.service" > "$unit"
  systemd-analyze verify "$unit" || fail "systemd-analyze verify"
  score=$(systemd-analyze security --offline=true "$unit" 2>&1 | sed -n 's/.*Overall exposure level for portsentinel.service: \([0-9.]*\).*/\1/p')
  echo "systemd-analyze security: $score"
  [ -n "$score" ] || fail "no security score"
  awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "security score $score is above 2.5"
else
  echo "systemd-analyze not installed (make deps installs systemd): unit checks skipped"
fi
echo "package test: 1 passed, 0 failed"
