#!/usr/bin/env bash
# tests/cloud_download.sh - cloud_download (common/cloud.sh) against local
# HTTP servers: a verified download, a checksum mismatch (clear error, no
# file left), resuming a partial download (with a server that honours
# Range, and restarting with `python3 -m http.server`, which does not).
# timeout: 60
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${IVSHMEM_PYTHON:-/usr/bin/python3}
for tool in curl sha512sum "$PYTHON"; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done

tmp=$(mktemp -d)
server_pids=()
cleanup() {
	local p
	for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source-path=SCRIPTDIR/..
source common/cloud.sh

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }

# Served files: good/ with the right checksum, bad/ with a wrong one.
www=$tmp/www
mkdir -p "$www/good" "$www/bad"
head -c 3000000 /dev/urandom >"$www/good/image.qcow2"
cp "$www/good/image.qcow2" "$www/bad/image.qcow2"
good_sum=$(sha512sum <"$www/good/image.qcow2")
good_sum=${good_sum%% *}
printf '%s  other-file.img\n%s  image.qcow2\n' "$(printf 'a%.0s' {1..128})" "$good_sum" >"$www/good/SHA512SUMS"
printf '%s  image.qcow2\n' "$(printf '0%.0s' {1..128})" >"$www/bad/SHA512SUMS"
half=1500000

# start_server LOG ARGS... : starts a Python HTTP server serving $www on
# 127.0.0.1 at a free port chosen by the kernel; sets `port` once the
# server has announced it is listening.
start_server() {
	local log=$1 fd line
	shift
	exec {fd}< <(cd "$www" && exec "$PYTHON" -u "$@" 2>"$log")
	server_pids+=("$!")
	IFS= read -r -t 20 -u "$fd" line || { echo "server did not start: $(cat "$log")"; exit 1; }
	port=$(grep -oE '[0-9]+' <<<"${line##*port }" | head -n1)
	[ -n "$port" ] || { echo "no port in '$line'"; exit 1; }
}

# The Range-capable server: http.server's handler plus "Range: bytes=N-",
# logging each request with its Range header.
cat >"$tmp/range_server.py" <<'EOF'
import http.server, os, re, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if not m or not os.path.isfile(path):
            return super().send_head()
        start, size = int(m.group(1)), os.path.getsize(path)
        if start >= size:
            self.send_error(416)
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        return f
    def log_message(self, fmt, *args):
        sys.stderr.write("%s range=%s\n" % (fmt % args, self.headers.get("Range")))
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("Serving HTTP on 127.0.0.1 port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
EOF

# verified FILE : FILE exists and has the good checksum.
verified() { [ -f "$1" ] && [ "$(cloud__sha512 "$1")" = "$good_sum" ]; }

start_server "$tmp/plain.log" -m http.server --bind 127.0.0.1 0
plain=http://127.0.0.1:$port
start_server "$tmp/range.log" "$tmp/range_server.py"
ranged=http://127.0.0.1:$port
dl=$tmp/dl

# 1. A fresh download, verified.
rc=0
cloud_download "$plain/good/image.qcow2" "$dl/a.qcow2" "$plain/good/SHA512SUMS" 2>"$tmp/err" || rc=$?
if [ "$rc" = 0 ] && verified "$dl/a.qcow2" && [ ! -e "$dl/a.qcow2.part" ]; then
	ok "download verified against SHA512SUMS"
else
	not_ok "download (exit $rc): $(cat "$tmp/err")"
fi

# 2. Present and verified: no transfer.
before=$(grep -c 'GET /good/image.qcow2' "$tmp/plain.log" || true)
rc=0
cloud_download "$plain/good/image.qcow2" "$dl/a.qcow2" "$plain/good/SHA512SUMS" 2>"$tmp/err" || rc=$?
after=$(grep -c 'GET /good/image.qcow2' "$tmp/plain.log" || true)
if [ "$rc" = 0 ] && [ "$before" = "$after" ] && verified "$dl/a.qcow2"; then
	ok "a verified file is not downloaded again"
else
	not_ok "second call (exit $rc, GETs $before -> $after): $(cat "$tmp/err")"
fi

# 3. Checksum mismatch: non-zero, says so, leaves nothing.
rc=0
cloud_download "$plain/bad/image.qcow2" "$dl/b.qcow2" "$plain/bad/SHA512SUMS" 2>"$tmp/err" || rc=$?
if [ "$rc" != 0 ] && grep -qi checksum "$tmp/err" && [ ! -e "$dl/b.qcow2" ] && [ ! -e "$dl/b.qcow2.part" ]; then
	ok "checksum mismatch fails clearly and leaves no file ($(grep -i checksum "$tmp/err" | head -n1))"
else
	not_ok "mismatch (exit $rc, files: $(ls "$dl")): $(cat "$tmp/err")"
fi

# 4. Resume a partial download from where it stopped (server honours Range).
head -c "$half" "$www/good/image.qcow2" >"$dl/c.qcow2.part"
rc=0
cloud_download "$ranged/good/image.qcow2" "$dl/c.qcow2" "$ranged/good/SHA512SUMS" 2>"$tmp/err" || rc=$?
if [ "$rc" = 0 ] && verified "$dl/c.qcow2" && grep -q "range=bytes=$half-" "$tmp/range.log"; then
	ok "partial download resumed at byte $half and verified"
else
	not_ok "resume (exit $rc): $(cat "$tmp/err"); server: $(cat "$tmp/range.log")"
fi

# 5. A truncated final file counts as a partial download.
head -c "$half" "$www/good/image.qcow2" >"$dl/d.qcow2"
rc=0
cloud_download "$ranged/good/image.qcow2" "$dl/d.qcow2" "$ranged/good/SHA512SUMS" 2>"$tmp/err" || rc=$?
if [ "$rc" = 0 ] && verified "$dl/d.qcow2" && [ ! -e "$dl/d.qcow2.part" ]; then
	ok "truncated file completed by resuming and verified"
else
	not_ok "truncated file (exit $rc): $(cat "$tmp/err")"
fi

# 6. A server without Range support: start over, still verified.
head -c "$half" "$www/good/image.qcow2" >"$dl/e.qcow2.part"
rc=0
cloud_download "$plain/good/image.qcow2" "$dl/e.qcow2" "$plain/good/SHA512SUMS" 2>"$tmp/err" || rc=$?
if [ "$rc" = 0 ] && verified "$dl/e.qcow2" && grep -q 'starting over' "$tmp/err"; then
	ok "no Range support: restarted from scratch and verified"
else
	not_ok "restart without Range (exit $rc): $(cat "$tmp/err")"
fi

# 7. No entry for the file in the checksum list; unreachable list.
rc=0
cloud_download "$plain/good/image.qcow2" "$dl/f.img" "$plain/bad/NOSUCH" 2>"$tmp/err" || rc=$?
rc2=0
sed -i '/image.qcow2/d' "$www/good/SHA512SUMS"
cloud_download "$plain/good/image.qcow2" "$dl/g.qcow2" "$plain/good/SHA512SUMS" 2>"$tmp/err2" || rc2=$?
if [ "$rc" != 0 ] && grep -q 'checksum list' "$tmp/err" && [ "$rc2" != 0 ] && grep -q 'no SHA512 checksum' "$tmp/err2" &&
	[ ! -e "$dl/f.img" ] && [ ! -e "$dl/g.qcow2" ]; then
	ok "unreachable checksum list or missing entry: refused before downloading"
else
	not_ok "missing checksum (exit $rc, $rc2): $(cat "$tmp/err" "$tmp/err2")"
fi

echo "$((passed + failed)) tests, $passed passed, $failed failed"
[ "$failed" = 0 ]
