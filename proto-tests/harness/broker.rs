//! One real Apache Kafka broker (KRaft combined mode, single node) and blocking helpers that drive
//! it with the official Java tools. See `proto-tests/README.md`.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::cache::{self, Cache};
use super::metadata;
use super::process::{expect_success, kill, random_bytes, run_with_timeout, tail};
use super::tls::{self, Tls};
use super::{parse_group_table, GroupRow, USERS};

/// How long the broker may take to open its client ports (the CI machine has 2 slow cores).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Default deadline for one Java tool run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a freshly created/altered topic may take to show up in the broker's metadata.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);
/// Start attempts (new ports each time) when the broker exits early, e.g. a port was taken.
const START_ATTEMPTS: u32 = 3;

const BROKER_JVM: &[&str] = &[
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
];
const TOOL_JVM: &[&str] = &[
    "-Xms32m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
];

/// Watchdog around the broker JVM: `sh -c SCRIPT sh TEST_PID WORK_DIR JAVA ARGS...`.
/// It records java's pid, and when the test process is gone (Rust never drops statics) it sends
/// TERM to java, then KILL after 10 s; once java is gone it removes the work dir.
const WATCHDOG: &str = r#"
t=$1; w=$2; shift 2
"$@" >"$w/logs/broker.out" 2>&1 &
j=$!
echo "$j" >"$w/java.pid.tmp" && mv "$w/java.pid.tmp" "$w/java.pid"
(
  while kill -0 "$t" 2>/dev/null; do sleep 1; done
  kill -TERM "$j" 2>/dev/null
  sleep 10
  kill -KILL "$j" 2>/dev/null
) &
p=$!
wait "$j"
rc=$?
kill "$p" 2>/dev/null
if ! kill -0 "$t" 2>/dev/null && [ -z "${KO_KEEP_BROKER_DIR:-}" ]; then rm -rf "$w"; fi
exit "$rc"
"#;

#[derive(Clone, Copy, Debug)]
struct Ports {
    plaintext: u16,
    sasl_plaintext: u16,
    sasl_ssl: u16,
    controller: u16,
}

impl Ports {
    /// Four distinct free ports: bind port 0, note the port, release. A race with another process
    /// is possible; `Broker::start` retries with new ports when the broker then fails to bind.
    fn pick() -> Ports {
        let listeners: Vec<TcpListener> = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let port = |i: usize| listeners[i].local_addr().expect("local_addr").port();
        Ports {
            plaintext: port(0),
            sasl_plaintext: port(1),
            sasl_ssl: port(2),
            controller: port(3),
        }
    }
}

/// A running broker. Obtain the shared one with [`super::broker()`].
pub struct Broker {
    work_dir: PathBuf,
    cache: Cache,
    tls: Tls,
    ports: Ports,
    java_pid: u32,
    /// The `sh` watchdog (parent of the broker JVM); `None` once stopped.
    watchdog: Mutex<Option<Child>>,
}

enum Outcome {
    Ready,
    Exited(String),
    TimedOut,
}

impl Broker {
    /// Downloads/compiles what is missing, generates TLS material, formats storage and starts the
    /// broker; blocks until all three client ports accept TCP connections.
    pub fn start() -> Result<Broker, String> {
        let started = Instant::now();
        let cache = cache::ensure();
        let work_dir = new_work_dir();
        let tls = tls::generate(&work_dir.join("tls"));
        fs::write(work_dir.join("tools-log4j2.properties"), TOOLS_LOG4J2)
            .expect("write tools log4j2 config");
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            let ports = Ports::pick();
            for d in ["data", "logs"] {
                let _ = fs::remove_dir_all(work_dir.join(d));
                fs::create_dir_all(work_dir.join(d)).expect("create broker dir");
            }
            let _ = fs::remove_file(work_dir.join("java.pid"));
            fs::write(
                work_dir.join("server.properties"),
                server_properties(&work_dir, &tls, ports),
            )
            .expect("write server.properties");
            fs::write(
                work_dir.join("log4j2.properties"),
                broker_log4j2(&work_dir.join("logs").join("server.log")),
            )
            .expect("write broker log4j2 config");
            format_storage(&cache, &work_dir);

            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(WATCHDOG)
                .arg("sh")
                .arg(std::process::id().to_string())
                .arg(&work_dir)
                .arg("java")
                .args(BROKER_JVM)
                .arg(format!(
                    "-Dlog4j2.configurationFile={}",
                    work_dir.join("log4j2.properties").display()
                ))
                .arg("-cp")
                .arg(cache.libs.join("*"))
                .arg("kafka.Kafka")
                .arg(work_dir.join("server.properties"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Own process group: a Ctrl-C aimed at `cargo test` does not hit the broker directly;
            // the watchdog notices the test process is gone and stops it cleanly.
            std::os::unix::process::CommandExt::process_group(&mut sh, 0);
            let mut child = sh
                .spawn()
                .map_err(|e| format!("harness: cannot start sh: {e}"))?;
            let java_pid = read_pid(&work_dir.join("java.pid"), &mut child)?;
            let broker = Broker {
                work_dir: work_dir.clone(),
                cache: cache.clone(),
                tls: tls.clone(),
                ports,
                java_pid,
                watchdog: Mutex::new(Some(child)),
            };
            match broker.wait_ready() {
                Outcome::Ready => {
                    eprintln!(
                        "harness: Kafka broker ready in {:.1} s (attempt {attempt}): plaintext {} \
                         sasl_plaintext {} sasl_ssl {}; work dir {}",
                        started.elapsed().as_secs_f64(),
                        broker.plaintext(),
                        broker.sasl_plaintext(),
                        broker.sasl_ssl(),
                        broker.work_dir.display()
                    );
                    return Ok(broker);
                }
                Outcome::Exited(status) => {
                    let _ = writeln!(
                        failures,
                        "attempt {attempt}: broker exited early ({status}); log tail:\n{}\n",
                        broker.log_tail(40)
                    );
                    // The work dir (and the TLS material in it) is reused by the next attempt.
                    continue;
                }
                Outcome::TimedOut => {
                    let msg = format!(
                        "harness: Kafka broker not ready after {} s; server log tail:\n{}",
                        READY_TIMEOUT.as_secs(),
                        broker.log_tail(60)
                    );
                    broker.stop();
                    return Err(msg);
                }
            }
        }
        let _ = fs::remove_dir_all(&work_dir);
        Err(format!(
            "harness: Kafka broker failed to start {START_ATTEMPTS} times:\n{failures}"
        ))
    }

    fn wait_ready(&self) -> Outcome {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addrs: Vec<SocketAddr> = [
            self.ports.plaintext,
            self.ports.sasl_plaintext,
            self.ports.sasl_ssl,
        ]
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
        loop {
            if let Some(status) = self.watchdog_exit() {
                return Outcome::Exited(status);
            }
            if addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok())
            {
                return Outcome::Ready;
            }
            if Instant::now() >= deadline {
                return Outcome::TimedOut;
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// `Some(status)` if the watchdog (and so the broker JVM) has exited.
    fn watchdog_exit(&self) -> Option<String> {
        let mut guard = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut()?.try_wait() {
            Ok(Some(status)) => {
                *guard = None;
                Some(status.to_string())
            }
            Ok(None) => None,
            Err(e) => Some(format!("wait failed: {e}")),
        }
    }

    /// Stops the broker (TERM, then KILL after 30 s) and removes its work dir. Idempotent. The
    /// shared broker is also stopped automatically when the test process exits; a private one
    /// (from [`Broker::start`]) when dropped.
    pub fn stop(&self) {
        let mut guard = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = guard.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            kill(self.java_pid, "TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            if matches!(child.try_wait(), Ok(None)) {
                kill(self.java_pid, "KILL");
            }
        }
        let _ = child.wait();
        if std::env::var_os("KO_KEEP_BROKER_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }

    /// True while the broker JVM runs.
    pub fn is_running(&self) -> bool {
        let mut guard = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        matches!(guard.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    // ---- addresses and files -------------------------------------------------------------

    /// `127.0.0.1:PORT` of the PLAINTEXT listener (used by every helper below).
    pub fn plaintext(&self) -> String {
        format!("127.0.0.1:{}", self.ports.plaintext)
    }
    /// `127.0.0.1:PORT` of the SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
    pub fn sasl_plaintext(&self) -> String {
        format!("127.0.0.1:{}", self.ports.sasl_plaintext)
    }
    /// `127.0.0.1:PORT` of the SASL_SSL listener (same mechanisms; cert for 127.0.0.1/localhost).
    pub fn sasl_ssl(&self) -> String {
        format!("127.0.0.1:{}", self.ports.sasl_ssl)
    }
    /// PEM of the CA that signed the broker's server certificate.
    pub fn ca_file(&self) -> &Path {
        &self.tls.ca_cert
    }
    /// PEM of an unrelated CA (must make TLS verification fail).
    pub fn wrong_ca_file(&self) -> &Path {
        &self.tls.wrong_ca_cert
    }
    /// Directory with `ca.crt`, `ca.key`, `server.crt`, `server.key`, `wrong-ca.crt`.
    pub fn tls_dir(&self) -> &Path {
        &self.tls.dir
    }
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }
    pub fn libs_dir(&self) -> &Path {
        &self.cache.libs
    }
    /// The broker's log4j2 log (INFO).
    pub fn server_log(&self) -> PathBuf {
        self.work_dir.join("logs").join("server.log")
    }
    /// The last `lines` lines of the server log and of the JVM's own stdout/stderr.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {} ---\n{}\n--- {} ---\n{}",
            self.server_log().display(),
            tail(&self.server_log(), lines),
            "broker stdout/stderr",
            tail(&self.work_dir.join("logs").join("broker.out"), 20)
        )
    }

    /// Writes a Java client config for a SASL listener (`tls`: SASL_SSL trusting `ca`, else
    /// SASL_PLAINTEXT) and returns its path, for `--command-config` and the like.
    /// `mechanism` is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub fn sasl_client_config(
        &self,
        tls: Option<&Path>,
        mechanism: &str,
        user: &str,
        password: &str,
    ) -> PathBuf {
        let module = if mechanism == "PLAIN" {
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        } else {
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        };
        let mut text = format!(
            "security.protocol={}\nsasl.mechanism={mechanism}\n\
             sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";\n",
            if tls.is_some() {
                "SASL_SSL"
            } else {
                "SASL_PLAINTEXT"
            }
        );
        if let Some(ca) = tls {
            let _ = write!(
                text,
                "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
                ca.display()
            );
        }
        let path = self
            .work_dir
            .join(format!("{}.properties", super::unique("client")));
        fs::write(&path, text).expect("write client config");
        path
    }

    // ---- Java tools ----------------------------------------------------------------------

    /// Runs `java -cp 'LIBS/*:KOTOOL' CLASS ARGS` (small heap, WARN logs to stderr), killed after
    /// 120 s (then stderr ends with a note and the status is a failure).
    pub fn java(&self, class: &str, args: &[&str]) -> Output {
        self.java_with_timeout(class, args, TOOL_TIMEOUT)
    }

    pub fn java_with_timeout(&self, class: &str, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = java_command(&self.cache, &self.work_dir, class);
        cmd.args(args);
        run_with_timeout(cmd, timeout)
    }

    /// Like [`Broker::java`], but panics with stdout and stderr unless the exit code is 0.
    pub fn java_ok(&self, class: &str, args: &[&str]) -> Output {
        let out = self.java(class, args);
        expect_success(&format!("java {class} {}", args.join(" ")), &out);
        out
    }

    /// Creates a topic (replication factor 1) with `TopicCommand`, then waits until the broker's
    /// metadata serves it with `partitions` led partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let bootstrap = self.plaintext();
        let partitions_arg = partitions.to_string();
        #[rustfmt::skip]
        let args = [
            "--bootstrap-server", &bootstrap, "--create", "--topic", name,
            "--partitions", &partitions_arg, "--replication-factor", "1",
        ];
        self.java_ok("org.apache.kafka.tools.TopicCommand", &args);
        self.wait_for_partitions(name, partitions);
    }

    /// Grows a topic to `total` partitions (`TopicCommand --alter`), then waits for the metadata.
    pub fn add_partitions(&self, name: &str, total: i32) {
        let bootstrap = self.plaintext();
        let total_arg = total.to_string();
        #[rustfmt::skip]
        let args = [
            "--bootstrap-server", &bootstrap, "--alter", "--topic", name,
            "--partitions", &total_arg,
        ];
        self.java_ok("org.apache.kafka.tools.TopicCommand", &args);
        self.wait_for_partitions(name, total);
    }

    /// Polls a Metadata request until `topic` has exactly `partitions` partitions, all led.
    pub fn wait_for_partitions(&self, topic: &str, partitions: i32) {
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        let want = usize::try_from(partitions).expect("partition count");
        loop {
            let seen = metadata::ready_partitions(&self.plaintext(), topic);
            if seen == Some(want) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "harness: topic {topic} not served with {want} partitions after {} s (saw {seen:?})",
                    TOPIC_TIMEOUT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Produces exactly `count` small records (`key-i`/`value-i`) to that partition with the Java
    /// producer (acks=all, idempotent). Returns the offsets they got.
    pub fn produce(&self, topic: &str, partition: i32, count: u32) -> Range<i64> {
        self.kotool(&["produce", topic, &partition.to_string(), &count.to_string()])
    }

    /// `count` records to each `(partition, count)` from one producer with one flush, so they
    /// land within milliseconds of each other (one observer cycle sees them all).
    pub fn produce_spread(&self, topic: &str, parts: &[(i32, u32)]) {
        let spec: Vec<String> = parts.iter().map(|(p, n)| format!("{p}:{n}")).collect();
        self.kotool(&["produce-spread", topic, &spec.join(",")]);
    }

    /// Like [`Broker::produce`] inside one transaction, then commit or abort. The log end offset
    /// grows by `count + 1` (the control marker; it may land a moment after this returns).
    pub fn produce_txn(&self, topic: &str, partition: i32, count: u32, commit: bool) -> Range<i64> {
        let end = if commit { "commit" } else { "abort" };
        self.kotool(&[
            "produce-txn",
            topic,
            &partition.to_string(),
            &count.to_string(),
            end,
        ])
    }

    /// Sets `group`'s committed offset for one partition (consumer `assign` + `commitSync`, no
    /// group membership; fails if the group has active members).
    pub fn commit_offset(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        self.kotool(&[
            "commit",
            group,
            topic,
            &partition.to_string(),
            &offset.to_string(),
        ]);
    }

    fn kotool(&self, args: &[&str]) -> Range<i64> {
        let bootstrap = self.plaintext();
        let mut all = vec![bootstrap.as_str()];
        all.extend_from_slice(args);
        let out = self.java_ok("KoTool", &all);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let offsets = stdout.lines().find_map(|l| {
            let mut it = l.strip_prefix("offsets ")?.split(' ');
            let first: i64 = it.next()?.parse().ok()?;
            let last: i64 = it.next()?.parse().ok()?;
            Some(if first < 0 { 0..0 } else { first..last + 1 })
        });
        offsets.unwrap_or(0..0)
    }

    /// `ProducerPerformance` writing `records` records of 100 bytes with a transactional producer
    /// (a transaction every 100 ms). Panics unless it exits 0; returns its output.
    pub fn producer_perf_txn(&self, topic: &str, records: u64, transactional_id: &str) -> Output {
        let bootstrap = format!("bootstrap.servers={}", self.plaintext());
        let records = records.to_string();
        #[rustfmt::skip]
        let args = [
            "--topic", topic, "--num-records", &records, "--record-size", "100",
            "--throughput", "-1", "--producer-props", &bootstrap,
            "--transactional-id", transactional_id, "--transaction-duration-ms", "100",
        ];
        let class = "org.apache.kafka.tools.ProducerPerformance";
        let out = self.java_with_timeout(class, &args, Duration::from_secs(300));
        expect_success(&format!("java {class} {}", args.join(" ")), &out);
        out
    }

    /// `ConsumerGroupCommand --describe --group G`, parsed. Empty if the group does not exist or
    /// has no committed offsets.
    pub fn describe_group(&self, group: &str) -> Vec<GroupRow> {
        let bootstrap = self.plaintext();
        let class = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
        let args = [
            "--bootstrap-server",
            &bootstrap,
            "--describe",
            "--group",
            group,
        ];
        let out = self.java(class, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("does not exist") {
            expect_success(&format!("java {class} {}", args.join(" ")), &out);
        }
        parse_group_table(&String::from_utf8_lossy(&out.stdout))
    }
}

/// A private broker stops when dropped. (The shared one is a static, never dropped: its watchdog
/// stops it when the test process exits.)
impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn java_command(cache: &Cache, work_dir: &Path, class: &str) -> Command {
    let mut classpath = cache.libs.join("*").into_os_string();
    classpath.push(":");
    classpath.push(&cache.kotool);
    let mut cmd = Command::new("java");
    cmd.args(TOOL_JVM)
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            work_dir.join("tools-log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(classpath)
        .arg(class);
    cmd
}

fn new_work_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kafka-observer-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    // Same pid and counter can only be a leftover of a dead process.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Waits for the watchdog to write java's pid.
fn read_pid(path: &Path, child: &mut Child) -> Result<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return Ok(pid);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "harness: broker watchdog exited at once ({status})"
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Err("harness: broker watchdog wrote no pid".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `kafka.tools.StorageTool format` with a fresh cluster id and the SCRAM users.
fn format_storage(cache: &Cache, work_dir: &Path) {
    let mut cmd = java_command(cache, work_dir, "kafka.tools.StorageTool");
    cmd.arg("format")
        .arg("-t")
        .arg(cluster_id())
        .arg("-c")
        .arg(work_dir.join("server.properties"));
    for (user, password) in USERS {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            cmd.arg("--add-scram")
                .arg(format!("{mechanism}=[name={user},password={password}]"));
        }
    }
    let out = run_with_timeout(cmd, TOOL_TIMEOUT);
    expect_success("kafka.tools.StorageTool format", &out);
}

/// A Kafka `Uuid` string: 16 random bytes, base64url without padding, not starting with '-'.
fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    loop {
        let bytes = random_bytes(16);
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut out = String::new();
        for b in bytes {
            bits = (bits << 8) | u32::from(b);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
            }
        }
        if nbits > 0 {
            out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
        }
        if !out.starts_with('-') {
            return out;
        }
    }
}

/// A PEM file as one `.properties` value line: newlines become a literal `\n`.
fn pem_one_line(path: &Path) -> String {
    let pem = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    pem.trim().lines().collect::<Vec<_>>().join("\\n")
}

fn server_properties(work_dir: &Path, tls: &Tls, p: Ports) -> String {
    let plain_users: String = USERS
        .iter()
        .map(|(u, pw)| format!(" user_{u}=\"{pw}\""))
        .collect();
    let mut chain = pem_one_line(&tls.server_cert);
    chain.push_str("\\n");
    chain.push_str(&pem_one_line(&tls.ca_cert));
    let mut s = format!(
        "\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{ctrl}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:{pt},SASL_PLAINTEXT://127.0.0.1:{sp},SASL_SSL://127.0.0.1:{ss},CONTROLLER://127.0.0.1:{ctrl}
advertised.listeners=PLAINTEXT://127.0.0.1:{pt},SASL_PLAINTEXT://127.0.0.1:{sp},SASL_SSL://127.0.0.1:{ss}
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
num.network.threads=2
num.io.threads=4
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
ssl.keystore.type=PEM
ssl.keystore.certificate.chain={chain}
ssl.keystore.key={key}
",
        ctrl = p.controller,
        pt = p.plaintext,
        sp = p.sasl_plaintext,
        ss = p.sasl_ssl,
        data = work_dir.join("data").display(),
        key = pem_one_line(&tls.server_key),
    );
    for listener in ["sasl_plaintext", "sasl_ssl"] {
        let _ = writeln!(
            s,
            "listener.name.{listener}.plain.sasl.jaas.config=\
             org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};"
        );
        for mech in ["scram-sha-256", "scram-sha-512"] {
            let _ = writeln!(
                s,
                "listener.name.{listener}.{mech}.sasl.jaas.config=\
                 org.apache.kafka.common.security.scram.ScramLoginModule required;"
            );
        }
    }
    s
}

fn broker_log4j2(log_file: &Path) -> String {
    format!(
        "\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
",
        log_file.display()
    )
}

/// Java tools: warnings and errors only, to stderr, so stdout is just the tool's output.
const TOOLS_LOG4J2: &str = "\
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
";
