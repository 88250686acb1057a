//! `--exec CMD`: hand each batch to a shell command.
//!
//! Why a process per batch rather than per record: starting `sh` costs milliseconds, and a batch
//! is the unit the consumer commits, so "the command exited 0" maps exactly onto "commit the
//! batch". Any failure — non-zero exit, a signal, a spawn error, the timeout — fails the whole
//! batch (`handled: 0`): the command cannot tell us how far it got, so the batch is retried and
//! the command must be idempotent (at-least-once).
//!
//! # Input format
//!
//! `sh -c CMD` receives the batch on stdin as JSON lines, one object per record, in offset order:
//!
//! ```text
//! {"topic":"payments","partition":0,"offset":42,"timestamp":1700000000000,"key":"order-7","value":"{\"amount\":3}","headers":[{"key":"trace","value":"abc"},{"key":"trace","value":"def"}]}
//! {"topic":"payments","partition":0,"offset":43,"timestamp":null,"key":null,"value":{"base64":"AAH/"},"headers":[]}
//! ```
//!
//! - `timestamp`: milliseconds since the Unix epoch, `null` when the record has none.
//! - `key`, `value`, and each header's `key` and `value`: a JSON string when the bytes are valid
//!   UTF-8, `{"base64": "..."}` (standard alphabet, padded) when they are not, `null` for a
//!   Kafka null (a header name is never null).
//! - `headers`: an array in record order, one `{"key": …, "value": …}` per header. Kafka allows
//!   a name to repeat and names that are not UTF-8; an array keeps both, losslessly. (Before
//!   this shape, `headers` was an object keyed by name, which dropped all but the last value of
//!   a repeated name: a documented breaking change.)
//!
//! The command's stdout and stderr go to our stderr, next to our own log lines (stdout is kept
//! for the consumer itself). The command runs in its own process group so a timeout kills the
//! whole pipeline it started, not just the shell. Error messages name the exit status, never the
//! record contents or the command text (which may embed credentials).

use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::consumer::message::Message;

use super::HandlerError;

/// A validated `--exec` command.
#[derive(Debug, Clone)]
pub(crate) struct Exec {
    command: String,
    timeout: Duration,
}

impl Exec {
    pub(crate) fn new(command: &str, timeout: Duration) -> Result<Exec, HandlerError> {
        if command.trim().is_empty() {
            return Err(HandlerError::InvalidExec(
                "the command is empty: give a shell command, e.g. --exec 'jq -c . >> out.jsonl'"
                    .into(),
            ));
        }
        if timeout.is_zero() {
            return Err(HandlerError::InvalidExec(
                "the timeout must be greater than zero".into(),
            ));
        }
        Ok(Exec {
            command: command.to_string(),
            timeout,
        })
    }

    /// Runs the command once for the whole batch. An empty batch starts nothing.
    pub(crate) async fn run(&self, batch: &[Message]) -> Result<(), HandlerError> {
        if batch.is_empty() {
            return Ok(());
        }
        let input = encode_batch(batch);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(our_stderr())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| HandlerError::ExecSpawn(e.to_string()))?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let work = async {
            if let Some(mut pipe) = stdin.take() {
                // A command may exit without reading all of its input (e.g. `head -1`); the broken
                // pipe is then expected and its exit status is what counts.
                if let Err(e) = pipe.write_all(&input).await {
                    tracing::debug!(error = %e, "--exec command did not read all of its input");
                }
                drop(pipe); // EOF for the command
            }
            child.wait().await
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HandlerError::ExecStatus(describe(status))),
            Ok(Err(e)) => Err(HandlerError::ExecSpawn(format!(
                "waiting for it failed: {e}"
            ))),
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid).await;
                }
                // The shell itself, in case the group kill could not run; also reaps it.
                let _ = child.kill().await;
                Err(HandlerError::ExecTimeout(self.timeout))
            }
        }
    }
}

/// The batch as JSON lines (see the module doc).
pub(crate) fn encode_batch(batch: &[Message]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.len() * 128);
    for m in batch {
        let line = Line {
            topic: &m.topic,
            partition: m.partition,
            offset: m.offset,
            timestamp: (m.timestamp_ms >= 0).then_some(m.timestamp_ms),
            key: Data(m.key.as_deref()),
            value: Data(m.value.as_deref()),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: Data(Some(k)),
                    value: Data(v.as_deref()),
                })
                .collect(),
        };
        // Serialising plain strings and numbers into a Vec cannot fail.
        serde_json::to_writer(&mut out, &line).expect("JSON encoding of a record");
        out.push(b'\n');
    }
    out
}

#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Data<'a>,
    value: Data<'a>,
    headers: Vec<Header<'a>>,
}

#[derive(Serialize)]
struct Header<'a> {
    key: Data<'a>,
    value: Data<'a>,
}

/// Bytes as JSON: a string when UTF-8, `{"base64": ...}` otherwise, `null` for none.
struct Data<'a>(Option<&'a [u8]>);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => s.serialize_str(text),
                Err(_) => {
                    let mut map = s.serialize_map(Some(1))?;
                    map.serialize_entry(
                        "base64",
                        &base64::engine::general_purpose::STANDARD.encode(bytes),
                    )?;
                    map.end()
                }
            },
        }
    }
}

/// "exit status 3" / "killed by signal 9": how the command ended, for the error message.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The child's stdout: a duplicate of our stderr, or inherited stdout if it cannot be duplicated.
fn our_stderr() -> Stdio {
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}

/// SIGKILL to the command's process group (the shell and everything it started). std has no
/// `killpg`, and the shell is a requirement of `--exec` anyway, so its `kill` builtin does it.
async fn kill_group(pgid: u32) {
    let result = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -KILL -{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = result {
        tracing::debug!(error = %e, pgid, "could not kill the --exec process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::path::PathBuf;
    use std::time::Instant;

    fn temp_path(name: &str) -> PathBuf {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).unwrap();
        std::env::temp_dir().join(format!(
            "ko-exec-{}-{}-{name}",
            std::process::id(),
            u64::from_le_bytes(b)
        ))
    }

    fn msg(offset: i64, key: Option<&'static [u8]>, value: Option<&'static [u8]>) -> Message {
        Message {
            topic: "payments".into(),
            partition: 2,
            offset,
            timestamp_ms: 1_700_000_000_000 + offset,
            key: key.map(Bytes::from_static),
            value: value.map(Bytes::from_static),
            headers: vec![],
            log_append_time: false,
        }
    }

    fn sample_batch() -> Vec<Message> {
        let mut first = msg(42, Some(b"order-7"), Some(b"{\"amount\":3}"));
        first.headers = vec![
            ("trace".into(), Some(Bytes::from_static(b"abc"))),
            ("bin".into(), Some(Bytes::from_static(b"\x00\xff"))),
            ("nil".into(), None),
            ("trace".into(), Some(Bytes::from_static(b"override"))),
            (
                Bytes::from_static(b"\xffname"),
                Some(Bytes::from_static(b"")),
            ),
        ];
        let mut second = msg(43, None, Some(b"\x00\x01\xff"));
        second.timestamp_ms = -1;
        let third = msg(44, Some(b"\xfe"), None);
        vec![first, second, third]
    }

    const SAMPLE_JSON: &str = concat!(
        r#"{"topic":"payments","partition":2,"offset":42,"timestamp":1700000000042,"key":"order-7","value":"{\"amount\":3}","headers":[{"key":"trace","value":"abc"},{"key":"bin","value":{"base64":"AP8="}},{"key":"nil","value":null},{"key":"trace","value":"override"},{"key":{"base64":"/25hbWU="},"value":""}]}"#,
        "\n",
        r#"{"topic":"payments","partition":2,"offset":43,"timestamp":null,"key":null,"value":{"base64":"AAH/"},"headers":[]}"#,
        "\n",
        r#"{"topic":"payments","partition":2,"offset":44,"timestamp":1700000000044,"key":{"base64":"/g=="},"value":null,"headers":[]}"#,
        "\n",
    );

    #[test]
    fn encode_table() {
        assert_eq!(
            String::from_utf8(encode_batch(&sample_batch())).unwrap(),
            SAMPLE_JSON
        );
        assert!(encode_batch(&[]).is_empty());
        // Empty is not null.
        assert_eq!(
            String::from_utf8(encode_batch(&[msg(0, Some(b""), Some(b""))])).unwrap(),
            concat!(
                r#"{"topic":"payments","partition":2,"offset":0,"timestamp":1700000000000,"key":"","value":"","headers":[]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn describe_table() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit status 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by signal 9");
    }

    #[test]
    fn validation() {
        let err = Exec::new("  ", Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("--exec"), "{err}");
        let err = Exec::new("true", Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("--exec"), "{err}");
    }

    #[tokio::test]
    async fn command_receives_the_json_lines() {
        let file = temp_path("stdin");
        let exec = Exec::new(
            &format!("cat > '{}'", file.display()),
            Duration::from_secs(20),
        )
        .unwrap();
        exec.run(&sample_batch()).await.unwrap();
        let got = std::fs::read_to_string(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        assert_eq!(got, SAMPLE_JSON);
    }

    #[tokio::test]
    async fn empty_batch_starts_nothing() {
        let file = temp_path("never");
        let exec = Exec::new(
            &format!("touch '{}'", file.display()),
            Duration::from_secs(20),
        )
        .unwrap();
        exec.run(&[]).await.unwrap();
        assert!(!file.exists());
    }

    #[tokio::test]
    async fn non_zero_exit_fails_with_the_status() {
        let exec = Exec::new(
            "cat >/dev/null; echo failing >&2; exit 3",
            Duration::from_secs(20),
        )
        .unwrap();
        let err = exec.run(&sample_batch()).await.unwrap_err();
        assert!(matches!(err, HandlerError::ExecStatus(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("exit status 3"), "{text}");
        assert!(
            !text.contains("order-7") && !text.contains("failing"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn early_exit_without_reading_is_not_a_panic() {
        // Far more input than a pipe buffer holds, and a command that reads none of it.
        let big = Message {
            value: Some(Bytes::from(vec![b'x'; 1 << 20])),
            ..msg(1, None, None)
        };
        let ok = Exec::new("exit 0", Duration::from_secs(20)).unwrap();
        ok.run(std::slice::from_ref(&big)).await.unwrap();
        let bad = Exec::new("exit 5", Duration::from_secs(20)).unwrap();
        let err = bad.run(&[big]).await.unwrap_err();
        assert!(err.to_string().contains("exit status 5"), "{err}");
    }

    #[tokio::test]
    async fn signal_is_reported() {
        let exec = Exec::new("kill -TERM $$", Duration::from_secs(20)).unwrap();
        let err = exec.run(&sample_batch()).await.unwrap_err();
        assert!(err.to_string().contains("signal 15"), "{err}");
    }

    #[tokio::test]
    async fn timeout_kills_the_command_and_what_it_started() {
        let pids = temp_path("pids");
        let exec = Exec::new(
            &format!("sleep 30 & echo $$ $! > '{}'; wait", pids.display()),
            Duration::from_millis(500),
        )
        .unwrap();
        let started = Instant::now();
        let err = exec.run(&sample_batch()).await.unwrap_err();
        assert!(matches!(err, HandlerError::ExecTimeout(_)), "{err:?}");
        assert!(err.to_string().contains("500ms"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let text = std::fs::read_to_string(&pids).unwrap();
        let _ = std::fs::remove_file(&pids);
        // Killed processes disappear, or linger as zombies until init reaps them.
        let deadline = Instant::now() + Duration::from_secs(5);
        for pid in text.split_whitespace() {
            loop {
                let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|stat| {
                        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                        !(state.starts_with('Z') || state.starts_with('X'))
                    })
                    .unwrap_or(false);
                if !alive {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "process {pid} survived the timeout"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    #[tokio::test]
    async fn missing_command_is_exit_status_127() {
        // `sh` itself is found; a missing command is exit status 127 from the shell.
        let exec = Exec::new("/definitely/not/here", Duration::from_secs(20)).unwrap();
        let err = exec.run(&sample_batch()).await.unwrap_err();
        assert!(err.to_string().contains("exit status 127"), "{err}");
    }
}
