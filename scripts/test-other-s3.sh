#!/usr/bin/env bash
# Run the S3-backed tests against a second S3 implementation, LocalStack, beside moto: what
# the index reads from ListObjectVersions must follow S3's documented behaviour, not one
# server's layout. scripts/test.sh calls this after the main suite.
#
# LocalStack runs from its own virtualenv (.venv-localstack; it needs Python >= 3.13, found
# as python3.13 on PATH or under pyenv) on an ephemeral loopback port, with S3 and SQS only.
# Without Python 3.13 the run is skipped with a message. Not run here: the EMR tests
# (LocalStack's community edition has no EMR) and the ListObjectsV2 comparison with the
# live store (LocalStack ends a paged listing after its last ASCII key when unicode keys
# follow; S3 lists them).
set -euo pipefail

cd "$(dirname "$0")/.."

python313=""
for candidate in "$(command -v python3.13 || true)" /root/.pyenv/versions/3.13*/bin/python3.13 \
  "${HOME:-/root}"/.pyenv/versions/3.13*/bin/python3.13; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null; then
    python313="$candidate"
    break
  fi
done
if [ -z "$python313" ]; then
  echo "test-other-s3: skipped: LocalStack needs Python 3.13 (none found)." >&2
  exit 0
fi

venv=.venv-localstack
if [ ! -x "$venv/bin/python" ]; then
  "$python313" -m venv "$venv"
fi
# Pinned: LocalStack 2026.3 with the versions of its dependencies it starts with
# (cbor2 6 moved a module it imports; pyOpenSSL 24.3 removed an API it calls).
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl<24.3' 'service_identity'

port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
data="$(mktemp -d)"
SERVICES=s3,sqs GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
  PERSISTENCE=0 DISABLE_EVENTS=1 FILESYSTEM_ROOT="$data" LOCALSTACK_VOLUME_DIR="$data" \
  "$venv/bin/python" -m localstack.runtime.main >"$data/localstack.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT

if ! .venv/bin/python - "$port" <<'EOF'
import json
import sys
import time
import urllib.request

url = f"http://127.0.0.1:{sys.argv[1]}/_localstack/health"
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            services = json.load(resp).get("services", {})
        if services.get("s3") in ("available", "running"):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit(1)
EOF
then
  echo "test-other-s3: LocalStack did not start; its log:" >&2
  tail -n 40 "$data/localstack.log" >&2
  exit 1
fi

INFINSTOR_TEST_S3_ENDPOINT="http://127.0.0.1:$port" .venv/bin/python -m pytest -q \
  tests/test_sync_s3.py tests/test_crash_safety.py tests/test_cli.py tests/test_events.py \
  tests/test_api.py tests/test_infin_boto3.py \
  --deselect tests/test_infin_boto3.py::test_list_objects_v2_as_of_now_answers_like_the_live_bucket
