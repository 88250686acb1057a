//! `test-broker`: the integration suite's real Kafka broker, for shell scripts
//! (`proto-tests/image/check.sh`, `./run.sh local`).
//!
//! ```text
//! cargo build --example test-broker
//! test-broker [TOPIC:PARTITIONS]... [--produce TOPIC:PARTITION:COUNT]...
//!             [--commit GROUP:TOPIC:PARTITION:OFFSET]...
//! ```
//!
//! Starts the harness broker (`proto-tests/harness`), prints its addresses as shell variable
//! assignments (`KAFKA_PLAINTEXT=127.0.0.1:PORT`, ..., `KAFKA_LIBS=` the directory of the Kafka
//! jars, for Java tools), creates the topics, produces and commits what the flags ask for, then
//! prints `KAFKA_READY=1`. A script can `eval` the lines before it.
//!
//! It then reads commands from stdin, one per line, each answered by one line `ok ...` or
//! `error ...`:
//!
//! ```text
//! create TOPIC:PARTITIONS
//! produce TOPIC:PARTITION:COUNT
//! commit GROUP:TOPIC:PARTITION:OFFSET
//! ```
//!
//! When stdin closes, or on SIGTERM / SIGINT, it stops the broker (and removes its work dir) and
//! exits 0. Should this process die otherwise, the harness watchdog stops the broker within
//! seconds, so a broker never outlives its owner.

// The suite uses more of the harness than this program does.
#[allow(unused)]
#[path = "../harness/mod.rs"]
mod harness;

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc;

const USAGE: &str =
    "usage: test-broker [TOPIC:PARTITIONS]... [--produce TOPIC:PARTITION:COUNT]... \
                     [--commit GROUP:TOPIC:PARTITION:OFFSET]...";

/// One thing to do to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Create {
        topic: String,
        partitions: i32,
    },
    Produce {
        topic: String,
        partition: i32,
        count: u32,
    },
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// What the main loop reacts to.
enum Event {
    Line(String),
    /// stdin closed or a termination signal arrived.
    Stop(&'static str),
}

fn number<T: std::str::FromStr>(text: &str, what: &str, spec: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("'{spec}': {what} must be a number, got '{text}'"))
}

/// Splits `spec` at its last `n - 1` colons: topic names cannot hold a colon, group ids may.
fn fields<'a>(spec: &'a str, n: usize, shape: &str) -> Result<Vec<&'a str>, String> {
    let mut parts: Vec<&str> = spec.rsplitn(n, ':').collect();
    parts.reverse();
    if parts.len() != n || parts.iter().any(|p| p.is_empty()) {
        return Err(format!("'{spec}': expected {shape}"));
    }
    Ok(parts)
}

fn create(spec: &str) -> Result<Action, String> {
    let f = fields(spec, 2, "TOPIC:PARTITIONS")?;
    Ok(Action::Create {
        topic: f[0].to_string(),
        partitions: number(f[1], "PARTITIONS", spec)?,
    })
}

fn produce(spec: &str) -> Result<Action, String> {
    let f = fields(spec, 3, "TOPIC:PARTITION:COUNT")?;
    Ok(Action::Produce {
        topic: f[0].to_string(),
        partition: number(f[1], "PARTITION", spec)?,
        count: number(f[2], "COUNT", spec)?,
    })
}

fn commit(spec: &str) -> Result<Action, String> {
    let f = fields(spec, 3, "GROUP:TOPIC:PARTITION:OFFSET")?;
    let gt = fields(f[0], 2, "GROUP:TOPIC:PARTITION:OFFSET")?;
    Ok(Action::Commit {
        group: gt[0].to_string(),
        topic: gt[1].to_string(),
        partition: number(f[1], "PARTITION", spec)?,
        offset: number(f[2], "OFFSET", spec)?,
    })
}

fn parse_args(args: &[String]) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "--produce" => actions.push(produce(&value("--produce")?)?),
            "--commit" => actions.push(commit(&value("--commit")?)?),
            "-h" | "--help" => return Err(String::new()),
            a if a.starts_with('-') => return Err(format!("unknown flag '{a}'")),
            spec => actions.push(create(spec)?),
        }
    }
    // Topics first, whatever the order on the command line.
    actions.sort_by_key(|a| !matches!(a, Action::Create { .. }));
    Ok(actions)
}

fn parse_command(line: &str) -> Result<Action, String> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["create", spec] => create(spec),
        ["produce", spec] => produce(spec),
        ["commit", spec] => commit(spec),
        _ => Err(format!(
            "unknown command '{line}': expected 'create TOPIC:PARTITIONS', \
             'produce TOPIC:PARTITION:COUNT' or 'commit GROUP:TOPIC:PARTITION:OFFSET'"
        )),
    }
}

/// Runs one action; a harness panic (a failing Java tool) becomes an error line.
fn apply(b: &harness::Broker, action: &Action) -> Result<String, String> {
    let run = || match action {
        Action::Create { topic, partitions } => {
            b.create_topic(topic, *partitions);
            format!("created {topic} with {partitions} partitions")
        }
        Action::Produce {
            topic,
            partition,
            count,
        } => {
            let offsets = b.produce(topic, *partition, *count);
            format!(
                "produced {count} records to {topic}:{partition} at offsets {}..{}",
                offsets.start, offsets.end
            )
        }
        Action::Commit {
            group,
            topic,
            partition,
            offset,
        } => {
            b.commit_offset(group, topic, *partition, *offset);
            format!("committed {group} {topic}:{partition} at {offset}")
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the harness panicked".into())
        })
        .map_err(|msg| {
            // One answer line: the harness's headline and the last line of the tool's output
            // (the cause); the whole text went to stderr through the panic hook.
            let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or_default().to_string();
            match lines.next_back() {
                Some(last) => format!("{first}: {last}"),
                None => first,
            }
        })
}

/// Forwards stdin lines, then `Stop` at EOF; and `Stop` on SIGTERM or SIGINT.
fn events() -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    let lines = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => {
                    if lines.send(Event::Line(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = lines.send(Event::Stop("stdin closed"));
    });
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            let why = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            let _ = tx.send(Event::Stop(why));
        });
    });
    rx
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let actions = match parse_args(&args) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("test-broker: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // A failing Java tool panics in the harness: print its message, not a backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("test-broker: {info}")));
    // Signals are caught from here on, so the broker is always stopped by us.
    let events = events();
    let b = harness::broker();
    println!("KAFKA_PLAINTEXT={}", b.plaintext());
    println!("KAFKA_SASL_PLAINTEXT={}", b.sasl_plaintext());
    println!("KAFKA_SASL_SSL={}", b.sasl_ssl());
    println!("KAFKA_CA_FILE={}", b.ca_file().display());
    println!("KAFKA_WORK_DIR={}", b.work_dir().display());
    println!("KAFKA_LIBS={}", b.libs_dir().display());
    for action in &actions {
        match apply(b, action) {
            Ok(msg) => eprintln!("test-broker: {msg}"),
            Err(e) => {
                eprintln!("test-broker: {e}");
                b.stop();
                return ExitCode::from(1);
            }
        }
    }
    println!("KAFKA_READY=1");
    let why = loop {
        match events.recv() {
            Ok(Event::Line(line)) => match parse_command(&line).and_then(|a| apply(b, &a)) {
                Ok(msg) => println!("ok {msg}"),
                Err(e) => println!("error {e}"),
            },
            Ok(Event::Stop(why)) => break why,
            Err(_) => break "input gone",
        }
    };
    eprintln!("test-broker: {why}: stopping the broker");
    b.stop();
    ExitCode::SUCCESS
}
