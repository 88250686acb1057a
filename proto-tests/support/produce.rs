//! `kafka-observer produce` in tests: the command with its input on stdin, the summary it
//! prints (partition → first and last offset, records), and what Kafka's console consumer
//! reads back (the oracle for records we wrote).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Output, Stdio};

use crate::harness;

/// `kafka-observer produce ARGS` with `input` on stdin.
pub fn ko_produce(args: &[&str], input: &[u8]) -> Output {
    let mut cmd = super::command(&["produce"]);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// The summary table: partition → (first, last, records).
pub fn summary(stdout: &[u8]) -> BTreeMap<i32, (i64, i64, u64)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(1)?.parse().ok()?,
                (
                    f.get(2)?.parse().ok()?,
                    f.get(3)?.parse().ok()?,
                    f.get(4)?.parse().ok()?,
                ),
            ))
        })
        .collect()
}

/// One record as the console consumer prints it with partition, headers and key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Printed {
    pub partition: i32,
    pub headers: String,
    pub key: String,
    pub value: String,
}

/// Kafka's ConsoleConsumer reading `n` records of `topic` from the beginning.
pub fn console_consume(topic: &str, n: usize) -> Vec<Printed> {
    let b = harness::broker();
    let n = n.to_string();
    let out = b.java_ok(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            &b.plaintext(),
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            &n,
            "--timeout-ms",
            "60000",
            "--property",
            "print.partition=true",
            "--property",
            "print.headers=true",
            "--property",
            "print.key=true",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, '\t');
            let partition = f.next()?.strip_prefix("Partition:")?.parse().ok()?;
            Some(Printed {
                partition,
                headers: f.next()?.to_string(),
                key: f.next()?.to_string(),
                value: f.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}
