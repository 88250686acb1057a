//! `kafka-observer produce`: records from stdin or a file to a topic, like `kcat -P`.
//!
//! One record per line (or per `--delimiter`), `--key-delimiter` to split key and value,
//! repeatable `-H name=value` headers, `--partition` or the Java client's partitioner, any
//! codec the consumer reads. Written by the idempotent producer with acks=all, so a retry never
//! duplicates a record. Prints what was written: partition → first and last offset. Exit 0 when
//! every record was written, 1 when some were not (or the cluster failed), 2 for a flag or
//! variable to fix.

mod input;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use memchr::memmem::Finder;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::kafka::KafkaArgs;
use super::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::env::ProcessEnv;
use crate::config::produce::{self, ProduceFlags};
use crate::consumer::handler::log::now_ms;
use crate::offsets::TopicPartition;
use crate::producer::partitioner::{for_key, Sticky};
use crate::producer::{OutRecord, Producer, ProducerConfig, Report};
use crate::protocol::error::error_name;

/// Write records from stdin or a file to a topic (like kcat -P)
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// The topic to write to [env: KAFKA_TOPIC]
    #[arg(long, short = 't', value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Read records from FILE instead of stdin ("-" is stdin)
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// What separates records; escapes \n \t \r \0 \\ \xHH [default: \n]
    #[arg(long, short = 'D', value_name = "DELIM")]
    pub delimiter: Option<String>,

    /// Split each record into key and value at the first DELIM (no DELIM in a record: no key)
    #[arg(long, short = 'K', value_name = "DELIM")]
    pub key_delimiter: Option<String>,

    /// Add a header to every record (repeatable, in order)
    #[arg(long = "header", short = 'H', value_name = "NAME=VALUE")]
    pub headers: Vec<String>,

    /// Write every record to this partition (default: by key as the Java client does; records
    /// without a key fill one partition's batch, then the next)
    #[arg(long, short = 'p', value_name = "N")]
    pub partition: Option<String>,

    /// none, gzip, snappy, lz4 or zstd [default: none]
    #[arg(long, short = 'z', value_name = "CODEC")]
    pub compression: Option<String>,

    /// Uncompressed bytes per batch [default: 524288]
    #[arg(long, value_name = "BYTES")]
    pub batch_bytes: Option<String>,

    /// Milliseconds a batch waits for more records [default: 5]
    #[arg(long, value_name = "MS")]
    pub linger_ms: Option<String>,

    /// Largest record accepted from the input [default: 1048576]
    #[arg(long, value_name = "BYTES")]
    pub max_record_bytes: Option<String>,
}

/// Records handed to the producer at a time.
const CHUNK_RECORDS: usize = 2048;

/// Everything the flags say, checked ([`produce::resolve`]), in the producer's types.
struct Plan {
    topic: String,
    delimiter: Vec<u8>,
    key_delimiter: Option<Vec<u8>>,
    headers: Vec<(Bytes, Option<Bytes>)>,
    partition: Option<i32>,
    config: ProducerConfig,
    max_record: usize,
}

impl ProduceArgs {
    fn flags(&self) -> ProduceFlags {
        ProduceFlags {
            topic: self.topic.clone(),
            delimiter: self.delimiter.clone(),
            key_delimiter: self.key_delimiter.clone(),
            headers: self.headers.clone(),
            partition: self.partition.clone(),
            compression: self.compression.clone(),
            batch_bytes: self.batch_bytes.clone(),
            linger_ms: self.linger_ms.clone(),
            max_record_bytes: self.max_record_bytes.clone(),
        }
    }
}

fn plan(a: &ProduceArgs, request_timeout: Duration) -> Result<Plan, CliError> {
    let s = produce::resolve(&ProcessEnv, &a.flags())?;
    let mut config = ProducerConfig::new(s.compression, request_timeout);
    config.batch_bytes = s.batch_bytes;
    config.linger = s.linger;
    config.buffer_bytes = config.buffer_bytes.max(2 * config.batch_bytes);
    Ok(Plan {
        topic: s.topic,
        delimiter: s.delimiter,
        key_delimiter: s.key_delimiter,
        headers: s
            .headers
            .into_iter()
            .map(|(name, value)| (Bytes::from(name), Some(Bytes::from(value))))
            .collect(),
        partition: s.partition,
        config,
        max_record: s.max_record,
    })
}

pub async fn run(a: ProduceArgs) -> Result<(), CliError> {
    let kafka = a.kafka.resolve()?;
    let plan = plan(&a, kafka.options.request_timeout)?;
    let cluster = Arc::new(Cluster::new(kafka.bootstrap, kafka.options));
    let partitions = partition_count(&cluster, &plan).await?;
    let producer = Producer::start(cluster.clone(), plan.config.clone())
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let source: Box<dyn AsyncRead + Unpin + Send> = match &a.file {
        Some(p) if p.as_os_str() != "-" => Box::new(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| invalid("--file", format!("cannot open {}: {e}", p.display())))?,
        ),
        _ => Box::new(tokio::io::stdin()),
    };
    let started = std::time::Instant::now();
    let read = pump(source, &plan, partitions, &producer).await;
    let report = producer
        .flush()
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    print_summary(&plan.topic, &report);
    let written: u64 = report.written.values().map(|w| w.records).sum();
    tracing::info!(
        records = written,
        secs = started.elapsed().as_secs_f64(),
        "produce finished"
    );
    read?;
    if let Some(first) = report.lost.first() {
        return Err(CliError::Runtime(format!(
            "{} records were not written to '{}' ({} written): {}: {}",
            report.records_lost(),
            plan.topic,
            written,
            first.tp,
            first.error
        )));
    }
    Ok(())
}

/// The topic's partition count; a missing topic or partition is the user's to fix (exit 2).
async fn partition_count(cluster: &Cluster, plan: &Plan) -> Result<i32, CliError> {
    let md = cluster
        .refresh_metadata(Some(std::slice::from_ref(&plan.topic)))
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let meta = md.topics.get(&plan.topic);
    let count = meta.map(|t| t.partitions.len()).unwrap_or(0) as i32;
    match meta {
        Some(t) if t.error_code == 0 && count > 0 => {}
        Some(t) if t.error_code != 0 && t.error_code != 3 => {
            return Err(CliError::Runtime(format!(
                "topic '{}': {}",
                plan.topic,
                error_name(t.error_code)
            )))
        }
        _ => {
            return Err(invalid(
                "--topic",
                format!(
                    "topic '{}' does not exist: create it first (kafka-topics --create --topic {})",
                    plan.topic, plan.topic
                ),
            ))
        }
    }
    if let Some(p) = plan.partition {
        if p >= count {
            return Err(invalid(
                "--partition",
                format!(
                    "topic '{}' has {count} partitions (0 to {}), not {p}",
                    plan.topic,
                    count - 1
                ),
            ));
        }
    }
    Ok(count)
}

/// Reads the input to its end, handing records to the producer in chunks.
async fn pump(
    mut source: Box<dyn AsyncRead + Unpin + Send>,
    plan: &Plan,
    partitions: i32,
    producer: &Producer,
) -> Result<(), CliError> {
    let mut split = input::Splitter::new(&plan.delimiter, plan.max_record);
    let key_finder = plan.key_delimiter.as_deref().map(Finder::new);
    let key_len = plan.key_delimiter.as_ref().map_or(0, Vec::len);
    let topic: Arc<str> = plan.topic.as_str().into();
    let mut sticky = Sticky::new((now_ms() % i64::from(partitions.max(1))) as i32);
    let mut sticky_bytes = 0usize;
    let too_long = |e: input::TooLong| {
        invalid(
            "--max-record-bytes",
            format!(
                "record {} of the input is longer than {} bytes: raise --max-record-bytes or check --delimiter",
                e.record, e.limit
            ),
        )
    };
    let mut chunk: Vec<(TopicPartition, OutRecord)> = Vec::with_capacity(CHUNK_RECORDS);
    let mut eof = false;
    while !eof {
        let n = source
            .read_buf(split.buffer(1 << 20))
            .await
            .map_err(|e| CliError::Runtime(format!("reading the input failed: {e}")))?;
        let now = now_ms();
        let mut records = Vec::new();
        while let Some(r) = split.next_record().map_err(too_long)? {
            records.push(r);
        }
        if n == 0 {
            eof = true;
            records.extend(split.finish().map_err(too_long)?);
        }
        for raw in records {
            let (key, value) = input::key_value(raw, key_finder.as_ref(), key_len);
            let partition = match (plan.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => for_key(k, partitions),
                (None, None) => {
                    let p = sticky.partition(partitions);
                    sticky_bytes += value.len();
                    if sticky_bytes >= plan.config.batch_bytes {
                        sticky.next(partitions);
                        sticky_bytes = 0;
                    }
                    p
                }
            };
            chunk.push((
                TopicPartition {
                    topic: topic.clone(),
                    partition,
                },
                OutRecord {
                    key,
                    value: Some(value),
                    headers: plan.headers.clone(),
                    timestamp: now,
                },
            ));
            if chunk.len() >= CHUNK_RECORDS {
                send(producer, &mut chunk).await?;
            }
        }
    }
    send(producer, &mut chunk).await
}

async fn send(
    producer: &Producer,
    chunk: &mut Vec<(TopicPartition, OutRecord)>,
) -> Result<(), CliError> {
    if chunk.is_empty() {
        return Ok(());
    }
    let records = std::mem::replace(chunk, Vec::with_capacity(CHUNK_RECORDS));
    producer
        .send(records)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))
}

/// `TOPIC PARTITION FIRST LAST RECORDS` on stdout, one row per partition written.
fn print_summary(topic: &str, report: &Report) {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = report
        .written
        .iter()
        .map(|(tp, w)| {
            let (first, last) = match w.offsets {
                Some((f, l)) => (f.to_string(), l.to_string()),
                None => ("-".into(), "-".into()),
            };
            [
                tp.topic.to_string(),
                tp.partition.to_string(),
                first,
                last,
                w.records.to_string(),
            ]
        })
        .collect();
    let head = ["TOPIC", "PARTITION", "FIRST", "LAST", "RECORDS"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str(&format!("(nothing written to {topic})\n"));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}
