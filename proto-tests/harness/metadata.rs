//! A minimal hand-written Metadata v1 request, so the harness can wait until the brokers
//! themselves serve a topic (partition count, leaders, replicas, ISR) and see which brokers are
//! alive, without depending on the crate under test or on another JVM start. Metadata v1 is served
//! by every Kafka from 0.10 to 4.x. Only what the harness needs is parsed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const METADATA: i16 = 3;
const VERSION: i16 = 1;

/// One broker's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Node ids of the live (registered, unfenced) brokers, sorted.
    pub brokers: Vec<i32>,
    pub controller: i32,
    pub topics: Vec<TopicMeta>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    pub error: i16,
    pub partitions: Vec<PartitionMeta>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMeta {
    pub index: i32,
    pub error: i16,
    /// -1 while no leader is elected.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Metadata {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.iter().find(|t| t.name == name)
    }
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        self.topic(topic)?
            .partitions
            .iter()
            .find(|p| p.index == partition)
    }
}

/// The number of partitions of `topic` if the broker at `addr` knows it and every partition has a
/// leader; `None` otherwise (unknown topic, leader not yet elected, connection trouble).
pub fn ready_partitions(addr: &str, topic: &str) -> Option<usize> {
    let md = fetch(addr, &[topic])?;
    let t = md.topic(topic)?;
    let all_led = t.partitions.iter().all(|p| p.error == 0 && p.leader >= 0);
    (t.error == 0 && !t.partitions.is_empty() && all_led).then_some(t.partitions.len())
}

/// Metadata for `topics` (an empty slice asks for brokers only) from the broker at `addr`;
/// `None` on any connection or parse trouble.
pub fn fetch(addr: &str, topics: &[&str]) -> Option<Metadata> {
    let response = request(addr, topics).ok()?;
    parse(&response)
}

fn request(addr: &str, topics: &[&str]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    body.extend_from_slice(&METADATA.to_be_bytes());
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    put_str(&mut body, "ko-harness");
    // v1: an empty array means "no topics" (null would mean all).
    body.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        put_str(&mut body, t);
    }

    let sock: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("bad address {addr}: {e}")))?;
    let mut stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(4..=64 << 20).contains(&len) {
        return Err(std::io::Error::other(format!("bad frame length {len}")));
    }
    let mut response = vec![0u8; len as usize];
    stream.read_exact(&mut response)?;
    Ok(response)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as i16).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    /// A (nullable) string; null reads as empty.
    fn string(&mut self) -> Option<String> {
        let len = self.i16()?;
        if len < 0 {
            return Some(String::new());
        }
        Some(String::from_utf8_lossy(self.take(len as usize)?).into_owned())
    }
    fn count(&mut self) -> Option<usize> {
        usize::try_from(self.i32()?.max(0)).ok()
    }
    fn ids(&mut self) -> Option<Vec<i32>> {
        (0..self.count()?).map(|_| self.i32()).collect()
    }
}

fn parse(response: &[u8]) -> Option<Metadata> {
    let mut r = Reader(response);
    r.i32()?; // correlation id
    let mut md = Metadata::default();
    for _ in 0..r.count()? {
        md.brokers.push(r.i32()?); // node id
        r.string()?; // host
        r.i32()?; // port
        r.string()?; // rack
    }
    md.brokers.sort_unstable();
    md.controller = r.i32()?;
    for _ in 0..r.count()? {
        let error = r.i16()?;
        let name = r.string()?;
        r.take(1)?; // is_internal
        let mut partitions = Vec::new();
        for _ in 0..r.count()? {
            let error = r.i16()?;
            let index = r.i32()?;
            let leader = r.i32()?;
            let replicas = r.ids()?;
            let isr = r.ids()?;
            partitions.push(PartitionMeta {
                index,
                error,
                leader,
                replicas,
                isr,
            });
        }
        partitions.sort_by_key(|p| p.index);
        md.topics.push(TopicMeta {
            name,
            error,
            partitions,
        });
    }
    Some(md)
}
