#!/usr/bin/env bash
# TEST ONLY: starts or stops hack/obc-provisioner.ts in the background (log: $LOG_DIR/obc-provisioner.log).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$HACK_DIR/.."
case "${1:-}" in
  start)
    running obc-provisioner && exit 0
    eval "$("$HACK_DIR/up.sh")"
    say "starting the test OBC provisioner; log: $LOG_DIR/obc-provisioner.log"
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true start_bg obc-provisioner npx --no-install tsx hack/obc-provisioner.ts
    wait_for obc-provisioner 60 grep -q "obc-provisioner: ready" "$LOG_DIR/obc-provisioner.log" ;;
  stop)
    running obc-provisioner || exit 0
    kill -TERM -- "-$(cat "$RUN_DIR/obc-provisioner.pid")" 2>/dev/null || true
    rm -f "$RUN_DIR/obc-provisioner.pid" ;;
  *) die "usage: $0 start|stop" ;;
esac
