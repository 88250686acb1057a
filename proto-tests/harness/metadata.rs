//! A minimal hand-written Metadata v1 request, so the harness can wait until the broker itself
//! serves a topic (and its partition count) without depending on the crate under test or on
//! another JVM start. Only what is needed to read topic/partition errors and leaders is parsed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const METADATA: i16 = 3;
const VERSION: i16 = 1;

/// The number of partitions of `topic` if the broker at `addr` knows it and every partition has a
/// leader; `None` otherwise (unknown topic, leader not yet elected, connection trouble).
pub fn ready_partitions(addr: &str, topic: &str) -> Option<usize> {
    let response = request(addr, topic).ok()?;
    parse(&response, topic)
}

fn request(addr: &str, topic: &str) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    body.extend_from_slice(&METADATA.to_be_bytes());
    body.extend_from_slice(&VERSION.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes()); // correlation id
    put_str(&mut body, "ko-harness");
    body.extend_from_slice(&1i32.to_be_bytes()); // one topic
    put_str(&mut body, topic);

    let mut stream = TcpStream::connect(addr)?;
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
}

fn parse(response: &[u8], topic: &str) -> Option<usize> {
    let mut r = Reader(response);
    r.i32()?; // correlation id
    for _ in 0..r.count()? {
        r.i32()?; // node id
        r.string()?; // host
        r.i32()?; // port
        r.string()?; // rack
    }
    r.i32()?; // controller id
    for _ in 0..r.count()? {
        let error = r.i16()?;
        let name = r.string()?;
        r.take(1)?; // is_internal
        let partitions = r.count()?;
        let mut all_led = true;
        for _ in 0..partitions {
            let p_error = r.i16()?;
            r.i32()?; // partition index
            let leader = r.i32()?;
            let replicas = r.count()?;
            r.take(4 * replicas)?;
            let isr = r.count()?;
            r.take(4 * isr)?;
            all_led &= p_error == 0 && leader >= 0;
        }
        if name == topic {
            return (error == 0 && partitions > 0 && all_led).then_some(partitions);
        }
    }
    None
}
