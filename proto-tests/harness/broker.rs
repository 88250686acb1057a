//! Real Apache Kafka brokers (KRaft combined mode): one node by default, or a cluster of N nodes on
//! loopback, of the pinned version or another one (3.7+ / 4.x), and blocking helpers that drive
//! them with the official Java tools of the same version. See `proto-tests/README.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::cache::{self, Cache};
use super::metadata::{self, Metadata};
use super::process::{expect_success, kill, random_bytes, run_with_timeout, tail};
use super::tls::{self, Tls};
use super::{parse_group_table, GroupRow, KAFKA_VERSION, USERS};

/// How long the brokers may take to open their client ports and see each other (the CI machine
/// has 2 slow cores; a 3-node cluster starts three JVMs at once).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Default deadline for one Java tool run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a freshly created/altered topic may take to show up in the brokers' metadata.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a leadership change may take to show in every live node's metadata.
const LEADER_TIMEOUT: Duration = Duration::from_secs(90);
/// TERM → KILL grace period of `stop_node` (controlled shutdown moves leaders first).
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Start attempts (new ports each time) when a broker exits early, e.g. a port was taken.
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

/// Watchdog around one broker JVM: `sh -c SCRIPT sh TEST_PID NODE_DIR WORK_DIR JAVA ARGS...`.
/// It records java's pid, and when the test process is gone (Rust never drops statics) it sends
/// TERM to java, then KILL after 10 s. Once java is gone *and* the test process too, it removes
/// the node dir, and the work dir when no other node dir is left in it (for a single node both
/// are the same dir). A node stopped by the test (`stop_node`) keeps its dir for a restart.
const WATCHDOG: &str = r#"
t=$1; w=$2; r=$3; shift 3
"$@" >>"$w/logs/broker.out" 2>&1 &
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
if ! kill -0 "$t" 2>/dev/null && [ -z "${KO_KEEP_BROKER_DIR:-}" ]; then
  rm -rf "$w"
  if [ "$w" != "$r" ] && ! ls -d "$r"/node-* >/dev/null 2>&1; then rm -rf "$r"; fi
fi
exit "$rc"
"#;

/// What to start: see [`Broker::start_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Apache Kafka version: the pinned [`KAFKA_VERSION`] by default; also 3.7+ (tested: 3.9.1).
    pub version: &'static str,
    /// KRaft combined nodes on loopback (1 = the classic single broker). With N > 1: replication
    /// factor N for new topics and internal topics, `min.insync.replicas` = min(2, N).
    pub nodes: u32,
    /// Also open the SASL_PLAINTEXT and SASL_SSL listeners (TLS material, SCRAM users). Default on.
    pub sasl: bool,
    /// Enforce ACLs with KRaft's `StandardAuthorizer`. Default off. `super.users` is
    /// `User:ANONYMOUS`, the principal of every PLAINTEXT connection: the inter-broker and
    /// controller listeners and every harness helper and Java tool. `allow.everyone.if.no.acl.found`
    /// is true, so only resources that have ACLs are restricted (add them with [`Broker::acl`]).
    /// Also adds the SASL user [`super::DESCRIBER`].
    pub authorizer: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            version: KAFKA_VERSION,
            nodes: 1,
            sasl: true,
            authorizer: false,
        }
    }
}

/// Major and minor of a version string like "3.9.1".
fn major_minor(version: &str) -> (u32, u32) {
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Kafka 3.x logs through log4j 1.x (reload4j), 4.x through log4j2.
fn uses_log4j1(version: &str) -> bool {
    major_minor(version).0 < 4
}

#[derive(Clone, Copy, Debug)]
struct Ports {
    plaintext: u16,
    sasl_plaintext: u16,
    sasl_ssl: u16,
    /// SASL_PLAINTEXT with OAUTHBEARER (unsecured JWTs) and SCRAM-SHA-512, short sessions.
    sasl_oauth: u16,
    controller: u16,
}

impl Ports {
    /// `n` sets of five distinct free ports: bind port 0 (all at once, so none repeats), note the
    /// ports, release. A race with another process is possible; `Broker::start_with` retries with
    /// new ports when a broker then fails to bind.
    fn pick(n: usize) -> Vec<Ports> {
        let listeners: Vec<TcpListener> = (0..5 * n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let port = |i: usize| listeners[i].local_addr().expect("local_addr").port();
        (0..n)
            .map(|k| Ports {
                plaintext: port(5 * k),
                sasl_plaintext: port(5 * k + 1),
                sasl_ssl: port(5 * k + 2),
                controller: port(5 * k + 3),
                sasl_oauth: port(5 * k + 4),
            })
            .collect()
    }
}

/// One KRaft combined node: its dir holds `server.properties`, the log config, `data/`, `logs/`
/// and `java.pid`.
struct Node {
    id: i32,
    dir: PathBuf,
    ports: Ports,
    /// The running JVM's pid and its `sh` watchdog (parent of the JVM); `None` while stopped.
    proc: Mutex<Option<(u32, Child)>>,
}

impl Node {
    fn plaintext(&self) -> String {
        format!("127.0.0.1:{}", self.ports.plaintext)
    }

    /// True while the JVM runs (reaps the watchdog when it has exited).
    fn is_running(&self) -> bool {
        self.exit_status().is_none()
            && self
                .proc
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }

    /// `Some(status)` if the JVM (and its watchdog) exited since it was started; the node is then
    /// marked stopped.
    fn exit_status(&self) -> Option<String> {
        let mut guard = self.proc.lock().unwrap_or_else(|e| e.into_inner());
        let (_, child) = guard.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                *guard = None;
                Some(status.to_string())
            }
            Ok(None) => None,
            Err(e) => Some(format!("wait failed: {e}")),
        }
    }

    /// `signal` (TERM or KILL) to the JVM; returns the watchdog to wait for (`None` if not
    /// running).
    fn signal_stop(&self, signal: &str) -> Option<(u32, Child)> {
        let mut guard = self.proc.lock().unwrap_or_else(|e| e.into_inner());
        let (pid, mut child) = guard.take()?;
        if matches!(child.try_wait(), Ok(None)) {
            kill(pid, signal);
        }
        Some((pid, child))
    }

    fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- node {} {} ---\n{}\n--- node {} broker stdout/stderr ---\n{}",
            self.id,
            self.dir.join("logs").join("server.log").display(),
            tail(&self.dir.join("logs").join("server.log"), lines),
            self.id,
            tail(&self.dir.join("logs").join("broker.out"), 20)
        )
    }
}

/// Waits up to `timeout` for a TERMed watchdog to exit, then KILLs the JVM.
fn finish_stop((pid, mut child): (u32, Child), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    if matches!(child.try_wait(), Ok(None)) {
        kill(pid, "KILL");
    }
    let _ = child.wait();
}

/// A running broker, or a cluster of nodes. Obtain the shared one with [`super::broker()`].
pub struct Broker {
    opts: Options,
    work_dir: PathBuf,
    cache: Cache,
    tls: Tls,
    nodes: Vec<Node>,
    stopped: AtomicBool,
}

enum Outcome {
    Ready,
    Exited(i32, String),
    TimedOut(String),
}

impl Broker {
    /// The default: a single node of the pinned version with all listeners. Blocks until ready.
    pub fn start() -> Result<Broker, String> {
        Broker::start_with(Options::default())
    }

    /// Downloads/compiles what is missing for `opts.version`, generates TLS material, formats
    /// storage (one cluster id, SCRAM users) and starts `opts.nodes` nodes; blocks until every
    /// node's client ports accept TCP and every node's metadata lists every node as a live broker.
    pub fn start_with(opts: Options) -> Result<Broker, String> {
        let (major, minor) = major_minor(opts.version);
        if !(major >= 4 || (major == 3 && minor >= 7)) {
            return Err(format!(
                "harness: Kafka {} is not supported (3.7+ or 4.x: tool class names differ before)",
                opts.version
            ));
        }
        if opts.nodes == 0 {
            return Err("harness: a cluster needs at least one node".into());
        }
        let started = Instant::now();
        let cache = cache::ensure(opts.version);
        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            // A fresh work dir per attempt: a failed attempt's dir goes with its `Broker`.
            let work_dir = new_work_dir();
            let tls = tls::generate(&work_dir.join("tls"));
            let broker = Broker::prepare(&opts, &work_dir, cache.clone(), tls);
            for node in &broker.nodes {
                broker.spawn(node)?;
            }
            match broker.wait_ready() {
                Outcome::Ready => {
                    let mut msg = format!(
                        "harness: Kafka {} ready in {:.1} s (attempt {attempt}, {} node(s)); work dir {}",
                        opts.version,
                        started.elapsed().as_secs_f64(),
                        broker.nodes.len(),
                        work_dir.display()
                    );
                    for n in &broker.nodes {
                        let _ = write!(msg, "\n  node {}: plaintext {}", n.id, n.plaintext());
                        if opts.sasl {
                            let _ = write!(
                                msg,
                                " sasl_plaintext 127.0.0.1:{} sasl_ssl 127.0.0.1:{} sasl_oauth 127.0.0.1:{}",
                                n.ports.sasl_plaintext, n.ports.sasl_ssl, n.ports.sasl_oauth
                            );
                        }
                    }
                    eprintln!("{msg}");
                    return Ok(broker);
                }
                Outcome::Exited(id, status) => {
                    let _ = writeln!(
                        failures,
                        "attempt {attempt}: node {id} exited early ({status}); log tail:\n{}\n",
                        broker.node(id).log_tail(40)
                    );
                    broker.stop();
                    continue;
                }
                Outcome::TimedOut(what) => {
                    let msg = format!(
                        "harness: Kafka {} not ready after {} s ({what}); log tails:\n{}",
                        opts.version,
                        READY_TIMEOUT.as_secs(),
                        broker.log_tail(60)
                    );
                    broker.stop();
                    return Err(msg);
                }
            }
        }
        Err(format!(
            "harness: Kafka {} failed to start {START_ATTEMPTS} times:\n{failures}",
            opts.version
        ))
    }

    /// Writes every node's config and formats its storage (in parallel, one cluster id).
    fn prepare(opts: &Options, work_dir: &Path, cache: Cache, tls: Tls) -> Broker {
        let n = opts.nodes as usize;
        let log4j1 = uses_log4j1(opts.version);
        let (tools_name, tools_text) = if log4j1 {
            ("tools-log4j.properties", TOOLS_LOG4J1)
        } else {
            ("tools-log4j2.properties", TOOLS_LOG4J2)
        };
        fs::write(work_dir.join(tools_name), tools_text).expect("write tools log config");
        let ports = Ports::pick(n);
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.controller))
            .collect::<Vec<_>>()
            .join(",");
        let nodes: Vec<Node> = ports
            .into_iter()
            .enumerate()
            .map(|(i, ports)| {
                let id = i as i32 + 1;
                let dir = if n == 1 {
                    work_dir.to_path_buf()
                } else {
                    work_dir.join(format!("node-{id}"))
                };
                for d in ["data", "logs"] {
                    fs::create_dir_all(dir.join(d)).expect("create broker dir");
                }
                let props = server_properties(opts, id, &dir, &voters, &tls, ports);
                fs::write(dir.join("server.properties"), props).expect("write server.properties");
                let log = dir.join("logs").join("server.log");
                if log4j1 {
                    fs::write(dir.join("log4j.properties"), broker_log4j1(&log))
                } else {
                    fs::write(dir.join("log4j2.properties"), broker_log4j2(&log))
                }
                .expect("write broker log config");
                Node {
                    id,
                    dir,
                    ports,
                    proc: Mutex::new(None),
                }
            })
            .collect();
        let broker = Broker {
            opts: opts.clone(),
            work_dir: work_dir.to_path_buf(),
            cache,
            tls,
            nodes,
            stopped: AtomicBool::new(false),
        };
        let cluster_id = cluster_id();
        thread::scope(|s| {
            let jobs: Vec<_> = broker
                .nodes
                .iter()
                .map(|node| s.spawn(|| broker.format_storage(node, &cluster_id)))
                .collect();
            for j in jobs {
                if let Err(panic) = j.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        });
        broker
    }

    /// Starts the node's JVM under a watchdog (config and storage must exist).
    fn spawn(&self, node: &Node) -> Result<(), String> {
        let _ = fs::remove_file(node.dir.join("java.pid"));
        let log_prop = if uses_log4j1(self.opts.version) {
            format!(
                "-Dlog4j.configuration=file:{}",
                node.dir.join("log4j.properties").display()
            )
        } else {
            format!(
                "-Dlog4j2.configurationFile={}",
                node.dir.join("log4j2.properties").display()
            )
        };
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(std::process::id().to_string())
            .arg(&node.dir)
            .arg(&self.work_dir)
            .arg("java")
            .args(BROKER_JVM)
            .arg(log_prop)
            .arg("-cp")
            .arg(self.cache.libs.join("*"))
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Own process group: a Ctrl-C aimed at `cargo test` does not hit the broker directly;
        // the watchdog notices the test process is gone and stops it cleanly.
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut child = sh
            .spawn()
            .map_err(|e| format!("harness: cannot start sh: {e}"))?;
        let pid = read_pid(&node.dir.join("java.pid"), &mut child)?;
        *node.proc.lock().unwrap_or_else(|e| e.into_inner()) = Some((pid, child));
        Ok(())
    }

    /// Ready = every running node accepts TCP on its client ports and lists every running node
    /// as a live broker in its metadata.
    fn wait_ready(&self) -> Outcome {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut waiting_for;
        loop {
            for node in &self.nodes {
                if let Some(status) = node.exit_status() {
                    return Outcome::Exited(node.id, status);
                }
            }
            match self.not_ready() {
                None => return Outcome::Ready,
                Some(what) => waiting_for = what,
            }
            if Instant::now() >= deadline {
                return Outcome::TimedOut(waiting_for);
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// What the running nodes still lack, or `None` when they are all ready.
    fn not_ready(&self) -> Option<String> {
        let running = self.running_nodes();
        for node in &self.nodes {
            if !running.contains(&node.id) {
                continue;
            }
            let mut ports = vec![node.ports.plaintext];
            if self.opts.sasl {
                ports.extend([
                    node.ports.sasl_plaintext,
                    node.ports.sasl_ssl,
                    node.ports.sasl_oauth,
                ]);
            }
            for p in ports {
                let addr = SocketAddr::from(([127, 0, 0, 1], p));
                if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                    return Some(format!("node {} port {p} closed", node.id));
                }
            }
            match metadata::fetch(&node.plaintext(), &[]) {
                Some(md) if md.brokers == running => {}
                Some(md) => {
                    return Some(format!(
                        "node {} lists live brokers {:?}, want {running:?}",
                        node.id, md.brokers
                    ))
                }
                None => return Some(format!("node {} answers no metadata", node.id)),
            }
        }
        None
    }

    /// Stops every node (TERM, then KILL after 30 s) and removes the work dir. Idempotent. The
    /// shared broker is also stopped automatically when the test process exits; a private one
    /// (from [`Broker::start`] / [`Broker::start_with`]) when dropped. A cluster's nodes get KILL
    /// at once (their data is deleted anyway; a simultaneous controlled shutdown of every node
    /// only costs seconds), unless `KO_KEEP_BROKER_DIR` is set.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let keep = std::env::var_os("KO_KEEP_BROKER_DIR").is_some();
        let signal = if self.nodes.len() > 1 && !keep {
            "KILL"
        } else {
            "TERM"
        };
        let stopping: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|n| n.signal_stop(signal))
            .collect();
        for s in stopping {
            finish_stop(s, Duration::from_secs(30));
        }
        if !keep {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }

    /// True while every node's JVM runs.
    pub fn is_running(&self) -> bool {
        self.nodes.iter().all(Node::is_running)
    }

    // ---- cluster -------------------------------------------------------------------------

    /// The Kafka version these nodes run.
    pub fn version(&self) -> &'static str {
        self.opts.version
    }

    /// Node ids, 1..=N.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Ids of the nodes whose JVM runs, sorted.
    pub fn running_nodes(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("harness: no node {id} (nodes {:?})", self.node_ids()))
    }

    /// Comma-separated PLAINTEXT addresses of all nodes (stopped ones too).
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(Node::plaintext)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Comma-separated PLAINTEXT addresses of the running nodes (what the helpers use).
    pub fn running_bootstrap(&self) -> String {
        let running = self.running_nodes();
        let list: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| running.contains(&n.id))
            .map(Node::plaintext)
            .collect();
        assert!(!list.is_empty(), "harness: no node is running");
        list.join(",")
    }

    /// `127.0.0.1:PORT` of one node's PLAINTEXT listener.
    pub fn node_plaintext(&self, id: i32) -> String {
        self.node(id).plaintext()
    }
    /// `127.0.0.1:PORT` of one node's SASL_PLAINTEXT listener.
    pub fn node_sasl_plaintext(&self, id: i32) -> String {
        self.need_sasl();
        format!("127.0.0.1:{}", self.node(id).ports.sasl_plaintext)
    }
    /// `127.0.0.1:PORT` of one node's SASL_SSL listener.
    pub fn node_sasl_ssl(&self, id: i32) -> String {
        self.need_sasl();
        format!("127.0.0.1:{}", self.node(id).ports.sasl_ssl)
    }
    /// `127.0.0.1:PORT` of one node's SASL_OAUTH listener (see [`Broker::sasl_oauth`]).
    pub fn node_sasl_oauth(&self, id: i32) -> String {
        self.need_sasl();
        format!("127.0.0.1:{}", self.node(id).ports.sasl_oauth)
    }

    pub fn is_node_running(&self, id: i32) -> bool {
        self.node(id).is_running()
    }

    /// Stops one node: TERM (a controlled shutdown moves its leaderships away), waits for the JVM
    /// to exit (KILL after 60 s). Its data and config stay for [`Broker::start_node`]. Then waits
    /// until every remaining node's metadata no longer lists it as a live broker.
    pub fn stop_node(&self, id: i32) {
        if let Some(s) = self.node(id).signal_stop("TERM") {
            finish_stop(s, NODE_STOP_TIMEOUT);
        }
        self.await_converged(&format!("node {id} stopped"));
    }

    /// Crashes one node: KILL, no controlled shutdown, so its leaderships stay until the
    /// controller fences it (`broker.session.timeout.ms`, 9 s by default). Waits until the
    /// remaining nodes no longer list it as a live broker. [`Broker::start_node`] restarts it.
    pub fn kill_node(&self, id: i32) {
        if let Some(s) = self.node(id).signal_stop("KILL") {
            finish_stop(s, NODE_STOP_TIMEOUT);
        }
        self.await_converged(&format!("node {id} killed"));
    }

    /// Restarts a stopped node with the same config, data and ports; blocks until it is ready and
    /// every running node lists every running node (no-op if it runs).
    pub fn start_node(&self, id: i32) {
        let node = self.node(id);
        if node.is_running() {
            return;
        }
        self.spawn(node).unwrap_or_else(|e| panic!("{e}"));
        match self.wait_ready() {
            Outcome::Ready => {}
            Outcome::Exited(n, status) => panic!(
                "harness: node {n} exited ({status}) while restarting node {id}:\n{}",
                self.node(n).log_tail(60)
            ),
            Outcome::TimedOut(what) => panic!(
                "harness: node {id} not ready after restart ({what}):\n{}",
                self.log_tail(40)
            ),
        }
    }

    /// Polls until the running nodes agree on the live broker set (= the running nodes).
    fn await_converged(&self, what: &str) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let Some(missing) = self.not_ready() else {
                return;
            };
            if Instant::now() >= deadline {
                panic!(
                    "harness: cluster did not settle after {what} within {} s: {missing}",
                    READY_TIMEOUT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Metadata for `topics` as seen by every running node (node id → view); nodes that do not
    /// answer are left out.
    pub fn metadata_views(&self, topics: &[&str]) -> BTreeMap<i32, Metadata> {
        self.running_nodes()
            .into_iter()
            .filter_map(|id| Some((id, metadata::fetch(&self.node(id).plaintext(), topics)?)))
            .collect()
    }

    /// Metadata for `topics` from the first running node that answers.
    pub fn metadata(&self, topics: &[&str]) -> Option<Metadata> {
        self.running_nodes()
            .into_iter()
            .find_map(|id| metadata::fetch(&self.node(id).plaintext(), topics))
    }

    /// The leader of a partition on which every running node agrees (polls; panics after 90 s).
    pub fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        self.await_leader(topic, partition, "a leader", |_| true)
    }

    /// Polls until every running node reports the same leader for the partition and `accept`
    /// holds for it; returns it. Panics after 90 s with the last views.
    pub fn await_leader(
        &self,
        topic: &str,
        partition: i32,
        what: &str,
        accept: impl Fn(i32) -> bool,
    ) -> i32 {
        let deadline = Instant::now() + LEADER_TIMEOUT;
        loop {
            let running = self.running_nodes();
            let views = self.metadata_views(&[topic]);
            let leaders: Vec<i32> = views
                .values()
                .map(|md| md.partition(topic, partition).map_or(-1, |p| p.leader))
                .collect();
            if views.len() == running.len()
                && !leaders.is_empty()
                && leaders.iter().all(|l| *l == leaders[0])
                && running.contains(&leaders[0])
                && accept(leaders[0])
            {
                return leaders[0];
            }
            if Instant::now() >= deadline {
                panic!(
                    "harness: {topic}-{partition}: no agreement on {what} within {} s; \
                     running {running:?}, leaders per node {:?}",
                    LEADER_TIMEOUT.as_secs(),
                    views
                        .iter()
                        .map(|(id, md)| (*id, md.partition(topic, partition).cloned()))
                        .collect::<Vec<_>>()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Moves a partition's leadership to node `to` without stopping anything: reorders the replica
    /// list with `to` first (`ReassignPartitionsCommand`, no data moves), then runs a preferred
    /// leader election (`LeaderElectionCommand`) once `to` is in the ISR. Blocks until every
    /// running node reports `to` as the leader. `to` must already be a replica.
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) {
        let deadline = Instant::now() + LEADER_TIMEOUT;
        let replicas = loop {
            let md = self.metadata(&[topic]);
            let p = md.as_ref().and_then(|m| m.partition(topic, partition));
            if let Some(p) = p.filter(|p| p.isr.contains(&to)) {
                assert!(
                    p.replicas.contains(&to),
                    "harness: node {to} is not a replica of {topic}-{partition}: {p:?}"
                );
                break p.replicas.clone();
            }
            assert!(
                Instant::now() < deadline,
                "harness: node {to} not in the ISR of {topic}-{partition}: {p:?}"
            );
            thread::sleep(Duration::from_millis(200));
        };
        let bootstrap = self.running_bootstrap();
        if replicas[0] != to {
            let mut order = vec![to];
            order.extend(replicas.iter().copied().filter(|r| *r != to));
            let order_json: Vec<String> = order.iter().map(i32::to_string).collect();
            let plan = self
                .work_dir
                .join(format!("{}.json", super::unique("reassign")));
            fs::write(
                &plan,
                format!(
                    "{{\"version\":1,\"partitions\":[{{\"topic\":\"{topic}\",\"partition\":{partition},\"replicas\":[{}]}}]}}",
                    order_json.join(",")
                ),
            )
            .expect("write reassignment plan");
            let plan = plan.to_str().expect("utf-8 path").to_string();
            self.java_ok(
                "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                &[
                    "--bootstrap-server",
                    &bootstrap,
                    "--reassignment-json-file",
                    &plan,
                    "--execute",
                ],
            );
            // A reorder needs no data movement: wait until the new order is served.
            loop {
                let md = self.metadata(&[topic]);
                let p = md.as_ref().and_then(|m| m.partition(topic, partition));
                if p.is_some_and(|p| p.replicas == order) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "harness: reassignment of {topic}-{partition} to {order:?} not applied: {p:?}"
                );
                thread::sleep(Duration::from_millis(200));
            }
        }
        let part = partition.to_string();
        self.java_ok(
            "org.apache.kafka.tools.LeaderElectionCommand",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--election-type",
                "preferred",
                "--topic",
                topic,
                "--partition",
                &part,
            ],
        );
        self.await_leader(topic, partition, &format!("leader {to}"), |l| l == to);
    }

    // ---- addresses and files -------------------------------------------------------------

    fn need_sasl(&self) {
        assert!(
            self.opts.sasl,
            "harness: this broker was started without SASL listeners (Options.sasl = false)"
        );
    }

    /// `127.0.0.1:PORT` of the PLAINTEXT listener (of node 1 in a cluster).
    pub fn plaintext(&self) -> String {
        self.nodes[0].plaintext()
    }
    /// `127.0.0.1:PORT` of the SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); node 1's.
    pub fn sasl_plaintext(&self) -> String {
        self.node_sasl_plaintext(self.nodes[0].id)
    }
    /// `127.0.0.1:PORT` of the SASL_SSL listener (same mechanisms; cert for 127.0.0.1/localhost); node 1's.
    pub fn sasl_ssl(&self) -> String {
        self.node_sasl_ssl(self.nodes[0].id)
    }
    /// `127.0.0.1:PORT` of the SASL_OAUTH listener (node 1's): SASL_PLAINTEXT with OAUTHBEARER
    /// (Kafka's unsecured validator: `alg: none` JWTs with `sub` and `exp`) and SCRAM-SHA-512
    /// ([`super::USERS`]), both with `connections.max.reauth.ms` = [`super::OAUTH_REAUTH_MS`], so
    /// clients must re-authenticate (KIP-368) to keep a connection.
    pub fn sasl_oauth(&self) -> String {
        self.node_sasl_oauth(self.nodes[0].id)
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
    /// The broker's log (INFO); node 1's in a cluster (see [`Broker::node_server_log`]).
    pub fn server_log(&self) -> PathBuf {
        self.nodes[0].dir.join("logs").join("server.log")
    }
    pub fn node_server_log(&self, id: i32) -> PathBuf {
        self.node(id).dir.join("logs").join("server.log")
    }
    /// The last `lines` lines of the server log and of the JVM's own stdout/stderr, per node.
    pub fn log_tail(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .map(|n| n.log_tail(lines))
            .collect::<Vec<_>>()
            .join("\n")
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

    /// Runs `java -cp 'LIBS/*:KOTOOL' CLASS ARGS` with this broker's Kafka version (small heap,
    /// WARN logs to stderr), killed after 120 s (then stderr ends with a note and the status is a
    /// failure).
    pub fn java(&self, class: &str, args: &[&str]) -> Output {
        self.java_with_timeout(class, args, TOOL_TIMEOUT)
    }

    pub fn java_with_timeout(&self, class: &str, args: &[&str], timeout: Duration) -> Output {
        let mut cmd = self.java_command(class);
        cmd.args(args);
        run_with_timeout(cmd, timeout)
    }

    /// Like [`Broker::java`], but panics with stdout and stderr unless the exit code is 0.
    pub fn java_ok(&self, class: &str, args: &[&str]) -> Output {
        let out = self.java(class, args);
        expect_success(&format!("java {class} {}", args.join(" ")), &out);
        out
    }

    fn java_command(&self, class: &str) -> Command {
        let mut classpath = self.cache.libs.join("*").into_os_string();
        classpath.push(":");
        classpath.push(&self.cache.kotool);
        let log_prop = if uses_log4j1(self.opts.version) {
            format!(
                "-Dlog4j.configuration=file:{}",
                self.work_dir.join("tools-log4j.properties").display()
            )
        } else {
            format!(
                "-Dlog4j2.configurationFile={}",
                self.work_dir.join("tools-log4j2.properties").display()
            )
        };
        let mut cmd = Command::new("java");
        cmd.args(TOOL_JVM)
            .arg(log_prop)
            .arg("-cp")
            .arg(classpath)
            .arg(class);
        cmd
    }

    /// `kafka.tools.StorageTool format` of one node with `cluster_id` and the SCRAM users.
    fn format_storage(&self, node: &Node, cluster_id: &str) {
        let mut cmd = self.java_command("kafka.tools.StorageTool");
        cmd.arg("format")
            .arg("-t")
            .arg(cluster_id)
            .arg("-c")
            .arg(node.dir.join("server.properties"));
        for (user, password) in sasl_users(&self.opts) {
            for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                cmd.arg("--add-scram")
                    .arg(format!("{mechanism}=[name={user},password={password}]"));
            }
        }
        let out = run_with_timeout(cmd, TOOL_TIMEOUT);
        expect_success(
            &format!(
                "kafka.tools.StorageTool format (Kafka {}, node {})",
                self.opts.version, node.id
            ),
            &out,
        );
    }

    /// Replication factor of new topics: the node count.
    pub fn replication_factor(&self) -> i32 {
        self.nodes.len() as i32
    }

    /// Creates a topic (replication factor = node count) with `TopicCommand`, then waits until
    /// every running node's metadata serves it with `partitions` led partitions.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let bootstrap = self.running_bootstrap();
        let partitions_arg = partitions.to_string();
        let rf = self.replication_factor().to_string();
        #[rustfmt::skip]
        let args = [
            "--bootstrap-server", &bootstrap, "--create", "--topic", name,
            "--partitions", &partitions_arg, "--replication-factor", &rf,
        ];
        self.java_ok("org.apache.kafka.tools.TopicCommand", &args);
        self.wait_for_partitions(name, partitions);
    }

    /// Grows a topic to `total` partitions (`TopicCommand --alter`), then waits for the metadata.
    pub fn add_partitions(&self, name: &str, total: i32) {
        let bootstrap = self.running_bootstrap();
        let total_arg = total.to_string();
        #[rustfmt::skip]
        let args = [
            "--bootstrap-server", &bootstrap, "--alter", "--topic", name,
            "--partitions", &total_arg,
        ];
        self.java_ok("org.apache.kafka.tools.TopicCommand", &args);
        self.wait_for_partitions(name, total);
    }

    /// Polls Metadata requests until every running node serves `topic` with exactly `partitions`
    /// partitions, all led.
    pub fn wait_for_partitions(&self, topic: &str, partitions: i32) {
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        let want = usize::try_from(partitions).expect("partition count");
        loop {
            let seen: Vec<(i32, Option<usize>)> = self
                .running_nodes()
                .into_iter()
                .map(|id| {
                    (
                        id,
                        metadata::ready_partitions(&self.node(id).plaintext(), topic),
                    )
                })
                .collect();
            if !seen.is_empty() && seen.iter().all(|(_, s)| *s == Some(want)) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "harness: topic {topic} not served with {want} partitions after {} s \
                     (per node: {seen:?})",
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

    /// One record per key (value `java-KEY`) from the Java producer with its default
    /// partitioner; returns key → the partition it chose.
    pub fn produce_keys(&self, topic: &str, keys: &[&str]) -> BTreeMap<String, i32> {
        let bootstrap = self.running_bootstrap();
        let mut args = vec![bootstrap.as_str(), "produce-keys", topic];
        args.extend_from_slice(keys);
        let out = self.java_ok("KoTool", &args);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.strip_prefix("key ")?.split(' ');
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect()
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

    /// Begins a transaction and writes `count` records to that partition (KoTool `txn-hold`), then
    /// keeps it open: the records are in the log and the high watermark moved past them, but the
    /// last stable offset stays at their first offset until [`OpenTxn::commit`] or
    /// [`OpenTxn::abort`] (dropping the handle aborts). The transaction times out after 5 min.
    pub fn open_txn(&self, topic: &str, partition: i32, count: u32) -> OpenTxn {
        let bootstrap = self.running_bootstrap();
        let (partition, count) = (partition.to_string(), count.to_string());
        let args = [bootstrap.as_str(), "txn-hold", topic, &partition, &count];
        let what = format!("java KoTool {}", args.join(" "));
        let mut cmd = self.java_command("KoTool");
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("harness: cannot start {what}: {e}"));
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = BufReader::new(err).read_to_end(&mut buf);
            buf
        });
        let mut txn = OpenTxn {
            what,
            child,
            stdin,
            lines,
            stderr: Some(stderr),
            offsets: 0..0,
        };
        let line = txn.await_line("offsets ");
        let mut it = line["offsets ".len()..].split(' ');
        let first: i64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .expect("first offset");
        let last: i64 = it.next().and_then(|v| v.parse().ok()).expect("last offset");
        txn.offsets = first..last + 1;
        txn
    }

    /// Runs Kafka's `AclCommand` (`kafka-acls`) against the running nodes' PLAINTEXT listeners
    /// (a super user on a broker with [`Options::authorizer`]) with `args`, e.g. `["--add",
    /// "--allow-principal", "User:describer", "--operation", "Describe", "--topic", T]`. Panics
    /// unless it exits 0. The broker applies a new ACL a moment after this returns.
    pub fn acl(&self, args: &[&str]) -> Output {
        let bootstrap = self.running_bootstrap();
        let class = if major_minor(self.opts.version).0 >= 4 {
            "org.apache.kafka.tools.AclCommand"
        } else {
            "kafka.admin.AclCommand"
        };
        let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
        all.extend_from_slice(args);
        self.java_ok(class, &all)
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

    /// Sets several committed offsets of an inactive `group` in one JVM run:
    /// `ConsumerGroupCommand --reset-offsets --from-file` with `topic,partition,offset` lines.
    /// Offsets must lie within the partitions' logs.
    pub fn commit_offsets(&self, group: &str, offsets: &[(&str, i32, i64)]) {
        let csv: String = offsets
            .iter()
            .map(|(t, p, o)| format!("{t},{p},{o}\n"))
            .collect();
        let file = self
            .work_dir
            .join(format!("{}.csv", super::unique("offsets")));
        fs::write(&file, csv).expect("write offsets csv");
        let bootstrap = self.running_bootstrap();
        #[rustfmt::skip]
        let args = [
            "--bootstrap-server", &bootstrap, "--group", group, "--reset-offsets",
            "--from-file", file.to_str().expect("utf-8 path"), "--execute",
        ];
        self.java_ok(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &args,
        );
    }

    fn kotool(&self, args: &[&str]) -> Range<i64> {
        let bootstrap = self.running_bootstrap();
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
        let bootstrap = format!("bootstrap.servers={}", self.running_bootstrap());
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

    /// `ConsumerGroupCommand --bootstrap-server B ARGS` (kafka-consumer-groups, this broker's
    /// version) with its output, whatever its exit code: for tests that compare its exact words.
    pub fn consumer_groups(&self, args: &[&str]) -> Output {
        let bootstrap = self.running_bootstrap();
        let mut all = vec!["--bootstrap-server", bootstrap.as_str()];
        all.extend_from_slice(args);
        self.java(
            "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
            &all,
        )
    }

    /// Starts a long-lived `java CLASS ARGS` (this broker's version and JVM settings), e.g. a
    /// ConsoleConsumer that stays in its group; output discarded. The caller stops it
    /// ([`JavaChild`] sends SIGTERM when dropped, so a Java client leaves its group cleanly).
    pub fn spawn_java(&self, class: &str, args: &[&str]) -> JavaChild {
        let mut cmd = self.java_command(class);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("harness: cannot start java {class}: {e}"));
        JavaChild(child)
    }

    /// `ConsumerGroupCommand --describe --group G` (this broker's version), parsed. Empty if the
    /// group does not exist or has no committed offsets.
    pub fn describe_group(&self, group: &str) -> Vec<GroupRow> {
        let bootstrap = self.running_bootstrap();
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

/// A Java program started by [`Broker::spawn_java`]: SIGTERM on drop (the JVM's shutdown hooks
/// run, clients leave their groups), SIGKILL if it has not exited 30 s later.
pub struct JavaChild(Child);

impl JavaChild {
    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for JavaChild {
    fn drop(&mut self) {
        kill(self.0.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A transaction held open by KoTool `txn-hold` ([`Broker::open_txn`]). Dropping it without
/// [`OpenTxn::commit`] aborts the transaction (the tool reads end of input), or kills the tool
/// after 30 s.
pub struct OpenTxn {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
    /// The offsets the transaction's records got.
    pub offsets: Range<i64>,
}

impl OpenTxn {
    /// Commits; returns once the producer's `commitTransaction` returned (the markers, and with
    /// them the last stable offset, may move a moment later).
    pub fn commit(mut self) {
        self.finish("commit");
    }

    /// Aborts; returns once the producer's `abortTransaction` returned.
    pub fn abort(mut self) {
        self.finish("abort");
    }

    fn finish(&mut self, how: &str) {
        let mut stdin = self.stdin.take().expect("transaction still open");
        writeln!(stdin, "{how}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("harness: {}: cannot write {how}: {e}", self.what));
        drop(stdin);
        let done = if how == "commit" {
            "committed"
        } else {
            "aborted"
        };
        self.await_line(done);
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => panic!("{}", self.failure(&format!("exited {status}"))),
                Ok(None) if Instant::now() >= deadline => {
                    panic!(
                        "{}",
                        self.failure("did not exit after the transaction ended")
                    )
                }
                Ok(None) => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("harness: waiting for {}: {e}", self.what),
            }
        }
    }

    /// The first stdout line starting with `prefix`; panics (with stderr) if the tool exits or
    /// [`TOOL_TIMEOUT`] passes first.
    fn await_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + TOOL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{}", self.failure(&format!("no '{prefix}' line in time")))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "{}",
                    self.failure(&format!("ended without a '{prefix}' line"))
                ),
            }
        }
    }

    /// Kills the tool (if it still runs) and describes what went wrong, with its stderr.
    fn failure(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        format!(
            "harness: {} {what}\n--- stderr ---\n{}",
            self.what,
            String::from_utf8_lossy(&stderr)
        )
    }
}

impl Drop for OpenTxn {
    fn drop(&mut self) {
        // End of input: the tool aborts the transaction and exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// A private broker stops when dropped. (The shared one is a static, never dropped: its watchdog
/// stops it when the test process exits.)
impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
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

/// The SASL users of a broker: [`USERS`], and [`super::DESCRIBER`] with an authorizer.
fn sasl_users(opts: &Options) -> Vec<(&'static str, &'static str)> {
    let mut users = USERS.to_vec();
    if opts.authorizer {
        users.push(super::DESCRIBER);
    }
    users
}

/// A PEM file as one `.properties` value line: newlines become a literal `\n`.
fn pem_one_line(path: &Path) -> String {
    let pem = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    pem.trim().lines().collect::<Vec<_>>().join("\\n")
}

fn server_properties(
    opts: &Options,
    id: i32,
    dir: &Path,
    voters: &str,
    tls: &Tls,
    p: Ports,
) -> String {
    let rf = opts.nodes;
    let min_isr = opts.nodes.min(2);
    let (listeners, advertised, map) = if opts.sasl {
        (
            format!(
                "PLAINTEXT://127.0.0.1:{pt},SASL_PLAINTEXT://127.0.0.1:{sp},SASL_SSL://127.0.0.1:{ss},SASL_OAUTH://127.0.0.1:{so},CONTROLLER://127.0.0.1:{ctrl}",
                pt = p.plaintext, sp = p.sasl_plaintext, ss = p.sasl_ssl, so = p.sasl_oauth, ctrl = p.controller
            ),
            format!(
                "PLAINTEXT://127.0.0.1:{pt},SASL_PLAINTEXT://127.0.0.1:{sp},SASL_SSL://127.0.0.1:{ss},SASL_OAUTH://127.0.0.1:{so}",
                pt = p.plaintext, sp = p.sasl_plaintext, ss = p.sasl_ssl, so = p.sasl_oauth
            ),
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SASL_OAUTH:SASL_PLAINTEXT",
        )
    } else {
        (
            format!(
                "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                p.plaintext, p.controller
            ),
            format!("PLAINTEXT://127.0.0.1:{}", p.plaintext),
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        )
    };
    let mut s = format!(
        "\
process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
controller.listener.names=CONTROLLER
listeners={listeners}
advertised.listeners={advertised}
listener.security.protocol.map={map}
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={min_isr}
auto.create.topics.enable=false
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=1
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
num.network.threads=2
num.io.threads=4
",
        data = dir.join("data").display(),
    );
    if major_minor(opts.version).0 >= 4 {
        let _ = write!(
            s,
            "\
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
share.coordinator.state.topic.num.partitions=1
"
        );
    }
    if opts.authorizer {
        s.push_str(
            "\
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=true
",
        );
    }
    if !opts.sasl {
        return s;
    }
    let plain_users: String = sasl_users(opts)
        .iter()
        .map(|(u, pw)| format!(" user_{u}=\"{pw}\""))
        .collect();
    let mut chain = pem_one_line(&tls.server_cert);
    chain.push_str("\\n");
    chain.push_str(&pem_one_line(&tls.ca_cert));
    let _ = write!(
        s,
        "\
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
ssl.keystore.type=PEM
ssl.keystore.certificate.chain={chain}
ssl.keystore.key={key}
",
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
    // SASL_OAUTH: the default OAUTHBEARER server callback is Kafka's unsecured validator; the
    // `unsecuredLoginStringClaim_sub` option is for the broker's own (unused) login token.
    let _ = write!(
        s,
        "\
listener.name.sasl_oauth.sasl.enabled.mechanisms=OAUTHBEARER,SCRAM-SHA-512
listener.name.sasl_oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"broker\";
listener.name.sasl_oauth.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_oauth.connections.max.reauth.ms={reauth}
",
        reauth = super::OAUTH_REAUTH_MS,
    );
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

/// Kafka 3.x (log4j 1.x syntax, served by reload4j).
fn broker_log4j1(log_file: &Path) -> String {
    format!(
        "\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={}
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
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

/// The same for Kafka 3.x tools (log4j 1.x syntax).
const TOOLS_LOG4J1: &str = "\
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
";
