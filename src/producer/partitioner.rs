//! Which partition a record without an explicit one goes to.
//!
//! Keyed records: Java's default partitioner (`murmur2(key) & 0x7fffffff % partitions`), so the
//! same key lands where a Java, Spring or Kafka Streams producer would put it — what
//! co-partitioned consumers rely on. Records without a key: "sticky", as the Java client does
//! since KIP-480 — they fill one partition's batch, and the next batch goes to the next
//! partition, so batches are full rather than one record per partition.

/// Kafka's murmur2 (the Java client's `Utils.murmur2`, seed 0x9747b28c).
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let seed: u32 = 0x9747_b28c;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a keyed record among `partitions` (> 0).
pub(crate) fn for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Sticky choice for records without a key: stays on one partition until told that its batch
/// was sealed, then moves on (round-robin, starting at `start`).
#[derive(Debug, Clone)]
pub(crate) struct Sticky {
    current: i32,
}

impl Sticky {
    pub(crate) fn new(start: i32) -> Self {
        Sticky {
            current: start.max(0),
        }
    }

    pub(crate) fn partition(&self, partitions: i32) -> i32 {
        self.current % partitions.max(1)
    }

    /// The current partition's batch is full: the next records go to the next partition.
    pub(crate) fn next(&mut self, partitions: i32) {
        self.current = (self.current % partitions.max(1) + 1) % partitions.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values of org.apache.kafka.common.utils.Utils.murmur2 (its own test vectors).
        for (input, want) in [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn keys_map_to_a_stable_partition() {
        for n in 1..20 {
            let p = for_key(b"order-7", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, for_key(b"order-7", n));
        }
        assert_eq!(for_key(b"x", 0), 0);
    }

    #[test]
    fn sticky_moves_on_only_when_told() {
        let mut s = Sticky::new(5);
        assert_eq!(s.partition(3), 2);
        assert_eq!(s.partition(3), 2);
        s.next(3);
        assert_eq!(s.partition(3), 0);
        s.next(3);
        s.next(3);
        assert_eq!(s.partition(3), 2);
        s.next(1);
        assert_eq!(s.partition(1), 0);
    }
}
