//! What a woken consumer does with its records: log them, pipe them to a command, or POST them.
//!
//! The fetch loop owns ordering and commits; a handler only answers "how many records at the
//! start of this batch are done". That single number is the whole contract, because it is what
//! at-least-once needs: the caller commits exactly up to there and hands the rest back on the
//! next attempt. Each handler kind lives in its own file; this one only picks and validates.

pub(crate) mod exec;
pub(crate) mod log;
pub(crate) mod rfc3339;
pub(crate) mod sink;

use std::time::Duration;

use crate::consumer::message::Message;

/// Which handler the consumer runs, as the command line chose it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum HandlerSpec {
    /// One log line per record (the default, like the sample).
    #[default]
    Log,
    /// `--exec CMD`: `sh -c CMD` per batch, records as JSON lines on stdin.
    Exec { command: String, timeout: Duration },
    /// `--discard`: accept every record and do nothing (benchmarks, draining a topic).
    Discard,
    /// `--sink URL`: one CloudEvents POST per record.
    Sink {
        url: String,
        timeout: Duration,
        /// `ce-source`, e.g. `kafka-observer/<group>/<topic>`.
        source: String,
    },
}

/// Why a handler could not be built or a record could not be handled. Messages name the flag
/// and never include record contents.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandlerError {
    /// The `--exec` command is unusable.
    #[error("--exec: {0}")]
    InvalidExec(String),
    /// The `--sink` URL (or its settings) is unusable.
    #[error("--sink '{url}': {reason}")]
    InvalidSink { url: String, reason: String },
    /// `sh` could not be started (or waited for).
    #[error("--exec: the command could not be run: {0}")]
    ExecSpawn(String),
    /// The command ended unsuccessfully: "exit status 3", "killed by signal 9".
    #[error("--exec: the command failed with {0}")]
    ExecStatus(String),
    /// The command was still running at the deadline and was killed.
    #[error("--exec: the command did not finish within {0:?} and was killed")]
    ExecTimeout(Duration),
    /// The sink answered, but not with 2xx.
    #[error("--sink {url} answered {status} to record {record}: {body}")]
    SinkStatus {
        url: String,
        /// `<topic>-<partition>-<offset>`.
        record: String,
        status: u16,
        /// The start of the response body, control characters escaped.
        body: String,
    },
    /// No answer: connect error, broken connection, timeout.
    #[error("--sink {url}: record {record} not delivered: {cause}")]
    SinkDelivery {
        url: String,
        /// `<topic>-<partition>-<offset>`.
        record: String,
        cause: String,
    },
}

impl HandlerError {
    /// A stable name of the failure kind, for the dead-letter copy's
    /// `kafka_dlt-exception-fqcn` header (where Spring puts the exception's class name).
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            HandlerError::InvalidExec(_) | HandlerError::InvalidSink { .. } => {
                "kafka-observer.InvalidHandler"
            }
            HandlerError::ExecSpawn(_) => "kafka-observer.ExecSpawn",
            HandlerError::ExecStatus(_) => "kafka-observer.ExecStatus",
            HandlerError::ExecTimeout(_) => "kafka-observer.ExecTimeout",
            HandlerError::SinkStatus { .. } => "kafka-observer.SinkStatus",
            HandlerError::SinkDelivery { .. } => "kafka-observer.SinkDelivery",
        }
    }
}

/// A batch stopped early: the first `handled` records are done, the one after failed.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {handled} handled records)")]
pub(crate) struct Failure {
    pub handled: usize,
    /// The handler knows the failure is the record right after the handled ones (`--sink`
    /// delivers one at a time); `false` when it could be any of the rest (`--exec`).
    pub exact: bool,
    pub error: HandlerError,
}

/// A ready-to-use handler, built once per consumer from its [`HandlerSpec`].
#[derive(Debug)]
pub(crate) struct Handler {
    kind: Kind,
}

enum Kind {
    Log,
    Discard,
    Exec(exec::Exec),
    /// Boxed: the HTTP client makes it much larger than the other kinds.
    Sink(Box<sink::Sink>),
    /// Unit tests of the dispatcher: a scripted handler.
    #[cfg(test)]
    Script(Script),
}

/// A scripted handler for unit tests.
#[cfg(test)]
pub(crate) type Script = Box<dyn FnMut(&[Message]) -> Result<(), Failure> + Send>;

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Log => "Log",
            Kind::Discard => "Discard",
            Kind::Exec(_) => "Exec",
            Kind::Sink(_) => "Sink",
            #[cfg(test)]
            Kind::Script(_) => "Script",
        })
    }
}

impl Handler {
    /// Validates the spec (non-empty command; URL parses, is http/https, has a host) and
    /// prepares what it needs (the HTTP client of a sink).
    pub(crate) fn new(spec: &HandlerSpec) -> Result<Handler, HandlerError> {
        let kind = match spec {
            HandlerSpec::Log => Kind::Log,
            HandlerSpec::Discard => Kind::Discard,
            HandlerSpec::Exec { command, timeout } => {
                Kind::Exec(exec::Exec::new(command, *timeout)?)
            }
            HandlerSpec::Sink {
                url,
                timeout,
                source,
            } => Kind::Sink(Box::new(sink::Sink::new(url, *timeout, source)?)),
        };
        Ok(Handler { kind })
    }

    /// A handler that runs `script` (unit tests).
    #[cfg(test)]
    pub(crate) fn scripted(script: Script) -> Handler {
        Handler {
            kind: Kind::Script(script),
        }
    }

    /// Handles records in order. `Ok` = all handled. `Err` carries how many records at the
    /// START of the batch were handled before the failure, so the caller commits exactly up to
    /// there and retries the rest.
    pub(crate) async fn handle(&mut self, batch: &[Message]) -> Result<(), Failure> {
        match &mut self.kind {
            Kind::Log => {
                log::log_batch(batch);
                Ok(())
            }
            Kind::Discard => Ok(()),
            Kind::Exec(exec) => exec.run(batch).await.map_err(|error| Failure {
                handled: 0,
                exact: batch.len() == 1,
                error,
            }),
            #[cfg(test)]
            Kind::Script(f) => f(batch),
            Kind::Sink(sink) => {
                for (handled, m) in batch.iter().enumerate() {
                    sink.post(m).await.map_err(|error| Failure {
                        handled,
                        exact: true,
                        error,
                    })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn specs_are_validated_with_the_flag_named() {
        let t = Duration::from_secs(1);
        let bad: Vec<(HandlerSpec, &str)> = vec![
            (
                HandlerSpec::Exec {
                    command: "".into(),
                    timeout: t,
                },
                "--exec",
            ),
            (
                HandlerSpec::Exec {
                    command: " \n".into(),
                    timeout: t,
                },
                "--exec",
            ),
            (
                HandlerSpec::Sink {
                    url: "not a url".into(),
                    timeout: t,
                    source: "s".into(),
                },
                "--sink 'not a url': not a valid URL",
            ),
            (
                HandlerSpec::Sink {
                    url: "ftp://h/x".into(),
                    timeout: t,
                    source: "s".into(),
                },
                "unsupported scheme 'ftp'",
            ),
            (
                HandlerSpec::Sink {
                    url: "/relative".into(),
                    timeout: t,
                    source: "s".into(),
                },
                "no scheme",
            ),
            (
                HandlerSpec::Sink {
                    url: "".into(),
                    timeout: t,
                    source: "s".into(),
                },
                "--sink",
            ),
            (
                HandlerSpec::Sink {
                    url: "https://user:secret@h/x".into(),
                    timeout: t,
                    source: "s".into(),
                },
                "credentials in the URL are not supported",
            ),
            (
                HandlerSpec::Sink {
                    url: "http://h/x".into(),
                    timeout: t,
                    source: "".into(),
                },
                "ce-source",
            ),
        ];
        for (spec, want) in bad {
            let err = Handler::new(&spec).unwrap_err().to_string();
            assert!(err.contains(want), "{spec:?}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        for spec in [
            HandlerSpec::Log,
            HandlerSpec::Exec {
                command: "cat".into(),
                timeout: t,
            },
            HandlerSpec::Sink {
                url: "http://127.0.0.1:1/x".into(),
                timeout: t,
                source: "s".into(),
            },
            HandlerSpec::Sink {
                url: "https://example.com".into(),
                timeout: t,
                source: "s".into(),
            },
        ] {
            Handler::new(&spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        }
    }

    #[tokio::test]
    async fn log_handles_everything() {
        let mut h = Handler::new(&HandlerSpec::Log).unwrap();
        h.handle(&[Message::default(), Message::default()])
            .await
            .unwrap();
        h.handle(&[]).await.unwrap();
    }

    #[tokio::test]
    async fn exec_failure_handles_nothing() {
        let mut h = Handler::new(&HandlerSpec::Exec {
            command: "exit 3".into(),
            timeout: Duration::from_secs(20),
        })
        .unwrap();
        let f = h
            .handle(&[Message::default(), Message::default()])
            .await
            .unwrap_err();
        assert_eq!(f.handled, 0);
        assert!(f.to_string().contains("exit status 3"), "{f}");
    }
}
