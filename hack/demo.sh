#!/usr/bin/env bash
# The end-to-end demo arrives with the end-to-end issue; until then this says so and fails,
# so nobody mistakes it for a demo that ran.
echo "The demo (npm run demo) is not built yet: it arrives with the end-to-end issue." >&2
echo "What works today: npm test, and hack/up.sh / hack/down.sh (see README.md)." >&2
exit 2
