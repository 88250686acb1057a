#!/usr/bin/env bash
# A stand-in for the IBM Cloud CLI, installed as `ibmcloud` first on PATH by the run.sh tests
# (proto-tests/suite/runsh.rs). It appends each call's arguments, one line per call, to
# $IBMCLOUD_STUB_LOG and answers what run.sh reads:
#   ce project current                     a fake project (exit 1 if IBMCLOUD_STUB_NO_PROJECT=1)
#   ce job get ... jsonpath={.buildRun.output_image|output_secret}   a fake built image / secret
# The path after --from-env-file is logged as <env-file>, followed by the file's lines, each as
# "  | LINE" (the file is temporary). A call whose logged line starts with one of the
# `|`-separated prefixes in $IBMCLOUD_STUB_FAIL fails (exit 1), printing $IBMCLOUD_STUB_FAIL_OUTPUT
# (default "FAILED: stub failure for '<call>'") on stderr, as the real CLI prints its errors.
# Everything else succeeds silently.
set -euo pipefail
log=${IBMCLOUD_STUB_LOG:?IBMCLOUD_STUB_LOG is not set}

args=()
env_file=""
while [ $# -gt 0 ]; do
  if [ "$1" = --from-env-file ] && [ $# -ge 2 ]; then
    args+=("$1" "<env-file>")
    env_file=$2
    shift 2
  else
    args+=("$1")
    shift
  fi
done
line="${args[*]}"
echo "$line" >>"$log"
if [ -n "$env_file" ]; then
  sed 's/^/  | /' "$env_file" >>"$log"
fi

if [ -n "${IBMCLOUD_STUB_FAIL:-}" ]; then
  IFS='|' read -r -a prefixes <<<"$IBMCLOUD_STUB_FAIL"
  for prefix in "${prefixes[@]}"; do
    if [[ $line == "$prefix"* ]]; then
      default="FAILED: stub failure for '$line'"
      printf '%s\n' "${IBMCLOUD_STUB_FAIL_OUTPUT:-$default}" >&2
      exit 1
    fi
  done
fi

case $line in
"ce project current"*)
  if [ "${IBMCLOUD_STUB_NO_PROJECT:-}" = 1 ]; then
    echo "FAILED" >&2
    echo "No project is currently targeted. Run 'ibmcloud ce project select'." >&2
    exit 1
  fi
  cat <<'OUT'
Getting the current project context...
OK

Name:       stub-project
ID:         01234567-abcd-abcd-abcd-abcdabcd1111
Region:     us-south
OUT
  ;;
"ce job get "*"jsonpath={.buildRun.output_image}"*)
  echo "private.us.icr.io/ce--stub/job-built"
  ;;
"ce job get "*"jsonpath={.buildRun.output_secret}"*)
  echo "ce-auto-icr-private-us-south"
  ;;
esac
