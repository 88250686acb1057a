#!/usr/bin/env bash
# Deploys kafka-observer to IBM Cloud Code Engine, driven by the kafkadata mapping.
#
#   ./run.sh          deploy: a secret (IAM_API_KEY), a configmap (kafkadata), the observer job,
#                     one consumer job per kafkadata job, Event Streams bound to every job, and
#                     one run of the observer job
#   ./run.sh clean    delete exactly what deploy created (deleting a job deletes its job runs);
#                     every deletion is tried, what could not be deleted is listed (exit 1)
#   ./run.sh local    everything on this machine: a throw-away Kafka broker (the test suite's),
#                     the observer with local consumers, a few sample messages; Ctrl-C stops it
#   ./run.sh help     this text
#
# Before deploying: `ibmcloud login ...`, `ibmcloud plugin install code-engine` and
# `ibmcloud ce project select --name PROJECT`.
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
#   IDLE_TIMEOUT         seconds a consumer waits for records before it exits (default 60;
#                        10 for local)
#   OBSERVER_CPU, OBSERVER_MEMORY, CONSUMER_CPU, CONSUMER_MEMORY   (default 0.25 and 0.5G)
#   MAX_ATTEMPTS, MAX_RECORD_AGE, DEAD_LETTER_TOPIC, ON_EXHAUSTED   the consumers' failure
#                        policy (README: Failure policy); passed to every consumer job (and,
#                        for local, to every consumer) when set; unset: block and retry
#   KAFKA_OBSERVER_BIN   a kafka-observer binary to validate kafkadata with (default: the one
#                        on PATH, if any); without one the file is only read, not validated.
#                        local: the binary to run instead of building one
#
# Environment (local):
#   KAFKA_BOOTSTRAP      use this broker (HOST:PORT, plaintext, topics already created) instead
#                        of starting one; no sample records are sent then
#   METRICS_PORT         the observer's /metrics port (default: the first free from 9464)
#
# Exit codes: 0 done; 1 a command failed (or clean left something behind); 2 something is
# missing (the message says what).
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

# A hint for a failed `ibmcloud` call from what the CLI printed (its own message is shown too).
hint_for() {
  case $(printf '%s' "$1" | tr '[:upper:]' '[:lower:]') in
  *"not a registered command"*)
    echo "the Code Engine plugin is not installed: ibmcloud plugin install code-engine" ;;
  *"not logged in"* | *"log in"* | *"token is expired"* | *"session"*"expired"*)
    echo "not logged in to IBM Cloud: ibmcloud login --apikey KEY -r REGION -g RESOURCE_GROUP (or --sso)" ;;
  *project*"not"*"target"* | *"no project"* | *"project"*"select"* | *"project"*"not found"*)
    echo "no Code Engine project is selected: ibmcloud ce project select --name PROJECT ('ibmcloud ce project list' shows them)" ;;
  *"already exists"*)
    echo "resources of an earlier deploy? './run.sh clean' removes them" ;;
  *) echo "see the message of 'ibmcloud' above" ;;
  esac
}

# Prints a failed call's output (indented) and a hint, on stderr.
report_failure() {
  local what=$1 output=$2
  echo "run.sh: error: 'ibmcloud $what' failed:" >&2
  printf '%s\n' "$output" | sed 's/^/    /' >&2
  echo "run.sh: hint: $(hint_for "$output")" >&2
}

# `ibmcloud ce ARGS...`, its output shown as it comes; on failure the CLI's message, a hint,
# exit 1. (No secret is ever in the arguments.)
ce() {
  local out status
  out=$(mktemp)
  set +e
  ibmcloud ce "$@" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    report_failure "ce $1 $2" "$(cat "$out")"
    rm -f "$out"
    exit 1
  fi
  rm -f "$out"
}

preflight() {
  have ibmcloud || usage_error "the IBM Cloud CLI 'ibmcloud' is not installed: see https://cloud.ibm.com/docs/cli, then 'ibmcloud plugin install code-engine'"
  if [ "$1" = deploy ]; then
    [ -n "${IAM_API_KEY:-}" ] || usage_error "IAM_API_KEY is not set: export IAM_API_KEY=<an IBM Cloud API key> (the observer starts consumer job runs with it)"
    [ -n "${ES_SERVICE_INSTANCE:-}" ] || usage_error "ES_SERVICE_INSTANCE is not set: export ES_SERVICE_INSTANCE=<the name of your Event Streams instance>"
  fi
  local current
  if ! current=$(ibmcloud ce project current 2>&1); then
    report_failure "ce project current" "$current"
    exit 2
  fi
  PROJECT=$(printf '%s\n' "$current" | sed -n 's/^Name:[[:space:]]*//p' | head -n 1)
  if [ -z "$PROJECT" ]; then
    report_failure "ce project current" "$current (no project name in the answer)"
    exit 2
  fi
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

  # The failure policy, when the deployer set one, goes to every consumer job as it is.
  local policy_env=() var
  for var in MAX_ATTEMPTS MAX_RECORD_AGE DEAD_LETTER_TOPIC ON_EXHAUSTED; do
    [ -z "${!var:-}" ] || policy_env+=(--env "$var=${!var}")
  done

  local job group topics
  while IFS=$'\t' read -r job group topics; do
    say "consumer job $job (group $group, topics $topics)"
    ce job create --name "$job" --mode daemon "${image_args[@]}" \
      --cpu "${CONSUMER_CPU:-0.25}" --memory "${CONSUMER_MEMORY:-0.5G}" \
      --env "CONSUMER_GROUP=$group" --env "KAFKA_TOPIC=$topics" \
      --env "IDLE_TIMEOUT=${IDLE_TIMEOUT:-60}" --env CE_REMOVE_COMPLETED_JOBS=IMMEDIATELY \
      ${policy_env[@]+"${policy_env[@]}"} --argument consume
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

# Deletes one resource (kind, name); records it in LEFT when the deletion failed.
delete_one() {
  local kind=$1 name=$2 out
  if out=$(ibmcloud ce "$kind" delete --name "$name" --force --ignore-not-found 2>&1); then
    [ -z "$out" ] || printf '%s\n' "$out"
    say "deleted $kind $name (or it was not there)"
  else
    report_failure "ce $kind delete --name $name" "$out"
    LEFT+=("$kind $name")
  fi
}

clean() {
  preflight clean
  load_jobs
  say "project $PROJECT: deleting $OBSERVER_JOB, the consumer jobs of $KAFKADATA (with their job runs), $CONFIGMAP, $SECRET"
  LEFT=()
  # Every deletion is tried, whatever failed before it.
  delete_one job "$OBSERVER_JOB"
  local job
  while IFS=$'\t' read -r job _; do
    delete_one job "$job"
  done <<<"$JOBS"
  delete_one configmap "$CONFIGMAP"
  delete_one secret "$SECRET"
  if [ ${#LEFT[@]} -gt 0 ]; then
    echo "run.sh: clean: ${#LEFT[@]} left behind (messages above):" >&2
    printf '    %s\n' "${LEFT[@]}" >&2
    echo "run.sh: run './run.sh clean' again once the cause is fixed, or delete them with 'ibmcloud ce <kind> delete --name <name>'" >&2
    exit 1
  fi
  say "clean: done, nothing left"
}

# ---- local ----------------------------------------------------------------------------------------

# THE ONE PLACE that says how a person sends more records to the demo (printed in the banner).
more_records_command() {
  echo "$BIN produce --bootstrap $BOOTSTRAP --topic $1"
}

# The first free loopback port from $1 (bash's /dev/tcp: a refused connection means free).
free_port() {
  local port=$1
  while (exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  echo "$port"
}

# GET http://127.0.0.1:$1/metrics with bash alone (no curl needed); empty when it cannot.
scrape() {
  local reply
  reply=$( (exec 9<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&9 && cat <&9) 2>/dev/null) || true
  printf '%s\n' "$reply" | tr -d '\r'
}

# From a /metrics text: one line per job of the mapping with its job runs and instances.
runs_per_job() {
  local metrics=$1 job
  while IFS=$'\t' read -r job _; do
    printf '%s\n' "$metrics" | awk -v job="$job" '
      index($0, "kafka_observer_jobruns_created_total{job=\"" job "\"}") == 1 { runs = $2 }
      index($0, "kafka_observer_instances_started_total{job=\"" job "\"}") == 1 { instances = $2 }
      END { printf "  job %s: %d job run(s), %d consumer instance(s) started\n", job, runs, instances }'
  done <<<"$JOBS"
}

# Observer and consumers as local processes against the test suite's broker (Java, Maven and
# openssl needed, as for `cargo test`), or against KAFKA_BOOTSTRAP. Consumers are
# `kafka-observer consume` children of the observer; they exit after IDLE_TIMEOUT seconds without
# records (10 here, to see it happen). The lag table is printed whenever it changes.
local_run() {
  load_jobs
  local target_dir=${CARGO_TARGET_DIR:-$BASEDIR/target}
  BIN=${KAFKA_OBSERVER_BIN:-}
  local broker_bin=$target_dir/debug/examples/test-broker
  if [ -z "$BIN" ]; then
    have cargo || usage_error "cargo is not installed (https://rustup.rs)"
    say "building kafka-observer and the test broker (debug build). The first build compiles 134"
    say "crates: roughly 5 minutes on 2 cores (longer on a busy machine); later runs take seconds"
    cargo build --locked --bin kafka-observer --example test-broker
    BIN=$target_dir/debug/kafka-observer
  fi
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/ko-local.XXXXXX")
  local broker_pid="" observer_pid="" last_table="" last_time="" last_metrics=""
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
  # Ctrl-C reaches every process of the demo at once; the summary uses what was last seen.
  # shellcheck disable=SC2317 # invoked by the trap
  summary() {
    trap - INT TERM
    echo
    say "summary of this demo:"
    if [ -n "$last_metrics" ]; then
      runs_per_job "$last_metrics"
    else
      echo "  (the observer's metrics were never read)"
    fi
    if [ -n "$last_table" ]; then
      echo "  last lag table ($last_time):"
      printf '%s\n' "$last_table" | sed 's/^/    /'
    fi
    exit 130
  }
  trap stop_all EXIT
  trap summary INT TERM

  BOOTSTRAP=${KAFKA_BOOTSTRAP:-}
  local topic_args=() topic partitions
  if [ -z "$BOOTSTRAP" ]; then
    # Every kafkadata topic, with the partition count the file gives (default 1).
    while read -r topic partitions; do
      topic_args+=("$topic:$partitions")
    done < <(awk '/^[^ \t#-][^:]*:[ \t]*$/ { t = $0; sub(/:[ \t]*$/, "", t); gsub(/["\047]/, "", t); p[t] = 1; o[++n] = t }
                 /^[ \t]+partitions:/ { v = $2; gsub(/[^0-9]/, "", v); if (v != "") p[t] = v }
                 END { for (i = 1; i <= n; i++) print o[i], p[o[i]] }' "$KAFKADATA")
    [ -x "$broker_bin" ] || usage_error "no test broker at $broker_bin: run without KAFKA_OBSERVER_BIN (builds it), or set KAFKA_BOOTSTRAP"
    mkfifo "$work/broker.in"
    "$broker_bin" "${topic_args[@]}" <"$work/broker.in" >"$work/broker.out" &
    broker_pid=$!
    exec 3>"$work/broker.in"
    say "starting Kafka (the first run downloads its jars with Maven, about 100 MB)"
    until grep -qx 'KAFKA_READY=1' "$work/broker.out"; do
      kill -0 "$broker_pid" 2>/dev/null || usage_error "the test broker did not start (messages above)"
      sleep 1
    done
    BOOTSTRAP=$(sed -n 's/^KAFKA_PLAINTEXT=//p' "$work/broker.out")
    say "Kafka at $BOOTSTRAP with topics ${topic_args[*]}"
  fi

  local port
  port=${METRICS_PORT:-$(free_port 9464)}

  local first_topic kafkadata_path=$KAFKADATA
  case $kafkadata_path in /*) ;; *) kafkadata_path=$BASEDIR/$kafkadata_path ;; esac
  first_topic=$(printf '%s\n' "$JOBS" | head -n 1 | cut -f 3 | cut -d , -f 1)
  echo
  echo "================================================================================"
  echo " kafka-observer demo: the observer wakes a consumer job when its group lags"
  echo "   Kafka:    $BOOTSTRAP"
  echo "   metrics:  http://127.0.0.1:$port/metrics   (health: http://127.0.0.1:$port/healthz)"
  echo "   more records (one per line, Ctrl-D to end), in another terminal:"
  echo "     $(more_records_command "$first_topic")"
  echo "   lag:      $BIN lag --bootstrap $BOOTSTRAP --kafkadata $kafkadata_path"
  echo "   Consumer lines start with consumer{job=... group=... run=... index=...}; the lag table"
  echo "   below is printed whenever it changes. Ctrl-C stops everything and prints a summary."
  echo "================================================================================"
  echo
  IDLE_TIMEOUT=${IDLE_TIMEOUT:-10} SESSION_TIMEOUT=${SESSION_TIMEOUT:-10} \
    "$BIN" observe --launcher local --kafkadata "$KAFKADATA" \
    --bootstrap "$BOOTSTRAP" --ticker-ms 500 --metrics-addr "127.0.0.1:$port" &
  observer_pid=$!

  if [ -n "$broker_pid" ]; then
    # Five records to partition 0 of every topic: each consumer job of the topic should wake.
    for arg in "${topic_args[@]}"; do
      echo "produce ${arg%%:*}:0:5" >&3
    done
    say "produced 5 records to partition 0 of each topic"
  fi
  local table
  while kill -0 "$observer_pid" 2>/dev/null; do
    table=$("$BIN" lag --bootstrap "$BOOTSTRAP" --kafkadata "$KAFKADATA" 2>&1) || true
    if [ "$table" != "$last_table" ]; then
      last_table=$table
      last_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)
      printf -- '--- lag at %s\n%s\n' "$last_time" "$table"
    fi
    local metrics
    metrics=$(scrape "$port")
    [ -z "$metrics" ] || last_metrics=$metrics
    sleep 1
  done
  say "the observer exited (messages above)"
  exit 1
}

case "${1:-deploy}" in
deploy) deploy ;;
clean) clean ;;
local) local_run ;;
-h | --help | help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" ;;
*) usage_error "unknown command '$1': use './run.sh' (deploy), './run.sh clean', './run.sh local' or './run.sh help'" ;;
esac
