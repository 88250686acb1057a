#!/bin/sh
# Benchmarks of proto-tests/suite/bench.rs (ignored tests), release build, one broker per
# benchmark (each runs in its own test process, so the 10k-partition topics of broker_load do not
# slow the others down).
#
#   proto-tests/bench/run.sh                 all eight, in order
#   proto-tests/bench/run.sh wakeup_latency  one (lag_vs_java, consume_vs_java, produce_vs_java,
#                                            wakeup_latency, broker_load, ce_economy, wake_cost,
#                                            group_scaleout)
#
# Output: the tables on stdout, also appended to $CARGO_TARGET_DIR/bench-results.txt.
# Knobs (environment): KO_BENCH_RECORDS (consume, produce; default 1000000), KO_BENCH_RUNS
# (consume, produce; 3),
# KO_BENCH_TRIALS (wake-up, 20), KO_BENCH_WINDOW_SECS (broker load, 60), KO_BENCH_TOPICS (1000),
# KO_BENCH_PARTITIONS (10), KO_OBSERVER_EXE (the observer binary; default: the musl build),
# KO_BENCH_ECONOMY_SECS (ce_economy, 180), KO_BASELINE_EXE (ce_economy: a second program, side by side),
# KO_BENCH_WAKE_SECS (wake_cost: trickle duration, 300), KO_BENCH_TRICKLE_SECS (wake_cost: seconds
# between records, 5), KO_BENCH_IDLE_TIMEOUT (wake_cost: the consumers' IDLE_TIMEOUT, 60),
# KO_BENCH_JOB_IDLE_TIMEOUT (wake_cost: the third job's kafkadata idle_timeout in seconds, 2),
# KO_BENCH_BURSTS (group_scaleout, 5), KO_BENCH_BURST_RECORDS (group_scaleout, records per partition, 10).
set -eu
cd "$(dirname "$0")/../.."
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
all="lag_vs_java consume_vs_java produce_vs_java wakeup_latency broker_load ce_economy wake_cost group_scaleout"
names="${*:-$all}"
for n in $names; do
    case " $all " in *" $n "*) ;; *) echo "unknown benchmark '$n' (one of: $all)" >&2; exit 2 ;; esac
done
cargo test --release --locked --test suite --no-run >&2
# The observer under test is the shipped program: the static musl binary when this machine can
# build it (musl target + musl-gcc), else the host build. KO_OBSERVER_EXE=PATH picks another.
if [ -z "${KO_OBSERVER_EXE:-}" ] && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl &&
    command -v x86_64-linux-musl-gcc >/dev/null 2>&1; then
    CC_x86_64_unknown_linux_musl=x86_64-linux-musl-gcc \
        cargo build --release --locked --target x86_64-unknown-linux-musl --bin kafka-observer >&2
    KO_OBSERVER_EXE="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/kafka-observer"
    export KO_OBSERVER_EXE
fi
out="$CARGO_TARGET_DIR/bench-results.txt"
for n in $names; do
    echo "== $n ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$out"
    cargo test --release --locked --test suite "bench::$n" -- --ignored --exact --nocapture --test-threads=1 2>&1 \
        | grep -v '^running [0-9]* test\|^test result' | tee -a "$out"
done
