#!/usr/bin/env bash
# The test command (`npm test`): static checks and unit tests; then, against the local cluster
# and S3 server (and its node: hack/node.sh), integration tests; then, with the built module
# deployed as pods on that node (hack/module.sh: its image, scoped RBAC, webhook Service) and the
# test OBC provisioner, module tests, end-to-end tests and the demo; then the audit of the module's requests against its rules. It starts whatever is not running and
# stops exactly that. Ends with one line "N passed, N failed": each check (lint, build, demo,
# clean module stop) counts as one test; uvu suites count their own tests, and a suite that
# crashes without a summary counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

# Everything this run prints is kept, to be searched for secrets at the end with every log.
mkdir -p "$LOG_DIR"
RUN_OUTPUT=$LOG_DIR/test-run.out
: >"$RUN_OUTPUT"
exec 3>&1 4>&2
exec > >(tee -a "$RUN_OUTPUT")
tee_out=$!
exec 2> >(tee -a "$RUN_OUTPUT" >&2)
tee_err=$!

passed=0
failed=0
report=()
strip_ansi() { sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

# check NAME CMD...: one check, one test.
check() {
  local name=$1; shift
  echo "== $name" >&2
  if "$@"; then
    passed=$((passed + 1)); report+=("ok      $name")
  else
    failed=$((failed + 1)); report+=("FAILED  $name")
  fi
}

# suite NAME DIR [PATTERN]: one uvu run over DIR (its files matching PATTERN), counted from
# uvu's own summary.
suite() {
  local name=$1 dir=$2 pattern=${3:-} out rc total ok skipped bad
  echo "== $name ($dir${pattern:+ $pattern})" >&2
  out=$(mktemp)
  timeout --kill-after=30 "${SUITE_TIMEOUT:-1800}" npx --no-install uvu -r tsx "$dir" ${pattern:+"$pattern"} 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  total=$(strip_ansi <"$out" | sed -n 's/^ *Total: *\([0-9]*\).*/\1/p' | tail -n1)
  ok=$(strip_ansi <"$out" | sed -n 's/^ *Passed: *\([0-9]*\).*/\1/p' | tail -n1)
  skipped=$(strip_ansi <"$out" | sed -n 's/^ *Skipped: *\([0-9]*\).*/\1/p' | tail -n1)
  rm -f "$out"
  if [ -z "$total" ]; then
    total=1; ok=0; skipped=0
    echo "[test] $name ended without a summary (exit $rc): counted as one failure" >&2
  fi
  bad=$((total - ok - ${skipped:-0}))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi # e.g. a hook threw after the tests
  passed=$((passed + ok)); failed=$((failed + bad))
  report+=("$([ "$bad" -eq 0 ] && echo "ok    " || echo "FAILED") $name: $ok passed, $bad failed")
  [ "$bad" -eq 0 ]
}

show_server_logs() { # [extra log names]
  local log name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd s3 s3-tls "$@"; do
    log=$LOG_DIR/$name.log
    [ -f "$log" ] || continue
    echo "---- last lines of $log" >&2
    tail -n 20 "$log" >&2
  done
}

# Install what the tests need: npm packages when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci" >&2
  npm ci --no-audit --no-fund >&2 || { echo "0 passed, 1 failed"; exit 1; }
fi

# The servers build (minutes, when nothing is cached) while the static checks and unit tests run;
# hack/up.sh finds them built, or builds what failed here and says why.
hack/build-tools.sh >"$LOG_DIR/build-tools.out" 2>&1 &
build_tools=$!

export LOG_LEVEL=${LOG_LEVEL:-silent}
# The SDK's notice that its 2027 releases need Node 22; ours is pinned.
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
check "eslint" npx --no-install eslint .
check "prettier" npx --no-install prettier --check --log-level warn .
check "typecheck" npx --no-install tsc --noEmit -p tsconfig.json
check "pepr build" bash hack/build-module.sh
suite "unit tests" test/unit
# The agent as shipped: tarballs, single executables, .deb and .rpm, SBOM, checksums; and what
# runs the arm64 executable here (qemu-user-static with arm64's C libraries).
check "npm run agent:pack" npm run -s agent:pack
need_apt qemu-aarch64-static qemu-user-static
[ -f /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ] || need_apt_packages libc6-arm64-cross libstdc++6-arm64-cross
agent_exe=$PWD/dist/flotta-agent-$(node -p 'require("./package.json").version')-linux-x64

# Services: start what is not running, stop exactly that on exit.
started=()
for name in etcd kube-apiserver kube-controller-manager kube-scheduler node s3 s3-tls; do running "$name" || started+=("$name"); done
module_started=false
provisioner_started=false
cleanup() {
  if $module_started; then check "module stops and leaves no webhook behind" hack/module.sh stop; fi
  ! $provisioner_started || hack/obc-provisioner.sh stop
  module_started=false provisioner_started=false
  [ ${#started[@]} -eq 0 ] || hack/down.sh "${started[@]}"
  started=()
}
trap cleanup EXIT
wait "$build_tools" || echo "[test] building the servers failed (see $LOG_DIR/build-tools.out); hack/up.sh tries again" >&2
echo "== starting local cluster and S3 server (hack/up.sh)" >&2
if env_lines=$(hack/up.sh); then
  eval "$env_lines"
  # The module as deployed, at its most verbose (no level may log Secret data), with claim
  # buckets reached where the test OBC provisioner's in-cluster host cannot be.
  export EDGE_MODULE_LOG_LEVEL=${EDGE_MODULE_LOG_LEVEL:-debug}
  export EDGE_UPLOAD_OBC_ENDPOINT=${EDGE_UPLOAD_OBC_ENDPOINT:-$EDGE_S3_ENDPOINT}
  audit_from=$(stat -c %s "$LOG_DIR/audit.log" 2>/dev/null || echo 0)
  suite "integration tests" test/integration || show_server_logs
  # A representative part again, with every agent the x86-64 single executable.
  EDGE_AGENT_EXE=$agent_exe suite "integration tests, agent as the single executable" \
    test/integration '^agent-(sync|events|kube|crash|confinement)\.test\.ts$' || show_server_logs
  # The module (as deployed) and the test OBC provisioner, for the suites that need them.
  running module || module_started=true
  running obc-provisioner || provisioner_started=true
  # The provisioner first: it serves the claim API the module's cache lists at start.
  if hack/obc-provisioner.sh start && hack/module.sh start; then
    suite "module tests" test/module || show_server_logs module obc-provisioner
    suite "end-to-end tests" test/e2e || show_server_logs module obc-provisioner
    check "demo (npm run demo -- --exit)" bash -c 'hack/demo.sh --exit >"$0/demo.log" 2>&1 || { tail -n 40 "$0/demo.log" >&2; exit 1; }' "$LOG_DIR"
  else
    failed=$((failed + 1)); report+=("FAILED  starting the module (module tests not run)")
    show_server_logs module obc-provisioner
  fi
else
  failed=$((failed + 1)); report+=("FAILED  hack/up.sh (integration tests not run)")
  show_server_logs
fi

cleanup
if [ -n "${audit_from:-}" ]; then
  check "the module's requests all allowed, its rules all used (audit log)" \
    npx --no-install tsx hack/rbac-audit.ts "$LOG_DIR/audit.log" "$audit_from"
fi
check "no secret in any log or test output" hack/scan-secrets.sh "$LOG_DIR"
# Back to the terminal, once the copies are written: the summary line must come last.
exec 1>&3 2>&4 3>&- 4>&-
wait "$tee_out" "$tee_err" 2>/dev/null
echo >&2
printf '%s\n' "${report[@]}" >&2
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
