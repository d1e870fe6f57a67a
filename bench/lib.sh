# Shared by the benchmarks: ports, HTTP without curl, CPU of a process, and an nginx serving
# TLS with an ECDSA P-256 chain made on the spot (no session cache, no tickets).
# PORTSENTINEL_PRELOAD=/path/to/libX.so runs the daemon with that malloc preloaded, to compare
# allocators side by side (configure with -DPORTSENTINEL_ALLOCATOR=system to compare glibc).
# Sourcing it makes a scratch directory `work` (removed on exit unless KEEP is set), moves
# there, and kills every pid the script adds to `pids` on exit.

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
cd "$work"

# portsentinel_config N INTERVAL TIMEOUT WEB_PORT: a config of N TLS targets on distinct
# 127.0.0.0/8 addresses, all served by the nginx below.
portsentinel_config() {
  echo "web: {listen_address: \"127.0.0.1:$4\"}"
  echo "log: {level: warn}"
  echo "defaults: {interval: $2, timeout: $3}"
  echo "targets:"
  for i in $(seq 0 $(($1 - 1))); do
    echo "  - {name: t$i, address: \"127.$((i / 62500)).$((i / 250 % 250)).$((i % 250 + 1)):$tls_port\", expect: tls, server_name: localhost, tls: {ca_file: $work/ca.pem}}"
  done
}

free_port() {
  while true; do
    # Below the ephemeral range (32768+), where outgoing connections take their ports.
    local p=$((20000 + RANDOM % 12000))
    if [ -z "$(ss -Htan "sport = :$p")" ]; then echo "$p"; return; fi
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Which malloc the daemon runs with: linked (PORTSENTINEL_ALLOCATOR) or PORTSENTINEL_PRELOAD.
allocator() {
  if [ -n "${PORTSENTINEL_PRELOAD:-}" ]; then basename "$PORTSENTINEL_PRELOAD"; return; fi
  # Not `grep -q`: it exits at the first match, ldd then dies of SIGPIPE, and pipefail turns
  # the match into "glibc".
  if ldd "$1" | grep jemalloc > /dev/null; then echo jemalloc; else echo glibc; fi
}
http_get() {  # http_get PORT PATH: the body, with bash's /dev/tcp (no curl needed)
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened"; exit 1; }
hz=$(getconf CLK_TCK)

# An ECDSA P-256 chain: a CA and a leaf it signed (the leaf is served, the CA is trusted).
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=bench CA" -days 7 -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out leaf.key
openssl req -new -key leaf.key -subj "/CN=localhost" -out leaf.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 -extfile ext \
  -out leaf.pem 2>/dev/null

tls_port=$(free_port)
mkdir -p nginx
cat > nginx/nginx.conf <<CONF
daemon off;
worker_processes 1;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  ssl_session_cache off;
  ssl_session_tickets off;
  # Debian 12's nginx 1.22 offers TLS 1.3 only when told (its default became 1.3 in 1.23.4);
  # Debian's own nginx.conf and production configs enable it, so the benchmark does too.
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen $tls_port ssl reuseport backlog=4096;
    ssl_certificate $work/leaf.pem;
    ssl_certificate_key $work/leaf.key;
    return 200 "ok\n";
  }
}
CONF
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pids+=($!)
wait_port "$tls_port"

