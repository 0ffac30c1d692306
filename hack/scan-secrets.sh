#!/usr/bin/env bash
# hack/scan-secrets.sh FILE|DIR...: searches logs and test output for the test run's secrets:
# the S3 secret key (as it is and base64-encoded, as a Secret's data holds it), the static tokens
# (admin, the local node's kubelet),
# and any JSON Web Token (ServiceAccount and device tokens). Prints each file with its count of
# hits, never the values; exits 1 on any hit. It first proves itself on a planted secret, so a
# scan that cannot find anything fails instead of passing.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
patterns=$(mktemp)
trap 'rm -f "$patterns" "$planted"' EXIT
{
  printf '%s\n' "$S3_SECRET_KEY" "$(printf '%s' "$S3_SECRET_KEY" | base64)"
  [ -f "$RUN_DIR/pki/tokens.csv" ] && cut -d, -f1 "$RUN_DIR/pki/tokens.csv" # admin and node
} >"$patterns"
jwt='eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+'
scan() { # prints "count file" for every file with hits
  grep -rIcF -f "$patterns" "$@" 2>/dev/null | grep -v ':0$'
  grep -rIcE "$jwt" "$@" 2>/dev/null | grep -v ':0$'
}
planted=$(mktemp)
printf 'x %s y\n' "$S3_SECRET_KEY" >"$planted"
echo 'token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl' >>"$planted"
[ "$(scan "$planted" | wc -l)" -eq 2 ] || { echo "[scan] the scan did not find planted secrets" >&2; exit 1; }
hits=$(scan "$@")
files=$(find "$@" -type f 2>/dev/null | wc -l)
if [ -n "$hits" ]; then
  echo "[scan] secrets found (file:count):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "[scan] $files files searched: no secrets" >&2
