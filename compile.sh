#!/usr/bin/env bash
# Builds the single-file `chatd` executable with `deno compile`.
#
# deno compile needs denort, the Deno runtime without the toolchain, for the target platform.
# It downloads it from Deno's release server unless DENORT_BIN names a local copy:
#   DENORT_BIN=/path/to/denort ./compile.sh
# OUTPUT sets the file written (default ./chatd). Extra arguments go to deno compile (for
# example --target x86_64-unknown-linux-gnu).
set -euo pipefail
cd "$(dirname "$0")"

# The permissions every role needs: SERVER_DENO_FLAGS of src/child_command.ts, the one list
# (tests/permissions_test.ts checks this copy). And the
# Web Worker module, which deno compile does not find by itself because it is loaded by URL,
# and the web page's files (src/web/), which src/_http.ts reads beside itself.
exec deno compile \
  --unstable-net \
  --allow-net --allow-read --allow-write --allow-run --allow-env \
  --include src/thread.ts \
  --include src/web \
  --output "${OUTPUT:-chatd}" \
  "$@" \
  main.ts
