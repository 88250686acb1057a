#!/usr/bin/env bash
# Deploys kafka-observer to IBM Cloud Code Engine, driven by the kafkadata mapping.
#
#   ./run.sh          deploy: a secret (IAM_API_KEY), a configmap (kafkadata), the observer job,
#                     one consumer job per kafkadata job, Event Streams bound to every job, and
#                     one run of the observer job
#   ./run.sh clean    delete exactly what deploy created (deleting a job deletes its job runs)
#   ./run.sh local    everything on this machine: a throw-away Kafka broker (the test suite's),
#                     the observer with local consumers, a few sample messages
#
# Before deploying: `ibmcloud login ...` and `ibmcloud ce project select --name PROJECT`.
#
# Environment (deploy and clean):
#   IAM_API_KEY          (deploy) API key the observer uses to start consumer job runs
#   ES_SERVICE_INSTANCE  (deploy) name of the Event Streams instance bound to every job
#   KAFKADATA            the mapping file (default: kafkadata next to this script)
#   NAME_PREFIX          prefix for the observer's job, secret and configmap (default none);
#                        consumer jobs keep their kafkadata names, which the observer starts
#   IMAGE                image for every job; unset: Code Engine builds Containerfile from this
#                        directory once, for the observer job, and the consumer jobs reuse it
#   REGISTRY_SECRET      registry secret to pull IMAGE (optional)
#   BUILD_SIZE, BUILD_TIMEOUT   for that build (default large, 1800 s: a release Rust build)
#   IDLE_TIMEOUT         seconds a consumer waits for records before it exits (default 60)
#   OBSERVER_CPU, OBSERVER_MEMORY, CONSUMER_CPU, CONSUMER_MEMORY   (default 0.25 and 0.5G)
#   KAFKA_OBSERVER_BIN   a kafka-observer binary to validate kafkadata with (default: the one
#                        on PATH, if any); without one the file is only read, not validated
#
# Exit codes: 0 done; 1 a command failed; 2 something is missing (the message says what).
set -euo pipefail

BASEDIR=$(cd "$(dirname "$0")" && pwd)

say() { echo "run.sh: $*"; }
usage_error() {
  echo "run.sh: error: $*" >&2
  exit 2
}
have() { command -v "$1" >/dev/null 2>&1; }

# The mapping: an absolute path when given, else `kafkadata` in this directory.
if [ -n "${KAFKADATA:-}" ]; then
  case $KAFKADATA in /*) ;; *) KAFKADATA=$PWD/$KAFKADATA ;; esac
else
  KAFKADATA=kafkadata
fi
cd "$BASEDIR"

NAME_PREFIX=${NAME_PREFIX:-}
OBSERVER_JOB=${NAME_PREFIX}kafka-observer
SECRET=${NAME_PREFIX}kafka-observer-secret
CONFIGMAP=${NAME_PREFIX}kafka-observer-kafkadata

# ---- kafkadata ----------------------------------------------------------------------------------

# Prints one line per consumer job, `NAME<TAB>GROUP<TAB>TOPIC1,TOPIC2`, in order of first
# appearance, from the block-style YAML of the sample:
#   TOPIC:
#     partitions: N
#     jobs:
#       - name: JOB
#         consumer_group: GROUP
# Comments, blank lines, quotes and either key order inside a job are fine. Flow style
# (`{...}`, `[...]`) is not read here: write the file in block style.
parse_kafkadata() {
  awk '
    function fail(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; failed = 1; exit 2 }
    function unquote(v) {
      sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
      if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
      return v
    }
    function flush() {
      if (!in_job) return
      if (name == "" || group == "") fail("a job under topic \"" topic "\" needs both name and consumer_group")
      if (!(name in job_group)) { order[++n] = name; job_group[name] = group; job_topics[name] = topic }
      else {
        if (job_group[name] != group) fail("job \"" name "\" has two consumer groups (\"" job_group[name] "\" and \"" group "\"): a job has one group")
        if (index("," job_topics[name] ",", "," topic ",") == 0) job_topics[name] = job_topics[name] "," topic
      }
      in_job = 0; name = ""; group = ""
    }
    function key_value(text,   k, v) {
      if (match(text, /^[A-Za-z_][A-Za-z0-9_-]*[ \t]*:([ \t]|$)/) == 0) fail("expected \"key: value\", got \"" text "\"")
      k = text; sub(/[ \t]*:.*$/, "", k)
      v = substr(text, RLENGTH + 1)
      v = unquote(v)
      if (k == "name") name = v
      else if (k == "consumer_group") group = v
      else if (k == "jobs" || k == "partitions") {
        flush()
        if (k == "jobs" && v != "") fail("write the jobs of topic \"" topic "\" as a block list (\"- name: ...\" lines), not \"" v "\"")
      }
    }
    {
      line = $0
      sub(/\r$/, "", line)
      sub(/(^|[ \t])#.*$/, "", line)
      if (line ~ /^[ \t]*$/ || line ~ /^---[ \t]*$/ || line ~ /^\.\.\.[ \t]*$/) next
      if (line ~ /^\t/) fail("indent with spaces, not tabs")
      if (line !~ /^ /) {
        flush()
        if (match(line, /:[ \t]*$/) == 0) fail("expected \"TOPIC:\" (block style), got \"" line "\"")
        topic = unquote(substr(line, 1, RSTART - 1))
        if (topic == "") fail("empty topic name")
        topics++
        next
      }
      if (topic == "") fail("indented line before the first topic")
      sub(/^[ \t]+/, "", line)
      if (line ~ /^-([ \t]|$)/) {
        flush()
        in_job = 1
        line = substr(line, 2); sub(/^[ \t]+/, "", line)
        if (line == "") next
      }
      key_value(line)
    }
    END {
      if (failed) exit 2
      flush()
      if (n == 0) { printf "%s: no jobs found\n", FILENAME > "/dev/stderr"; exit 2 }
      for (i = 1; i <= n; i++) printf "%s\t%s\t%s\n", order[i], job_group[order[i]], job_topics[order[i]]
    }
  ' "$KAFKADATA"
}

# The same list from the binary's `check` (which validates the whole file): run.sh must read the
# file exactly as the observer will.
jobs_from_binary() {
  local out
  out=$("$1" check --kafkadata "$KAFKADATA" 2>&1) || {
    echo "$out" >&2
    return 2
  }
  printf '%s\n' "$out" | sed -n 's/^  job \(.*\) (group \(.*\)) ← \(.*\)$/\1\t\2\t\3/p' | sed 's/, /,/g'
}

load_jobs() {
  [ -r "$KAFKADATA" ] || usage_error "cannot read the kafkadata file '$KAFKADATA' (set KAFKADATA=FILE)"
  JOBS=$(parse_kafkadata) || usage_error "cannot read '$KAFKADATA' (message above)"
  local bin=${KAFKA_OBSERVER_BIN:-}
  if [ -z "$bin" ] && have kafka-observer; then
    bin=kafka-observer
  fi
  if [ -n "$bin" ]; then
    local checked
    checked=$(jobs_from_binary "$bin") || usage_error "'$KAFKADATA' is not a valid mapping (message above)"
    [ "$checked" = "$JOBS" ] || usage_error "run.sh reads '$KAFKADATA' differently from '$bin check': write it in the block style of the sample"
  fi
}

# ---- Code Engine ----------------------------------------------------------------------------------

# `ibmcloud ce ARGS...`; on failure, names the command (never a secret: none is in the arguments).
ce() {
  if ! ibmcloud ce "$@"; then
    echo "run.sh: error: 'ibmcloud ce $1 $2' failed; resources of an earlier deploy? './run.sh clean' removes them" >&2
    exit 1
  fi
}

preflight() {
  have ibmcloud || usage_error "the IBM Cloud CLI 'ibmcloud' is not installed: see https://cloud.ibm.com/docs/cli, then 'ibmcloud plugin install code-engine'"
  if [ "$1" = deploy ]; then
    [ -n "${IAM_API_KEY:-}" ] || usage_error "IAM_API_KEY is not set: export IAM_API_KEY=<an IBM Cloud API key> (the observer starts consumer job runs with it)"
    [ -n "${ES_SERVICE_INSTANCE:-}" ] || usage_error "ES_SERVICE_INSTANCE is not set: export ES_SERVICE_INSTANCE=<the name of your Event Streams instance>"
  fi
  local current
  if ! current=$(ibmcloud ce project current 2>&1); then
    usage_error "no Code Engine project is selected: run 'ibmcloud login' and 'ibmcloud ce project select --name PROJECT'"
  fi
  PROJECT=$(printf '%s\n' "$current" | sed -n 's/^Name:[[:space:]]*//p' | head -n 1)
  [ -n "$PROJECT" ] || usage_error "no Code Engine project is selected: run 'ibmcloud ce project select --name PROJECT'"
}

deploy() {
  preflight deploy
  load_jobs
  local count
  count=$(printf '%s\n' "$JOBS" | wc -l)
  say "project $PROJECT: observer job $OBSERVER_JOB and $count consumer job(s) from $KAFKADATA"

  local env_file
  env_file=$(mktemp)
  # shellcheck disable=SC2064 # expand now: the file name is local
  trap "rm -f '$env_file'" EXIT
  chmod 600 "$env_file"
  # The key goes through a file, not the command line (visible to every user in `ps`).
  printf 'IAM_API_KEY=%s\n' "$IAM_API_KEY" >"$env_file"
  say "secret $SECRET (IAM_API_KEY)"
  ce secret create --name "$SECRET" --from-env-file "$env_file"
  rm -f "$env_file"
  say "configmap $CONFIGMAP (kafkadata)"
  ce configmap create --name "$CONFIGMAP" --from-file "kafkadata=$KAFKADATA"

  # The observer job comes first: without IMAGE, Code Engine builds the image for it, and the
  # consumer jobs reuse that image and its registry secret.
  local image_args=()
  if [ -n "${IMAGE:-}" ]; then
    image_args=(--image "$IMAGE")
    [ -z "${REGISTRY_SECRET:-}" ] || image_args+=(--registry-secret "$REGISTRY_SECRET")
  else
    image_args=(--build-source . --build-dockerfile Containerfile
      --build-size "${BUILD_SIZE:-large}" --build-timeout "${BUILD_TIMEOUT:-1800}")
    say "no IMAGE given: Code Engine builds Containerfile from $BASEDIR (several minutes)"
  fi
  say "observer job $OBSERVER_JOB"
  ce job create --name "$OBSERVER_JOB" --mode daemon "${image_args[@]}" \
    --cpu "${OBSERVER_CPU:-0.25}" --memory "${OBSERVER_MEMORY:-0.5G}" \
    --env-from-secret "$SECRET" --env-from-configmap "$CONFIGMAP" --argument observe

  if [ -z "${IMAGE:-}" ]; then
    local built pull_secret
    built=$(ibmcloud ce job get --name "$OBSERVER_JOB" --output 'jsonpath={.buildRun.output_image}') || built=""
    pull_secret=$(ibmcloud ce job get --name "$OBSERVER_JOB" --output 'jsonpath={.buildRun.output_secret}') || pull_secret=""
    [ -n "$built" ] || {
      echo "run.sh: error: cannot read the image built for $OBSERVER_JOB; see 'ibmcloud ce job get --name $OBSERVER_JOB', then run './run.sh clean' and './run.sh' with IMAGE (and REGISTRY_SECRET) set to its Image (and Registry Secret)" >&2
      exit 1
    }
    image_args=(--image "$built")
    [ -z "$pull_secret" ] || image_args+=(--registry-secret "$pull_secret")
    say "consumer jobs use the built image $built"
  fi

  local job group topics
  while IFS=$'\t' read -r job group topics; do
    say "consumer job $job (group $group, topics $topics)"
    ce job create --name "$job" --mode daemon "${image_args[@]}" \
      --cpu "${CONSUMER_CPU:-0.25}" --memory "${CONSUMER_MEMORY:-0.5G}" \
      --env "CONSUMER_GROUP=$group" --env "KAFKA_TOPIC=$topics" \
      --env "IDLE_TIMEOUT=${IDLE_TIMEOUT:-60}" --env CE_REMOVE_COMPLETED_JOBS=IMMEDIATELY \
      --argument consume
  done <<<"$JOBS"

  say "binding Event Streams instance $ES_SERVICE_INSTANCE to every job"
  ce job bind --name "$OBSERVER_JOB" --service-instance "$ES_SERVICE_INSTANCE"
  while IFS=$'\t' read -r job _; do
    ce job bind --name "$job" --service-instance "$ES_SERVICE_INSTANCE"
  done <<<"$JOBS"

  say "starting the observer"
  ce jobrun submit --job "$OBSERVER_JOB"
  say "done: 'ibmcloud ce jobrun list' shows the observer's run and, as messages arrive, the consumers'"
}

clean() {
  preflight clean
  load_jobs
  say "project $PROJECT: deleting $OBSERVER_JOB, the consumer jobs of $KAFKADATA (with their job runs), $CONFIGMAP, $SECRET"
  ibmcloud ce job delete --name "$OBSERVER_JOB" --force --ignore-not-found
  local job
  while IFS=$'\t' read -r job _; do
    ibmcloud ce job delete --name "$job" --force --ignore-not-found
  done <<<"$JOBS"
  ibmcloud ce configmap delete --name "$CONFIGMAP" --force --ignore-not-found
  ibmcloud ce secret delete --name "$SECRET" --force --ignore-not-found
  say "clean: done"
}

# ---- local ----------------------------------------------------------------------------------------

# Observer and consumers as local processes against the test suite's broker (Java, Maven and
# openssl needed, as for `cargo test`). Consumers are `kafka-observer consume` children of the
# observer; they exit after IDLE_TIMEOUT seconds without records (10 here, to see it happen).
local_run() {
  have cargo || usage_error "cargo is not installed (https://rustup.rs)"
  load_jobs
  local target_dir=${CARGO_TARGET_DIR:-$BASEDIR/target}
  say "building kafka-observer and the test broker"
  cargo build --locked --bin kafka-observer --example test-broker
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/ko-local.XXXXXX")
  local broker_pid="" observer_pid=""
  # shellcheck disable=SC2317 # invoked by the trap
  stop_all() {
    [ -z "$observer_pid" ] || kill "$observer_pid" 2>/dev/null || true
    [ -z "$observer_pid" ] || wait "$observer_pid" 2>/dev/null || true
    if [ -n "$broker_pid" ]; then
      exec 3>&- # closing its stdin stops the broker
      wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
  }
  trap stop_all EXIT
  trap 'exit 130' INT TERM

  # Every kafkadata topic, with the partition count the file gives (default 1).
  local topic_args=() topic partitions
  while read -r topic partitions; do
    topic_args+=("$topic:$partitions")
  done < <(awk '/^[^ \t#-][^:]*:[ \t]*$/ { t = $0; sub(/:[ \t]*$/, "", t); gsub(/["\047]/, "", t); p[t] = 1; o[++n] = t }
               /^[ \t]+partitions:/ { v = $2; gsub(/[^0-9]/, "", v); if (v != "") p[t] = v }
               END { for (i = 1; i <= n; i++) print o[i], p[o[i]] }' "$KAFKADATA")

  mkfifo "$work/broker.in"
  "$target_dir/debug/examples/test-broker" "${topic_args[@]}" <"$work/broker.in" >"$work/broker.out" &
  broker_pid=$!
  exec 3>"$work/broker.in"
  say "starting Kafka (the first run downloads its jars with Maven)"
  until grep -qx 'KAFKA_READY=1' "$work/broker.out"; do
    kill -0 "$broker_pid" 2>/dev/null || usage_error "the test broker did not start (messages above)"
    sleep 1
  done
  local bootstrap
  bootstrap=$(sed -n 's/^KAFKA_PLAINTEXT=//p' "$work/broker.out")
  say "Kafka at $bootstrap with topics ${topic_args[*]}"

  IDLE_TIMEOUT=${IDLE_TIMEOUT:-10} SESSION_TIMEOUT=${SESSION_TIMEOUT:-10} \
    "$target_dir/debug/kafka-observer" observe --launcher local --kafkadata "$KAFKADATA" \
    --bootstrap "$bootstrap" --ticker-ms 500 --metrics-addr 127.0.0.1:0 &
  observer_pid=$!

  # Five records to partition 0 of every topic: each consumer job of the topic should wake.
  for arg in "${topic_args[@]}"; do
    echo "produce ${arg%%:*}:0:5" >&3
  done
  say "produced 5 records to partition 0 of each topic; the observer's status follows (Ctrl-C stops everything)"
  while kill -0 "$observer_pid" 2>/dev/null; do
    sleep 5
    "$target_dir/debug/kafka-observer" lag --bootstrap "$bootstrap" --kafkadata "$KAFKADATA" || true
  done
}

case "${1:-deploy}" in
deploy) deploy ;;
clean) clean ;;
local) local_run ;;
-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" ;;
*) usage_error "unknown command '$1': use './run.sh' (deploy), './run.sh clean' or './run.sh local'" ;;
esac
