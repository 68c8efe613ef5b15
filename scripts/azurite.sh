#!/usr/bin/env bash
# Start/stop a local Azurite (blob service only) for tests and demos.
#
# Usage:
#   eval "$(scripts/azurite.sh start [DIR])"   install if needed (scripts/tools.sh azurite),
#                                              start azurite-blob on 127.0.0.1:<free port>
#                                              with --loose --skipApiVersionCheck, data in
#                                              DIR/data (DIR defaults to a new temp dir),
#                                              wait until it answers, print export lines:
#                                              AZURITE_BLOB_ENDPOINT, AZURITE_PORT,
#                                              AZURITE_ACCOUNT, AZURITE_KEY,
#                                              AZURITE_CONNECTION_STRING, AZURITE_PID,
#                                              AZURITE_DIR (also saved in DIR/env)
#   scripts/azurite.sh stop DIR                stop it (SIGTERM, SIGKILL after 10 s)
#   scripts/azurite.sh status DIR              exit 0 when it is running and answering
#   scripts/azurite.sh selftest                start, create a container over HTTP, stop
#
# Make: `make tools-azurite` installs only; `make azurite-start` / `make azurite-stop`
# use DIR=.run/azurite.
# From bash, `source scripts/lib.sh` and call start_azurite DIR / stop_azurite DIR instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
case $cmd in
  start)
    dir=${2:-$(make_tmpdir azurite)}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if [[ -f $dir/azurite.pid ]] && kill -0 "$(<"$dir/azurite.pid")" 2>/dev/null; then
      die "azurite already running for $dir (pid $(<"$dir/azurite.pid")); stop it first"
    fi
    start_azurite "$dir"
    cat "$dir/env"
    ;;
  stop)
    [[ -n ${2:-} ]] || die "usage: $0 stop DIR"
    stop_azurite "$2"
    ;;
  status)
    [[ -n ${2:-} && -f $2/azurite.pid && -f $2/port ]] || exit 1
    kill -0 "$(<"$2/azurite.pid")" 2>/dev/null || exit 1
    (exec 3<>"/dev/tcp/127.0.0.1/$(<"$2/port")") 2>/dev/null
    ;;
  selftest)
    dir=$(make_tmpdir azurite-selftest)
    trap 'stop_azurite "$dir"; rm -rf "$dir"' EXIT
    start_azurite "$dir"
    # Create a container, upload and read back a blob with Shared Key auth (stdlib only).
    python3 - "$AZURITE_BLOB_ENDPOINT" "$AZURITE_ACCOUNT" "$AZURITE_KEY" <<'EOF'
import base64, hashlib, hmac, sys, urllib.parse, urllib.request
from email.utils import formatdate

endpoint, account, key = sys.argv[1:]

def call(method, path, query="", body=b"", headers=None):
    url = f"{endpoint}/{path}" + (f"?{query}" if query else "")
    u = urllib.parse.urlsplit(url)
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06", **(headers or {})}
    if method == "PUT":  # urllib would add its own form Content-Type, which we must sign
        h.setdefault("Content-Type", "application/octet-stream")
    canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(h.items()) if k.startswith("x-ms-"))
    canon_res = f"/{account}{u.path}" + "".join(
        f"\n{k}:{v}" for k, v in sorted(urllib.parse.parse_qsl(u.query)))
    fields = [method, "", "", str(len(body)) if body else "", "", h.get("Content-Type", ""),
              "", "", "", "", "", ""]
    sts = "\n".join(fields) + "\n" + canon_headers + canon_res
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest())
    h["Authorization"] = f"SharedKey {account}:{sig.decode()}"
    req = urllib.request.Request(url, data=body if method == "PUT" else None, method=method, headers=h)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()

assert call("PUT", "selftest", "restype=container")[0] == 201
assert call("PUT", "selftest/hello.txt", body=b"hi", headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "text/plain"})[0] == 201
assert call("GET", "selftest/hello.txt") == (200, b"hi")
assert b"<Name>selftest</Name>" in call("GET", "", "comp=list")[1]
EOF
    log "azurite selftest: OK ($AZURITE_BLOB_ENDPOINT)"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
