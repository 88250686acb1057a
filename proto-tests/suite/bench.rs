//! Benchmarks against the real broker: `kafka-observer` next to Kafka's own Java tools.
//! All `#[ignore]` (not part of the timed suite); run them in release, one at a time:
//! `proto-tests/bench/run.sh [NAME]` or
//! `cargo test --release --test suite bench -- --ignored --nocapture --test-threads=1`.
//! Each prints a table; results and method are in `proto-tests/bench/README.md`.
//!
//! Measurements on a shared 2-core machine are noisy: every number is a median of several runs,
//! the spread (min–max) is printed next to it, and so is the load average before and after.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_ce::{FakeCloud, Route};
use crate::harness::{self, Broker};
use crate::support::observer::sample_mapping;
use crate::support::observer::{metric_value, ObserverProc};

const EXE: &str = env!("CARGO_BIN_EXE_kafka-observer");
const GROUP_COMMAND: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

// ---- small helpers ----------------------------------------------------------------------------

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// (median, min, max) of a sample; sorted copy.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

/// Nearest-rank percentile (p in 0..=100).
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// The observer's long-poll setting as this run's environment sets it (`ObserverProc` passes
/// `OBSERVER_LONG_POLL` through; the default is on).
fn long_poll_mode() -> String {
    match std::env::var("OBSERVER_LONG_POLL") {
        Ok(v) => format!("OBSERVER_LONG_POLL={v}"),
        Err(_) => "long poll on (default)".to_string(),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bench_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(harness::unique(prefix));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A cheap jitter in [0, max) from the clock, so trials do not phase-lock to the ticker.
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let x = nanos
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 11;
    Duration::from_nanos(x % (max.as_nanos().max(1) as u64))
}

/// Peak RSS in KB written by `/usr/bin/time -f %M -o FILE`.
fn read_rss_kb(file: &Path) -> f64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| l.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// The Java flags of Kafka's own `kafka-consumer-perf-test.sh` / `kafka-run-class.sh` defaults
/// (heap 512 MB, G1), so the Java side runs as users run it.
const STOCK_JVM: &[&str] = &[
    "-Xmx512M",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];

/// The harness's own tool flags (proto-tests/harness/broker.rs `TOOL_JVM`), for RSS of the same
/// JVM `b.java` runs.
const HARNESS_JVM: &[&str] = &[
    "-Xms32m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
];

fn java_cmd(b: &Broker, jvm: &[&str], extra_cp: Option<&Path>, class: &str) -> Command {
    let mut cp = b.libs_dir().join("*").into_os_string();
    if let Some(dir) = extra_cp {
        cp.push(":");
        cp.push(dir);
    }
    let mut cmd = Command::new("java");
    cmd.args(jvm)
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            b.work_dir().join("tools-log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(cp)
        .arg(class);
    cmd
}

/// `/usr/bin/time -f %M -o RSS_FILE` around a command.
fn with_rss(cmd: &Command, rss: &Path) -> Command {
    let mut t = Command::new("/usr/bin/time");
    t.args(["-f", "%M", "-o"]).arg(rss).arg(cmd.get_program());
    t.args(cmd.get_args());
    t
}

// ---- BenchTool: one long-lived JVM (proto-tests/bench/BenchTool.java) ------------------------

struct BenchTool {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl BenchTool {
    fn classes(b: &Broker) -> &'static Path {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        DIR.get_or_init(|| {
            let src =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("proto-tests/bench/BenchTool.java");
            let dir = std::env::temp_dir().join(format!("ko-bench-java-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = Command::new("javac")
                .arg("-cp")
                .arg(b.libs_dir().join("*"))
                .arg("-d")
                .arg(&dir)
                .arg(&src)
                .output()
                .expect("javac");
            assert!(
                out.status.success(),
                "javac BenchTool: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
    }

    fn start(b: &Broker) -> BenchTool {
        let dir = Self::classes(b);
        let err = std::fs::File::create(dir.join(format!("stderr-{}.log", harness::unique("bt"))))
            .unwrap();
        let mut child = java_cmd(b, HARNESS_JVM, Some(dir), "BenchTool")
            .arg(b.plaintext())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start BenchTool");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut me = BenchTool { child, stdin, out };
        let mut line = String::new();
        me.out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "BenchTool did not start");
        me
    }

    /// One command; returns what follows "ok ", panics on "err".
    fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.out.read_line(&mut answer).unwrap();
        match answer.trim().strip_prefix("ok ") {
            Some(rest) => rest.to_string(),
            None => panic!("BenchTool {line}: {answer}"),
        }
    }
}

impl Drop for BenchTool {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates `topic` with `partitions` through the long-lived admin client and waits for metadata.
fn create_topic_fast(b: &Broker, bt: &mut BenchTool, prefix: &str, partitions: i32) -> String {
    bt.cmd(&format!("create-topics {prefix} 1 {partitions}"));
    let topic = format!("{prefix}-0");
    b.wait_for_partitions(&topic, partitions);
    topic
}

fn lag_json(bootstrap: &str, group: &str) -> Option<Value> {
    let out = Command::new(EXE)
        .args(["lag", "--bootstrap", bootstrap, "--group", group, "--json"])
        .env_remove("MESSAGEHUB_KAFKA_BROKERS_SASL")
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

// ---- 1. lag vs kafka-consumer-groups -----------------------------------------------------------

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh lag_vs_java"]
fn lag_vs_java() {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    let mut bt = BenchTool::start(b);
    let runs = 5;
    let load0 = loadavg();
    let mut table = Vec::new();
    for partitions in [12, 1000] {
        let topic = create_topic_fast(b, &mut bt, &harness::unique("lagbench"), partitions);
        bt.cmd(&format!("fill {topic} 10"));
        let group = harness::unique("lagbench-g");
        // committed = 5 - (partition % 3): lags 5, 6, 7 across partitions
        bt.cmd(&format!("commit-frac {group} {topic} 1 2"));

        let ours = || {
            let t = Instant::now();
            let out = Command::new(EXE)
                .args(["lag", "--bootstrap", &bootstrap, "--group", &group])
                .output()
                .unwrap();
            let d = t.elapsed();
            assert!(out.status.success(), "{out:?}");
            d
        };
        let java_args = [
            "--bootstrap-server",
            bootstrap.as_str(),
            "--describe",
            "--group",
            group.as_str(),
        ];
        let java = || {
            let t = Instant::now();
            let out = b.java(GROUP_COMMAND, &java_args);
            let d = t.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            d
        };
        // one warm-up each (page cache, JIT-free JVM class data), then alternate
        ours();
        java();
        let (mut o, mut j) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            o.push(secs(ours()));
            j.push(secs(java()));
        }

        // Peak RSS, one extra run each (the same JVM flags b.java uses).
        let d = bench_dir("lagbench-rss");
        let mut ours_cmd = Command::new(EXE);
        ours_cmd.args(["lag", "--bootstrap", &bootstrap, "--group", &group]);
        let o_rss = d.join("ours.rss");
        with_rss(&ours_cmd, &o_rss).output().unwrap();
        let mut java_c = java_cmd(b, HARNESS_JVM, None, GROUP_COMMAND);
        java_c.args(java_args);
        let j_rss = d.join("java.rss");
        with_rss(&java_c, &j_rss).output().unwrap();

        // Same numbers? Every row of both tools.
        let ours_json = lag_json(&bootstrap, &group).expect("lag --json");
        let java_rows = b.describe_group(&group);
        let ours_rows: Vec<(String, i64, i64, i64, i64)> = ours_json["groups"][0]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["topic"].as_str().unwrap().to_string(),
                    p["partition"].as_i64().unwrap(),
                    p["committed"].as_i64().unwrap_or(-1),
                    p["high_watermark"].as_i64().unwrap_or(-1),
                    p["lag"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let mut same = 0;
        let mut shown = Vec::new();
        for r in &java_rows {
            let mine = ours_rows
                .iter()
                .find(|o| o.0 == r.topic && o.1 == r.partition as i64);
            let theirs = (
                r.current_offset.unwrap_or(-1),
                r.log_end_offset.unwrap_or(-1),
                r.lag.unwrap_or(-1),
            );
            if let Some(m) = mine {
                if (m.2, m.3, m.4) == theirs {
                    same += 1;
                }
                if shown.len() < 3 || r.partition as usize == java_rows.len() - 1 {
                    shown.push(format!(
                        "    p{:<4} ours committed/hw/lag {}/{}/{}   java current/log-end/lag {}/{}/{}",
                        r.partition, m.2, m.3, m.4, theirs.0, theirs.1, theirs.2
                    ));
                }
            }
        }
        assert_eq!(java_rows.len(), partitions as usize, "java rows");
        assert_eq!(ours_rows.len(), partitions as usize, "our rows");
        assert_eq!(
            same,
            partitions as usize,
            "rows that differ:\n{}",
            shown.join("\n")
        );
        table.push((
            partitions,
            o,
            j,
            read_rss_kb(&o_rss),
            read_rss_kb(&j_rss),
            same,
            shown,
        ));
    }
    let load1 = loadavg();

    println!("\n### lag_vs_java: one group, `lag --group G` vs `ConsumerGroupCommand --describe --group G`");
    println!("wall time per call, median of {runs} (min–max), after one warm-up each; load avg {load0} → {load1}\n");
    println!("| partitions | kafka-observer lag | kafka-consumer-groups (JVM) | ratio java/ours | peak RSS ours | peak RSS java | rows equal |");
    println!("|---|---|---|---|---|---|---|");
    for (p, o, j, orss, jrss, same, _) in &table {
        let (om, omin, omax) = spread(o);
        let (jm, jmin, jmax) = spread(j);
        println!(
            "| {p} | {:.0} ms ({:.0}–{:.0}) | {:.0} ms ({:.0}–{:.0}) | {:.0}× | {:.1} MB | {:.1} MB | {same}/{p} |",
            om * 1e3,
            omin * 1e3,
            omax * 1e3,
            jm * 1e3,
            jmin * 1e3,
            jmax * 1e3,
            jm / om,
            orss / 1024.0,
            jrss / 1024.0
        );
    }
    for (p, _, _, _, _, _, shown) in &table {
        println!("\nsample rows, {p} partitions:");
        for s in shown {
            println!("{s}");
        }
    }
    println!(
        "raw seconds: {:?}",
        table.iter().map(|t| (t.0, &t.1, &t.2)).collect::<Vec<_>>()
    );
}

// ---- 2. consume throughput -------------------------------------------------------------------

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh consume_vs_java"]
fn consume_vs_java() {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    let records: u64 = std::env::var("KO_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("KO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mb = records as f64 * 1024.0 / 1e6;
    let mut bt = BenchTool::start(b);
    let topic = create_topic_fast(b, &mut bt, &harness::unique("consbench"), 6);
    drop(bt);

    let t = Instant::now();
    let n = records.to_string();
    let props = format!("bootstrap.servers={bootstrap}");
    #[rustfmt::skip]
    let args = [
        "--topic", &topic, "--num-records", &n, "--record-size", "1024", "--throughput", "-1",
        "--producer-props", &props, "acks=1", "linger.ms=10", "batch.size=262144",
    ];
    let out = b.java_with_timeout(
        "org.apache.kafka.tools.ProducerPerformance",
        &args,
        Duration::from_secs(900),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let produce_s = secs(t.elapsed());
    println!("produced {records} × 1 KB in {produce_s:.1} s");
    let d = bench_dir("consbench");
    let load0 = loadavg();
    let idle = 2.0;

    struct Run {
        exit_s: f64,
        lag0_s: Option<f64>,
        rss_kb: f64,
        tool_mbs: Option<f64>,
    }
    let mut ours_runs: Vec<Run> = Vec::new();
    let mut java_runs: Vec<Run> = Vec::new();
    for i in 0..runs {
        let mut order = [true, false];
        if i % 2 == 1 {
            order.reverse();
        }
        for is_ours in order {
            let group = harness::unique(if is_ours { "cons-ours" } else { "cons-java" });
            let rss = d.join(format!("{group}.rss"));
            if is_ours {
                let mut c = Command::new(EXE);
                #[rustfmt::skip]
                c.args([
                    "consume", "--bootstrap", &bootstrap, "--topic", &topic, "--group", &group,
                    "--discard", "--idle-timeout", "2",
                ]);
                let log = std::fs::File::create(d.join(format!("{group}.log"))).unwrap();
                let mut cmd = with_rss(&c, &rss);
                cmd.env_remove("MESSAGEHUB_KAFKA_BROKERS_SASL")
                    .env("LOG_LEVEL", "info")
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log);
                // A poller sees the moment every partition is committed at its end (lag 0).
                let done = Arc::new(AtomicBool::new(false));
                let lag0: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
                let t0 = Instant::now();
                let mut child = cmd.spawn().unwrap();
                let poller = {
                    let (done, lag0, bs, g) =
                        (done.clone(), lag0.clone(), bootstrap.clone(), group.clone());
                    std::thread::spawn(move || {
                        while !done.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(250));
                            let Some(v) = lag_json(&bs, &g) else { continue };
                            let g0 = &v["groups"][0];
                            let parts = g0["partitions"].as_array().map(|a| a.len()).unwrap_or(0);
                            let all_committed = g0["partitions"]
                                .as_array()
                                .is_some_and(|a| a.iter().all(|p| p["committed"].is_i64()));
                            if parts == 6 && all_committed && g0["total_lag"].as_i64() == Some(0) {
                                *lag0.lock().unwrap() = Some(Instant::now());
                                return;
                            }
                        }
                    })
                };
                let status = child.wait().unwrap();
                let exit_s = secs(t0.elapsed());
                done.store(true, Ordering::Relaxed);
                poller.join().unwrap();
                assert!(status.success(), "consume failed, see {}", d.display());
                let lag0_s = lag0.lock().unwrap().map(|t| secs(t.duration_since(t0)));
                ours_runs.push(Run {
                    exit_s: exit_s - idle,
                    lag0_s,
                    rss_kb: read_rss_kb(&rss),
                    tool_mbs: None,
                });
            } else {
                let mut c = java_cmd(
                    b,
                    STOCK_JVM,
                    None,
                    "org.apache.kafka.tools.ConsumerPerformance",
                );
                #[rustfmt::skip]
                c.args([
                    "--bootstrap-server", &bootstrap, "--topic", &topic, "--num-records", &n,
                    "--group", &group,
                ]);
                let t0 = Instant::now();
                let out = with_rss(&c, &rss).output().unwrap();
                let exit_s = secs(t0.elapsed());
                let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                assert!(
                    out.status.success(),
                    "{stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::write(d.join(format!("{group}.out")), &stdout).unwrap();
                java_runs.push(Run {
                    exit_s,
                    lag0_s: None,
                    rss_kb: read_rss_kb(&rss),
                    tool_mbs: perf_mb_sec(&stdout),
                });
            }
        }
    }
    let load1 = loadavg();
    let med = |v: Vec<f64>| spread(&v);
    let (oe, oemin, oemax) = med(ours_runs.iter().map(|r| r.exit_s).collect());
    let lag0: Vec<f64> = ours_runs.iter().filter_map(|r| r.lag0_s).collect();
    let (je, jemin, jemax) = med(java_runs.iter().map(|r| r.exit_s).collect());
    let (orss, orss_min, orss_max) = med(ours_runs.iter().map(|r| r.rss_kb / 1024.0).collect());
    let (jrss, jrss_min, jrss_max) = med(java_runs.iter().map(|r| r.rss_kb / 1024.0).collect());
    let tool: Vec<f64> = java_runs.iter().filter_map(|r| r.tool_mbs).collect();

    println!("\n### consume_vs_java: {records} records × 1 KB ({mb:.0} MB), 6 partitions, fresh group per run");
    println!("median of {runs} (min–max); runs alternate which tool goes first; load avg {load0} → {load1}\n");
    println!("| measure | kafka-observer consume --discard | ConsumerPerformance (JVM, -Xmx512M G1) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| process wall time (ours: exit − 2 s idle timeout; java: start → exit) | {oe:.2} s ({oemin:.2}–{oemax:.2}) | {je:.2} s ({jemin:.2}–{jemax:.2}) | {:.2}× |",
        je / oe
    );
    println!(
        "| MB/s over that wall time | {:.0} | {:.0} | {:.2}× |",
        mb / oe,
        mb / je,
        (mb / oe) / (mb / je)
    );
    if !lag0.is_empty() {
        let (lm, lmin, lmax) = spread(&lag0);
        println!(
            "| start → group lag 0 seen by `lag --json` (250 ms polls) | {lm:.2} s ({lmin:.2}–{lmax:.2}), {:.0} MB/s | — | |",
            mb / lm
        );
    }
    if !tool.is_empty() {
        let (tm, tmin, tmax) = spread(&tool);
        println!(
            "| ConsumerPerformance's own fetch.MB.sec (excludes JVM start and group join) | — | {tm:.0} ({tmin:.0}–{tmax:.0}) | |"
        );
    }
    println!(
        "| peak RSS (GNU time %M) | {orss:.1} MB ({orss_min:.1}–{orss_max:.1}) | {jrss:.1} MB ({jrss_min:.1}–{jrss_max:.1}) | {:.1}× |",
        jrss / orss
    );
    println!(
        "raw: ours exit−idle {:?}, ours lag0 {:?}, java exit {:?}, java fetch.MB.sec {:?}",
        ours_runs.iter().map(|r| r.exit_s).collect::<Vec<_>>(),
        lag0,
        java_runs.iter().map(|r| r.exit_s).collect::<Vec<_>>(),
        tool
    );
    println!("logs: {}", d.display());
}

/// `fetch.MB.sec` from ConsumerPerformance's CSV-like summary (header line, then values).
fn perf_mb_sec(stdout: &str) -> Option<f64> {
    let lines: Vec<&str> = stdout.lines().collect();
    let hi = lines.iter().position(|l| l.contains("fetch.MB.sec"))?;
    let header: Vec<&str> = lines[hi].split(',').map(str::trim).collect();
    let col = header.iter().position(|h| *h == "fetch.MB.sec")?;
    lines[hi + 1..].iter().find_map(|l| {
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        (f.len() == header.len())
            .then(|| f[col].parse().ok())
            .flatten()
    })
}

// ---- 2b. produce throughput ------------------------------------------------------------------

/// `records` lines of 1024 random lowercase letters (1 KB records), written once per process.
fn produce_input(d: &Path, records: u64) -> PathBuf {
    let file = d.join("records.txt");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).unwrap());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut line = [b'\n'; 1025];
    for _ in 0..records {
        for b in line[..1024].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = b'a' + (x % 26) as u8;
        }
        w.write_all(&line).unwrap();
    }
    w.flush().unwrap();
    file
}

/// "(12.34 MB/sec)" from ProducerPerformance's final summary line.
fn perf_producer_mb_sec(stdout: &str) -> Option<f64> {
    let line = stdout.lines().rev().find(|l| l.contains("records sent"))?;
    let open = line.find('(')?;
    let rest = &line[open + 1..];
    rest[..rest.find(" MB/sec")?].trim().parse().ok()
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh produce_vs_java"]
fn produce_vs_java() {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    let records: u64 = std::env::var("KO_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("KO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mb = records as f64 * 1024.0 / 1e6;
    let d = bench_dir("prodbench");
    let input = produce_input(&d, records);
    let exe = crate::support::command::exe();
    let mut bt = BenchTool::start(b);
    let load0 = loadavg();
    // (name, wall seconds, peak RSS MB, the tool's own MB/s)
    let names = [
        "kafka-observer produce (defaults: 512 KiB batches, linger 5 ms)",
        "ProducerPerformance, Java client defaults (16 KiB batches, linger 5 ms)",
        "ProducerPerformance, batch.size=524288 (our batch size)",
    ];
    let mut results: Vec<Vec<(f64, f64, Option<f64>)>> = vec![Vec::new(); names.len()];
    for run in 0..runs {
        for k in 0..names.len() {
            let who = (k + run) % names.len();
            let topic = create_topic_fast(b, &mut bt, &harness::unique("prodbench"), 6);
            let rss = d.join(format!("{topic}.rss"));
            let n = records.to_string();
            let props = format!("bootstrap.servers={bootstrap}");
            let cmd = if who == 0 {
                let mut c = Command::new(&exe);
                c.args([
                    "produce",
                    "--bootstrap",
                    &bootstrap,
                    "--topic",
                    &topic,
                    "--file",
                ])
                .arg(&input);
                c
            } else {
                let mut c = java_cmd(
                    b,
                    STOCK_JVM,
                    None,
                    "org.apache.kafka.tools.ProducerPerformance",
                );
                #[rustfmt::skip]
                c.args([
                    "--topic", &topic, "--num-records", &n, "--record-size", "1024",
                    "--throughput", "-1", "--producer-props", &props,
                ]);
                if who == 2 {
                    c.arg("batch.size=524288");
                }
                c
            };
            let t0 = Instant::now();
            let out = with_rss(&cmd, &rss)
                .env_remove("MESSAGEHUB_KAFKA_BROKERS_SASL")
                .output()
                .unwrap();
            let wall = secs(t0.elapsed());
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "{}: {stdout}{}",
                names[who],
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(d.join(format!("{topic}.out")), &stdout).unwrap();
            let written: u64 = if who == 0 {
                crate::support::produce::summary(&out.stdout)
                    .values()
                    .map(|v| v.2)
                    .sum()
            } else {
                let ends = crate::support::consumer::high_watermarks(&topic);
                ends.values().sum::<i64>() as u64
            };
            assert_eq!(written, records, "{}: {stdout}", names[who]);
            let tool = (who != 0).then(|| perf_producer_mb_sec(&stdout)).flatten();
            results[who].push((wall, read_rss_kb(&rss) / 1024.0, tool));
            bt.cmd(&format!("delete-topics {topic}"));
        }
    }
    let load1 = loadavg();
    let ours = spread(&results[0].iter().map(|r| r.0).collect::<Vec<_>>()).0;
    println!("\n### produce_vs_java: {records} records × 1 KB ({mb:.0} MB), 6 partitions, acks=all, idempotent, no compression");
    println!("median of {runs} (min–max); start → exit (JVM start included); order rotates per run; load avg {load0} → {load1}\n");
    println!(
        "| producer | wall time | MB/s over wall time | ours vs it | tool's own MB/s | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let (w, wmin, wmax) = spread(&results[i].iter().map(|r| r.0).collect::<Vec<_>>());
        let (r, rmin, rmax) = spread(&results[i].iter().map(|r| r.1).collect::<Vec<_>>());
        let tool: Vec<f64> = results[i].iter().filter_map(|r| r.2).collect();
        let tool = if tool.is_empty() {
            "—".to_string()
        } else {
            let (t, tmin, tmax) = spread(&tool);
            format!("{t:.0} ({tmin:.0}–{tmax:.0})")
        };
        println!(
            "| {name} | {w:.2} s ({wmin:.2}–{wmax:.2}) | {:.0} | {:.2}× | {tool} | {r:.1} MB ({rmin:.1}–{rmax:.1}) |",
            mb / w,
            w / ours
        );
    }
    println!(
        "raw wall seconds: {:?}",
        results
            .iter()
            .map(|v| v.iter().map(|r| r.0).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );
    println!(
        "input: {} (page cache warm after the first run); logs: {}",
        input.display(),
        d.display()
    );
    let _ = std::fs::remove_file(&input);
}

// ---- 3. wake-up latency -----------------------------------------------------------------------

/// The observer with the Code Engine launcher against the fake; `long_poll` None leaves the
/// setting to the environment (`OBSERVER_LONG_POLL`, default on).
fn ce_observer(
    cloud: &FakeCloud,
    kafkadata: &Path,
    dir: &Path,
    ticker_ms: u32,
    long_poll: Option<bool>,
) -> ObserverProc {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    let iam = cloud.iam_url();
    let api = cloud.url();
    let ticker = ticker_ms.to_string();
    let mut args = vec![
        "--bootstrap",
        &bootstrap,
        "--kafkadata",
        kafkadata.to_str().unwrap(),
        "--ticker-ms",
        &ticker,
        // The product default, stated: ObserverProc would otherwise pace idle cycles like
        // busy ones (what the functional tests want, not what production does).
        "--idle-ticker-ms",
        "10000",
        // A trial's run "finishes" the moment its group caught up (real consumers stay for
        // their idle timeout, 60 s, longer than any refresh period), and the observer learns
        // that only at its next count: trials 5.5 s apart need counts at most 5 s apart.
        "--launcher-refresh",
        "5",
    ];
    match long_poll {
        Some(true) => args.extend(["--long-poll", "true"]),
        Some(false) => args.extend(["--long-poll", "false"]),
        None => {}
    }
    ObserverProc::start(
        dir,
        &args,
        &[
            ("IAM_API_KEY", FakeCloud::API_KEY),
            ("IAM_URL", &iam),
            ("CE_API_BASE_URL", &api),
            ("CE_PROJECT_ID", FakeCloud::PROJECT_ID),
        ],
    )
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh wakeup_latency"]
fn wakeup_latency() {
    let b = harness::broker();
    let trials: usize = std::env::var("KO_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let cloud = FakeCloud::start();
    let d = bench_dir("wakebench");
    let m = sample_mapping(&d);
    let mut bt = BenchTool::start(b);
    let load0 = loadavg();
    let mut rows = Vec::new();
    // The product (long poll on) and the peers' way (a timed cycle at the IBM sample's 500 ms).
    for (long_poll, ticker) in [(true, 500u32), (false, 500)] {
        let od = d.join(format!("ticker-{ticker}-long-poll-{long_poll}"));
        std::fs::create_dir_all(&od).unwrap();
        let created_before = cloud.creates(&m.jobs[2]).len();
        let mut obs = ce_observer(&cloud, &m.file, &od, ticker, Some(long_poll));
        obs.wait_cycles(3);
        let lag_series = format!(
            "kafka_consumergroup_group_sum_lag{{group=\"{}\"}}",
            m.groups[2]
        );
        let mut lat = Vec::new();
        for _ in 0..trials {
            let n0 = cloud.count(Route::Create);
            bt.cmd(&format!("produce {} 0", m.ship));
            let acked = Instant::now();
            let deadline = acked + Duration::from_secs(30);
            while cloud.count(Route::Create) == n0 {
                assert!(
                    Instant::now() < deadline,
                    "no CreateJobRun:\n{}",
                    cloud.describe_requests()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let received = Instant::now();
            lat.push(secs(received - acked) * 1e3);
            // back to idle: commit to the end, lag 0 seen by the observer, the run finishes; then
            // wait out the launcher refresh (5 s here) and the 5 s launch grace.
            bt.cmd(&format!("commit-end {} {}", m.groups[2], m.ship));
            let deadline = Instant::now() + Duration::from_secs(30);
            while obs.metric(&lag_series) != Some(0.0) {
                assert!(Instant::now() < deadline, "lag never 0");
                std::thread::sleep(Duration::from_millis(20));
            }
            cloud.finish_job(&m.jobs[2]);
            let ready = received
                + Duration::from_millis(5500)
                + jitter(Duration::from_millis(ticker as u64));
            if let Some(rest) = ready.checked_duration_since(Instant::now()) {
                std::thread::sleep(rest);
            }
        }
        let creates = cloud.creates(&m.jobs[2]).len() - created_before;
        obs.stop();
        rows.push((long_poll, ticker, lat, creates));
    }
    let load1 = loadavg();
    println!("\n### wakeup_latency: record acknowledged → fake Code Engine received CreateJobRun");
    println!(
        "sample mapping (4+3 partitions, 3 jobs), {trials} trials per ticker, 1 record to shipping[0] per trial; \
         measured by polling the fake's request log every 1 ms (Recorded has no timestamp); load avg {load0} → {load1}\n"
    );
    println!("| detection | --ticker-ms | p50 | p90 | p99 | worst | best | runs created |");
    println!("|---|---|---|---|---|---|---|---|");
    for (lp, t, lat, creates) in &rows {
        let (med, min, max) = spread(lat);
        println!(
            "| {} | {t} | {med:.1} ms | {:.1} ms | {:.1} ms | {max:.1} ms | {min:.1} ms | {creates} |",
            if *lp { "long poll" } else { "timed cycles" },
            percentile(lat, 90.0),
            percentile(lat, 99.0)
        );
    }
    if let [(_, _, on, _), (_, _, off, _)] = &rows[..] {
        println!(
            "\np50 timed / long poll: {:.0}×; p99: {:.0}×",
            spread(off).0 / spread(on).0,
            percentile(off, 99.0) / percentile(on, 99.0)
        );
    }
    for (lp, t, lat, _) in &rows {
        println!(
            "raw ms, long poll {lp}, ticker {t}: {:?}",
            lat.iter()
                .map(|x| (x * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
    }
}

// ---- 4. broker load -----------------------------------------------------------------------------

/// `api → count` of every `kafka_observer_broker_requests_total{api="…"}` line.
fn requests_by_api(body: &str) -> Vec<(String, f64)> {
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("kafka_observer_broker_requests_total{api=\"")?;
            let (api, rest) = rest.split_once("\"}")?;
            Some((api.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// The pid of the `observe` process whose command line names `kafkadata`.
fn observer_pid(kafkadata: &Path) -> u32 {
    let needle = kafkadata.to_str().unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains("observe") && cmd.contains(needle) {
            return pid;
        }
    }
    panic!("no observer process for {needle}");
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields 14 and 15 of stat; `after` starts at field 3
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clk_tck()
}

fn clk_tck() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn status_kb(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(f64::NAN)
}

struct Load {
    name: String,
    partitions: u64,
    pairs: u64,
    window_s: f64,
    cycles: f64,
    by_api: Vec<(String, f64)>,
    gauge: f64,
    cpu_s: f64,
    cycle_mean_s: f64,
    hwm_kb: f64,
    rss_kb: f64,
}

fn measure_idle(
    name: &str,
    obs: &mut ObserverProc,
    kafkadata: &Path,
    window: Duration,
    partitions: u64,
    pairs: u64,
) -> Load {
    let pid = observer_pid(kafkadata);
    obs.wait_cycles(3);
    let snap = |obs: &ObserverProc| obs.get("/metrics").1;
    let b0 = snap(obs);
    let c0 = cpu_secs(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let b1 = snap(obs);
    let c1 = cpu_secs(pid);
    let window_s = secs(t0.elapsed());
    let v = |body: &str, s: &str| metric_value(body, s).unwrap_or(0.0);
    let cycles = v(&b1, "kafka_observer_cycles_total") - v(&b0, "kafka_observer_cycles_total");
    let before = requests_by_api(&b0);
    let by_api = requests_by_api(&b1)
        .into_iter()
        .map(|(api, n)| {
            let was = before
                .iter()
                .find(|(a, _)| *a == api)
                .map(|x| x.1)
                .unwrap_or(0.0);
            (api, n - was)
        })
        .filter(|(_, n)| *n > 0.0)
        .collect();
    let dsum = v(&b1, "kafka_observer_cycle_duration_seconds_sum")
        - v(&b0, "kafka_observer_cycle_duration_seconds_sum");
    let dcount = v(&b1, "kafka_observer_cycle_duration_seconds_count")
        - v(&b0, "kafka_observer_cycle_duration_seconds_count");
    Load {
        name: name.to_string(),
        partitions,
        pairs,
        window_s,
        cycles,
        by_api,
        gauge: v(&b1, "kafka_observer_broker_requests_per_cycle"),
        cpu_s: c1 - c0,
        cycle_mean_s: if dcount > 0.0 {
            dsum / dcount
        } else {
            f64::NAN
        },
        hwm_kb: status_kb(pid, "VmHWM:"),
        rss_kb: status_kb(pid, "VmRSS:"),
    }
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh broker_load"]
fn broker_load() {
    let b = harness::broker();
    let window = Duration::from_secs(
        std::env::var("KO_BENCH_WINDOW_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let n_topics: u64 = std::env::var("KO_BENCH_TOPICS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let n_parts: u64 = std::env::var("KO_BENCH_PARTITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let n_groups: u64 = 100;
    let cloud = FakeCloud::start();
    let d = bench_dir("loadbench");
    let load0 = loadavg();
    let mut results = Vec::new();

    // (a) the IBM sample's mapping: 2 topics (4 + 3 partitions), 3 (topic, group) pairs
    {
        let m = sample_mapping(&d);
        let od = d.join("sample");
        std::fs::create_dir_all(&od).unwrap();
        let mut obs = ce_observer(&cloud, &m.file, &od, 500, None);
        results.push(measure_idle(
            "sample (2 topics, 7 partitions, 3 groups)",
            &mut obs,
            &m.file,
            window,
            7,
            3,
        ));
        obs.stop();
    }

    // (b) synthetic: n_topics × n_parts, one job per topic, n_groups groups (group = topic % 100)
    let mut bt = BenchTool::start(b);
    let prefix = harness::unique("lt");
    let t = Instant::now();
    bt.cmd(&format!("create-topics {prefix} {n_topics} {n_parts}"));
    b.wait_for_partitions(&format!("{prefix}-{}", n_topics - 1), n_parts as i32);
    let create_s = secs(t.elapsed());
    drop(bt);
    let mut yaml = String::new();
    for i in 0..n_topics {
        yaml.push_str(&format!(
            "{prefix}-{i}:\n  partitions: {n_parts}\n  jobs:\n    - name: {prefix}-job-{i}\n      consumer_group: {prefix}-group-{}\n",
            i % n_groups
        ));
    }
    let file = d.join("kafkadata-synthetic");
    std::fs::write(&file, yaml).unwrap();
    let od = d.join("synthetic");
    std::fs::create_dir_all(&od).unwrap();
    let mut obs = ce_observer(&cloud, &file, &od, 500, None);
    let name = format!("synthetic ({n_topics} topics × {n_parts} partitions, {n_groups} groups)");
    results.push(measure_idle(
        &name,
        &mut obs,
        &file,
        window,
        n_topics * n_parts,
        n_topics,
    ));
    obs.stop();
    let load1 = loadavg();

    println!(
        "\n### broker_load ({}): idle observer, --ticker-ms 500, {:.0} s window",
        long_poll_mode(),
        secs(window)
    );
    println!("synthetic topics created in {create_s:.1} s (one AdminClient, batches of 100); load avg {load0} → {load1}");
    println!(
        "observer binary: {}\n",
        crate::support::command::exe().to_string_lossy()
    );
    println!("| mapping | cycles | requests / cycle (Δtotal/Δcycles; gauge) | requests / idle minute | by API (Δ over window) | CPU / cycle | mean cycle | VmHWM | VmRSS |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let total: f64 = r.by_api.iter().map(|x| x.1).sum();
        let apis = r
            .by_api
            .iter()
            .map(|(a, n)| format!("{a} {n:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} | {:.0} | {:.2}; {:.0} | {:.0} | {apis} | {:.2} ms | {:.1} ms | {:.1} MB | {:.1} MB |",
            r.name,
            r.cycles,
            total / r.cycles,
            r.gauge,
            total * 60.0 / r.window_s,
            r.cpu_s * 1e3 / r.cycles,
            r.cycle_mean_s * 1e3,
            r.hwm_kb / 1024.0,
            r.rss_kb / 1024.0
        );
    }
    println!("\nmodels, requests per idle minute (1 broker = 1 leader):");
    println!("| mapping | ours (measured) | IBM sample: ListOffsets per partition + OffsetFetch per (topic, group), every 500 ms | KEDA: 1 Metadata + 1 OffsetFetch + 1 ListOffsets per leader, per trigger (= per (topic, group)), every 30 s |");
    println!("|---|---|---|---|");
    for r in &results {
        let total: f64 = r.by_api.iter().map(|x| x.1).sum();
        let ours = total * 60.0 / r.window_s;
        let ibm = (r.partitions + r.pairs) as f64 * 120.0;
        let keda = r.pairs as f64 * 3.0 * 2.0;
        println!(
            "| {} | {ours:.0} | {ibm:.0} ({:.0}× ours) | {keda:.0} ({:.2}× ours) |",
            r.name,
            ibm / ours,
            keda / ours
        );
    }
}

// ---- 5. Code Engine economy -------------------------------------------------------------------

/// What one observer cost over one scenario.
struct Economy {
    /// Requests to Code Engine (ListJobRuns pages, CreateJobRun, GetJobRun) and to IAM.
    ce: usize,
    iam: usize,
    /// Job runs created, per job.
    runs: Vec<usize>,
    secs: f64,
}

/// The baseline program for `ce_economy` (`KO_BASELINE_EXE`, e.g. a release build of main
/// 5e995b6), if given.
fn baseline_exe() -> Option<std::ffi::OsString> {
    std::env::var_os("KO_BASELINE_EXE").filter(|p| !p.is_empty())
}

/// One observer (`exe`) with the product's defaults against its own fake IBM Cloud and its own
/// copy of the sample mapping, through `scenario` for `window`.
fn economy_run(exe: &std::ffi::OsStr, name: &str, scenario: &str, window: Duration) -> Economy {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = bench_dir(&format!("economy-{scenario}-{name}"));
    let m = sample_mapping(&d);
    let mut bt = BenchTool::start(b);
    if scenario == "crash-looping" {
        // Consumer runs that end after 2.5 s, failed, without committing anything.
        cloud.set_run_lifetime(Some((Duration::from_millis(2500), true)));
    }
    let bootstrap = b.plaintext();
    let (iam, api) = (cloud.iam_url(), cloud.url());
    let mut obs = ObserverProc::start_exe(
        exe,
        &d,
        &[
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            m.file.to_str().unwrap(),
            "--ticker-ms",
            "500",
            "--idle-ticker-ms",
            "10000",
        ],
        &[
            ("IAM_API_KEY", FakeCloud::API_KEY),
            ("IAM_URL", &iam),
            ("CE_API_BASE_URL", &api),
            ("CE_PROJECT_ID", FakeCloud::PROJECT_ID),
        ],
    );
    obs.wait_cycles(2);
    // Every partition of both topics has work (crash loop), or shipping has a backlog that its
    // "consumers" (the bench, committing) work through over the whole window.
    match scenario {
        "crash-looping" => {
            bt.cmd(&format!("fill {} 10", m.pay));
            bt.cmd(&format!("fill {} 10", m.ship));
        }
        "lagging-with-progress" => {
            bt.cmd(&format!("fill {} 1000", m.ship));
        }
        _ => {}
    }
    let t0 = Instant::now();
    let steps = (window.as_secs() / 5).max(1);
    let mut step = 0;
    while t0.elapsed() < window {
        std::thread::sleep(Duration::from_millis(200));
        if scenario == "lagging-with-progress"
            && t0.elapsed() >= Duration::from_secs(5 * (step + 1))
        {
            // Progress every 5 s: commits move, lag stays (the last step is short of the end).
            step += 1;
            bt.cmd(&format!(
                "commit-frac {} {} {} {}",
                m.groups[2],
                m.ship,
                step.min(steps),
                steps + 1
            ));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let runs = m.jobs.iter().map(|j| cloud.creates(j).len()).collect();
    let ce = cloud.ce_requests();
    let iam = cloud.token_requests();
    obs.stop();
    Economy {
        ce,
        iam,
        runs,
        secs,
    }
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh ce_economy"]
fn ce_economy() {
    let window = Duration::from_secs(
        std::env::var("KO_BENCH_ECONOMY_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(180),
    );
    let ours = crate::support::command::exe();
    let mut programs = vec![("this build", ours)];
    if let Some(base) = baseline_exe() {
        programs.push(("baseline", base));
    }
    let load0 = loadavg();
    let mut rows = Vec::new();
    for scenario in ["idle", "lagging-with-progress", "crash-looping"] {
        // Both programs at once, each with its own fake and topics: the same minutes.
        let results: Vec<Economy> = std::thread::scope(|s| {
            let handles: Vec<_> = programs
                .iter()
                .map(|(name, exe)| s.spawn(move || economy_run(exe, name, scenario, window)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ((name, _), e) in programs.iter().zip(results) {
            rows.push((scenario, *name, e));
        }
    }
    let load1 = loadavg();
    println!("\n### ce_economy: Code Engine requests and job runs, sample mapping (3 jobs), product defaults");
    println!(
        "{} s per scenario, both programs side by side in the same minutes, each against its own fake IBM Cloud; \
         idle = no records; lagging-with-progress = 3000 records on shipping, its group committing a further 1/{} \
         every 5 s, runs stay up; crash-looping = every partition has records, every run fails after 2.5 s without \
         committing; load avg {load0} → {load1}\n",
        window.as_secs(),
        window.as_secs() / 5 + 1
    );
    println!(
        "| scenario | program | CE requests/min | job runs/min | runs per job | IAM requests |"
    );
    println!("|---|---|---|---|---|---|");
    for (scenario, name, e) in &rows {
        let per_min = |n: usize| n as f64 * 60.0 / e.secs;
        println!(
            "| {scenario} | {name} | {:.1} | {:.1} | {:?} | {} |",
            per_min(e.ce),
            per_min(e.runs.iter().sum()),
            e.runs,
            e.iam
        );
    }
}

// ---- wake_cost --------------------------------------------------------------------------------

/// What one job cost, from an observer log with real local consumers.
struct WakeCost {
    runs: usize,
    /// Runs whose consumer logged `consumer stopped`.
    stopped: usize,
    /// From each run's wake-up line to its `consumer stopped` line.
    secs: f64,
    handled: usize,
    worst_ms: i64,
}

/// [`WakeCost`] of `job` (reading `topic`) in `log`: every line starts with its RFC 3339 time;
/// consumer lines name their run.
fn wake_cost_of(log: &str, job: &str, topic: &str) -> WakeCost {
    let time = |l: &str| -> Option<f64> {
        let t = l.split_whitespace().next()?;
        // 2026-12-02T07:14:35.992349Z: seconds of the day are enough within one run.
        let (h, rest) = t.split_once('T')?.1.split_once(':')?;
        let (m, s) = rest.split_once(':')?;
        Some(
            h.parse::<f64>().ok()? * 3600.0
                + m.parse::<f64>().ok()? * 60.0
                + s.trim_end_matches('Z').parse::<f64>().ok()?,
        )
    };
    let field = |l: &str, key: &str| -> Option<String> {
        let i = l.find(&format!("{key}="))? + key.len() + 1;
        Some(l[i..].split([' ', '}', ':']).next()?.to_string())
    };
    let mut starts: Vec<(String, f64)> = Vec::new();
    let mut stops: std::collections::BTreeMap<String, f64> = Default::default();
    let (mut handled, mut worst) = (0, 0i64);
    for l in log.lines() {
        if l.contains("woke consumers") && field(l, "job").as_deref() == Some(job) {
            if let (Some(run), Some(t)) = (field(l, "run"), time(l)) {
                starts.push((run, t));
            }
        } else if l.contains("consumer stopped") {
            if let (Some(run), Some(t)) = (field(l, "run"), time(l)) {
                stops.insert(run, t);
            }
        } else if l.contains(": record topic=") && field(l, "topic").as_deref() == Some(topic) {
            handled += 1;
            if let Some(ms) = field(l, "latency_ms").and_then(|v| v.parse::<i64>().ok()) {
                worst = worst.max(ms);
            }
        }
    }
    WakeCost {
        runs: starts.len(),
        stopped: starts.iter().filter(|(r, _)| stops.contains_key(r)).count(),
        secs: starts
            .iter()
            .map(|(run, t)| stops.get(run).map_or(0.0, |s| s - t))
            .sum(),
        handled,
        worst_ms: worst,
    }
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh wake_cost"]
fn wake_cost() {
    let env_secs = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let window = Duration::from_secs(env_secs("KO_BENCH_WAKE_SECS", 300));
    let every = Duration::from_secs(env_secs("KO_BENCH_TRICKLE_SECS", 5));
    // As deployed (run.sh): 60 s.
    let idle = env_secs("KO_BENCH_IDLE_TIMEOUT", 60).to_string();
    // The third job's own `idle_timeout` (kafkadata): its runs get IDLE_TIMEOUT=this.
    let job_idle = env_secs("KO_BENCH_JOB_IDLE_TIMEOUT", 2);
    let b = harness::broker();
    let mut bt = BenchTool::start(b);
    let d = bench_dir("wake-cost");
    // (topic prefix, row name, the job's policy keys)
    let rows: [(&str, String, String); 3] = [
        ("trickle-plain", "default".into(), String::new()),
        (
            "trickle-batched",
            "max_wait 60s, min_lag 100".into(),
            ", max_wait: 60s, min_lag: 100".into(),
        ),
        (
            "trickle-short",
            format!("max_wait 60s, min_lag 100, idle_timeout {job_idle}s"),
            format!(", max_wait: 60s, min_lag: 100, idle_timeout: {job_idle}s"),
        ),
    ];
    let mut topics = Vec::new();
    let mut jobs = Vec::new();
    let mut mapping_text = String::new();
    for (prefix, _, keys) in &rows {
        let t = harness::unique(prefix);
        create_topic_fast(b, &mut bt, &t, 1);
        // create_topic_fast names the topic PREFIX-0.
        let t = format!("{t}-0");
        let job = harness::unique(&format!("{prefix}-job"));
        mapping_text.push_str(&format!(
            "{t}:\n  jobs:\n    - {{name: {job}, consumer_group: {}{keys}}}\n",
            harness::unique("g")
        ));
        topics.push(t);
        jobs.push(job);
    }
    let mapping = d.join("kafkadata");
    std::fs::write(&mapping, mapping_text).unwrap();
    // Real consumers (this build's `consume`).
    let mut obs = crate::support::observer::local_observer_in(
        &d,
        &mapping,
        &["--ticker-ms", "500", "--idle-ticker-ms", "10000"],
        &[("IDLE_TIMEOUT", idle.as_str()), ("LOG_LEVEL", "info")],
    );
    obs.wait_cycles(1);
    let load0 = loadavg();
    let t0 = Instant::now();
    let mut produced = 0;
    while t0.elapsed() < window {
        for t in &topics {
            bt.cmd(&format!("produce {t} 0"));
        }
        produced += 1;
        std::thread::sleep(every.saturating_sub(Duration::from_millis(30)));
    }
    // Let all drain and go idle: the batched jobs' last records wait up to max_wait.
    obs.wait_log(
        600,
        "every record handled and every consumer stopped",
        |log| {
            jobs.iter()
                .zip(&topics)
                .all(|(j, t)| {
                    let c = wake_cost_of(log, j, t);
                    c.handled >= produced && c.runs > 0 && c.stopped == c.runs
                })
                .then_some(())
        },
    );
    let log = obs.log_text();
    let load1 = loadavg();
    obs.stop();
    println!(
        "\n### wake_cost: a trickle topic, default policy vs `max_wait: 60s, min_lag: 100` (with and without `idle_timeout`)"
    );
    println!(
        "one record every {} s to each topic for {} s ({produced} each), real local consumers, \
         IDLE_TIMEOUT={idle} (the observer's, as deployed; the third job's runs get its own), \
         all jobs in one observer in the same minutes; load avg {load0} → {load1}\n",
        every.as_secs(),
        window.as_secs()
    );
    println!(
        "| policy | runs | consumer process-seconds | records handled | worst record latency |"
    );
    println!("|---|---|---|---|---|");
    let mut secs = Vec::new();
    for ((_, name, _), (job, topic)) in rows.iter().zip(jobs.iter().zip(&topics)) {
        let c = wake_cost_of(&log, job, topic);
        println!(
            "| {name} | {} | {:.0} | {}/{produced} | {:.1} s |",
            c.runs,
            c.secs,
            c.handled,
            c.worst_ms as f64 / 1000.0
        );
        assert!(
            c.handled >= produced,
            "{name}: {} of {produced} records handled",
            c.handled
        );
        secs.push(c.secs);
    }
    println!(
        "\nconsumer seconds, default / batched: {:.1}×; default / batched with idle_timeout {job_idle}s: {:.1}×",
        secs[0] / secs[1].max(0.001),
        secs[0] / secs[2].max(0.001)
    );
}

// ---- 7. group scale-out: one plan per group, cooperative-sticky -----------------------------

/// Seconds since the epoch of a log line's RFC 3339 UTC timestamp (`2026-12-02T07:02:59.084801Z`).
fn log_time(line: &str) -> Option<f64> {
    let ts = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let s = t.next()?.parse::<f64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + s)
}

/// Live child processes of `pid` (the local launcher's consumers; exited ones the observer
/// has not reaped yet, zombies, do not count).
fn children_of(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...; comm may hold spaces or parentheses.
            let mut rest = stat
                .rsplit_once(')')
                .map_or("", |(_, r)| r)
                .split_whitespace();
            let state = rest.next();
            let ppid = rest.next().and_then(|p| p.parse::<u32>().ok());
            ppid == Some(pid) && state != Some("Z")
        })
        .count()
}

/// What one burst of a `group_scaleout` run did.
#[derive(Debug)]
struct ScaleBurst {
    /// Instances the observer started, and in how many runs (wake-ups).
    instances: u64,
    runs: usize,
    /// Of those, instances whose every assignment was empty.
    idle: usize,
    /// Distinct group generations seen.
    generations: usize,
    /// From the first wake-up to the moment every partition had a handler call started on it.
    owned_s: f64,
    /// From the first wake-up to the last handler call's start.
    drained_s: f64,
    /// Records of the burst handled more than once.
    twice: usize,
}

/// The scenarios: (name, topics as (prefix, partitions), jobs as topic indices).
type ScaleScenario = (&'static str, Vec<(&'static str, i32)>, Vec<Vec<usize>>);

/// Runs `bursts` bursts of `records` records per partition through an observer with local
/// consumers (a 2 s handler per batch of 5, 5 s idle timeout); `before` = the behaviour before
/// issue 12's plan: jobs planned one by one (`--group-plan false`) and the eager range
/// assignor only.
fn scaleout_run(
    b: &Broker,
    bt: &mut BenchTool,
    scenario: &ScaleScenario,
    before: bool,
    bursts: usize,
    records: u32,
) -> Vec<ScaleBurst> {
    let (_, topic_specs, job_topics) = scenario;
    let dir = bench_dir("scaleout");
    let topics: Vec<(String, i32)> = topic_specs
        .iter()
        .map(|(prefix, n)| (create_topic_fast(b, bt, &harness::unique(prefix), *n), *n))
        .collect();
    let group = harness::unique("scaleout-group");
    let jobs: Vec<String> = (0..job_topics.len())
        .map(|i| harness::unique(&format!("scaleout-{i}")))
        .collect();
    let mut yaml = String::new();
    for (t, (topic, _)) in topics.iter().enumerate() {
        yaml.push_str(&format!("{topic}:\n  jobs:\n"));
        for (j, reads) in job_topics.iter().enumerate() {
            if reads.contains(&t) {
                yaml.push_str(&format!(
                    "    - {{name: {}, consumer_group: {group}}}\n",
                    jobs[j]
                ));
            }
        }
    }
    let kd = dir.join("kafkadata");
    std::fs::write(&kd, yaml).unwrap();
    // Each handler call stamps its records with its start time (ns), then works 2 s.
    let exec = format!(
        "ts=$(date +%s%N); f=$(mktemp); cat > $f; sed \"s/^/$ts /\" $f >> {}/out-$CE_JOBRUN-$JOB_INDEX.txt; rm -f $f; sleep 2",
        dir.display()
    );
    let bootstrap = b.plaintext();
    let mut env = vec![
        ("CONSUMER_EXEC", exec.as_str()),
        ("IDLE_TIMEOUT", "5"),
        ("BATCH_SIZE", "5"),
    ];
    if before {
        env.extend([("OBSERVER_GROUP_PLAN", "false"), ("ASSIGNORS", "range")]);
    }
    let mut obs = ObserverProc::start(
        &dir,
        &[
            "--launcher",
            "local",
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            kd.to_str().unwrap(),
            "--ticker-ms",
            "100",
        ],
        &env,
    );
    let partitions: usize = topics.iter().map(|(_, n)| *n as usize).sum();
    let started = |o: &ObserverProc| -> u64 {
        jobs.iter()
            .map(|j| {
                o.metric(&format!(
                    "kafka_observer_instances_started_total{{job=\"{j}\"}}"
                ))
                .unwrap_or(0.0) as u64
            })
            .sum()
    };
    // (time, topic, partition, offset) of every record handled so far.
    let handled = || -> Vec<(f64, String, i64, i64)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with("out-") && name.ends_with(".txt")) {
                continue;
            }
            for line in std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
            {
                let Some((ts, json)) = line.split_once(' ') else {
                    continue;
                };
                let (Ok(ts), Ok(v)) = (ts.parse::<f64>(), serde_json::from_str::<Value>(json))
                else {
                    continue;
                };
                out.push((
                    ts / 1e9,
                    v["topic"].as_str().unwrap_or_default().to_string(),
                    v["partition"].as_i64().unwrap_or(-1),
                    v["offset"].as_i64().unwrap_or(-1),
                ));
            }
        }
        out
    };
    let lag_zero = format!("kafka_consumergroup_group_sum_lag{{group=\"{group}\"}}");
    let mut results = Vec::new();
    for burst in 0..bursts {
        let log_from = obs.log_text().len();
        let handled_before = handled().len();
        let instances_before = started(&obs);
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        for (topic, _) in &topics {
            bt.cmd(&format!("fill {topic} {records}"));
        }
        let want = handled_before + partitions * records as usize;
        let deadline = Instant::now() + Duration::from_secs(300);
        // Done: every record handled, the group caught up, every consumer gone.
        loop {
            let done = handled().len() >= want
                && obs.metric(&lag_zero) == Some(0.0)
                && children_of(obs.pid()) == 0;
            if done {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "burst {burst} did not finish:\n{}",
                obs.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = obs.log_text()[log_from..].to_string();
        // The first wake-up: its `woke consumers` line comes when the launcher reports, which may
        // be after the first instance's own first line.
        let runs = log.lines().filter(|l| l.contains("woke consumers")).count();
        let t0 = log
            .lines()
            .filter(|l| l.contains("woke consumers") || l.contains(" assigned group="))
            .filter_map(log_time)
            .fold(f64::INFINITY, f64::min);
        let mut generations = std::collections::BTreeSet::new();
        let mut members: std::collections::BTreeMap<String, bool> = Default::default();
        for l in log
            .lines()
            .filter(|l| l.contains(" assigned group=") && l.contains(&group))
        {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|t| t.strip_prefix(k))
                    .map(|v| v.trim_end_matches(['}', ':']).to_string())
            };
            if let Some(g) = field("generation=") {
                generations.insert(g);
            }
            let member = format!(
                "{}/{}",
                field("run=").unwrap_or_default(),
                field("index=").unwrap_or_default()
            );
            let owns = field("partitions=").is_some_and(|p| !p.is_empty());
            *members.entry(member).or_default() |= owns;
        }
        // This burst's records: handled after its first record was written.
        let mut first: std::collections::BTreeMap<(String, i64), f64> = Default::default();
        let mut last = f64::NEG_INFINITY;
        let mut times: std::collections::BTreeMap<(String, i64, i64), usize> = Default::default();
        for (ts, topic, p, o) in handled().iter().filter(|(ts, ..)| *ts >= since) {
            let e = first.entry((topic.clone(), *p)).or_insert(*ts);
            *e = e.min(*ts);
            last = last.max(*ts);
            *times.entry((topic.clone(), *p, *o)).or_default() += 1;
        }
        assert_eq!(
            times.len(),
            partitions * records as usize,
            "burst {burst}: records not handled"
        );
        let owned = first.values().copied().fold(f64::NEG_INFINITY, f64::max);
        let instances = started(&obs) - instances_before;
        results.push(ScaleBurst {
            instances,
            runs,
            idle: members.values().filter(|owns| !**owns).count(),
            generations: generations.len(),
            owned_s: if first.len() == partitions {
                owned - t0
            } else {
                f64::NAN
            },
            drained_s: last - t0,
            twice: times.values().filter(|n| **n > 1).count(),
        });
    }
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
    results
}

#[test]
#[ignore = "benchmark: proto-tests/bench/run.sh group_scaleout"]
fn group_scaleout() {
    let b = harness::broker();
    let bursts: usize = std::env::var("KO_BENCH_BURSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let records: u32 = std::env::var("KO_BENCH_BURST_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut bt = BenchTool::start(b);
    let scenarios: Vec<ScaleScenario> = vec![
        (
            "shared group: job 1 on topic 1, job 2 on 1-2, job 3 on 1-3 (1 partition each)",
            vec![("chain1", 1), ("chain2", 1), ("chain3", 1)],
            vec![vec![0], vec![0, 1], vec![0, 1, 2]],
        ),
        (
            "one job, 4 partitions woken at once",
            vec![("wide", 4)],
            vec![vec![0]],
        ),
    ];
    let load0 = loadavg();
    let mut rows = Vec::new();
    for s in &scenarios {
        // Before and after back to back, the same minutes of the same broker.
        for before in [true, false] {
            let r = scaleout_run(b, &mut bt, s, before, bursts, records);
            eprintln!("{} / before={before}: {r:?}", s.0);
            rows.push((s.0, before, r));
        }
    }
    let load1 = loadavg();
    println!("\n### group_scaleout: bursts of {records} records per partition, local consumers, handler 2 s per batch of 5, idle timeout 5 s");
    println!(
        "{bursts} bursts per row, medians (min–max); before = jobs planned one by one (`--group-plan false`) with the eager range assignor (`ASSIGNORS=range`), after = one plan per group with cooperative-sticky first (defaults); \
         times from the observer's first wake-up of the burst; load avg {load0} → {load1}\n"
    );
    println!("| scenario | plan | instances per burst | runs (wake-ups) per burst | instances without a partition | generations per burst | all partitions owned (first handler call on each) | last handler call started | records handled twice |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, before, r) in &rows {
        let f = |v: Vec<f64>| {
            let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
            if v.is_empty() {
                return "—".to_string();
            }
            let (m, lo, hi) = spread(&v);
            format!("{m:.1} ({lo:.1}–{hi:.1})")
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} s | {} s | {} |",
            if *before { "before" } else { "after" },
            f(r.iter().map(|x| x.instances as f64).collect()),
            f(r.iter().map(|x| x.runs as f64).collect()),
            f(r.iter().map(|x| x.idle as f64).collect()),
            f(r.iter().map(|x| x.generations as f64).collect()),
            f(r.iter().map(|x| x.owned_s).collect()),
            f(r.iter().map(|x| x.drained_s).collect()),
            r.iter().map(|x| x.twice).sum::<usize>(),
        );
    }
}
