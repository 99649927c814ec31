#!/usr/bin/env bash
# tests/cloud_download.sh - cloud_download (vm/cloud.sh) against local
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

# shellcheck source=vm/cloud.sh
source vm/cloud.sh
# shellcheck source=tests/lib.bash
source tests/lib.bash

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

# fetch SERVER DIR NAME : cloud_download of SERVER/DIR/image.qcow2 into
# $dl/NAME, checked against SERVER/DIR/SHA512SUMS; its exit status in rc,
# its messages in $tmp/err.
fetch() {
	rc=0
	cloud_download "$1/$2/image.qcow2" "$dl/$3" "$1/$2/SHA512SUMS" 2>"$tmp/err" || rc=$?
}

# expect_ok WHAT NAME [CMD...] : the last fetch succeeded, $dl/NAME is
# verified with no partial data left, and CMD (if given) succeeds.
expect_ok() {
	local what=$1 name=$2
	shift 2
	if [ "$rc" = 0 ] && verified "$dl/$name" && [ ! -e "$dl/$name.part" ] && { [ $# -eq 0 ] || "$@"; }; then
		ok "$what"
	else
		bad "$what (exit $rc): $(cat "$tmp/err")"
	fi
}

# expect_failed WHAT PATTERN NAME : the last fetch failed saying PATTERN
# and left neither $dl/NAME nor its partial data.
expect_failed() {
	local what=$1 pattern=$2 name=$3
	if [ "$rc" != 0 ] && grep -qi -- "$pattern" "$tmp/err" && [ ! -e "$dl/$name" ] && [ ! -e "$dl/$name.part" ]; then
		ok "$what ($(grep -i -- "$pattern" "$tmp/err" | head -n1))"
	else
		bad "$what (exit $rc, files: $(find "$dl" -mindepth 1 -printf '%f ' 2>/dev/null)): $(cat "$tmp/err")"
	fi
}

# gets : how many times the plain server was asked for the good image.
gets() { grep -c 'GET /good/image.qcow2' "$tmp/plain.log" || true; }

start_server "$tmp/plain.log" -m http.server --bind 127.0.0.1 0
plain=http://127.0.0.1:$port
start_server "$tmp/range.log" "$tmp/range_server.py"
ranged=http://127.0.0.1:$port
dl=$tmp/dl

# 1. A fresh download, verified.
fetch "$plain" good a.qcow2
expect_ok "download verified against SHA512SUMS" a.qcow2

# 2. Present and verified: no transfer.
before=$(gets)
fetch "$plain" good a.qcow2
expect_ok "a verified file is not downloaded again" a.qcow2 [ "$before" = "$(gets)" ]

# 3. Checksum mismatch: non-zero, says so, leaves nothing.
fetch "$plain" bad b.qcow2
expect_failed "checksum mismatch fails clearly and leaves no file" checksum b.qcow2

# 4. Resume a partial download from where it stopped (server honours Range).
head -c "$half" "$www/good/image.qcow2" >"$dl/c.qcow2.part"
fetch "$ranged" good c.qcow2
expect_ok "partial download resumed at byte $half and verified" c.qcow2 grep -q "range=bytes=$half-" "$tmp/range.log"

# 5. A truncated final file counts as a partial download.
head -c "$half" "$www/good/image.qcow2" >"$dl/d.qcow2"
fetch "$ranged" good d.qcow2
expect_ok "truncated file completed by resuming and verified" d.qcow2

# 6. A server without Range support: start over, still verified.
head -c "$half" "$www/good/image.qcow2" >"$dl/e.qcow2.part"
fetch "$plain" good e.qcow2
expect_ok "no Range support: restarted from scratch and verified" e.qcow2 grep -q 'starting over' "$tmp/err"

# 7. An unreachable checksum list, or no entry for the file in it: refused
#    before downloading.
rc=0
cloud_download "$plain/good/image.qcow2" "$dl/f.img" "$plain/bad/NOSUCH" 2>"$tmp/err" || rc=$?
expect_failed "unreachable checksum list: refused" 'checksum list' f.img
sed -i '/image.qcow2/d' "$www/good/SHA512SUMS"
fetch "$plain" good g.qcow2
expect_failed "no entry in the checksum list: refused" 'no SHA512 checksum' g.qcow2

echo "$checks tests, $((checks - failures)) passed, $failures failed"
exit $fail
