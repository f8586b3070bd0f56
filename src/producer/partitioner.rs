//! Choosing a partition: murmur2 of the key, as the Java client's default partitioner does, and
//! sticky partitioning for records without a key (KIP-480).

use std::collections::HashMap;

/// Kafka's murmur2 hash (the 32-bit MurmurHash2 variant with seed `0x9747b28c` that
/// `org.apache.kafka.common.utils.Utils.murmur2` computes).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // The tail bytes are mixed in as the Java code's fall-through switch does.
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for a key:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Sticky partitions for records without a key: all such records of a topic go to one partition
/// until `batch.size` bytes went there, then another partition is picked at random. This makes
/// fewer, larger batches than round robin (KIP-480) and spreads data evenly by volume, as the
/// Java client's uniform sticky partitioner does (KIP-794).
#[derive(Debug, Default)]
pub struct StickyPartitions {
    /// Per topic: the sticky partition and the bytes sent to it since it was chosen.
    current: HashMap<String, (i32, usize)>,
}

impl StickyPartitions {
    /// The sticky partition of `topic`, choosing one if there is none.
    pub fn partition(&mut self, topic: &str, partitions: i32) -> i32 {
        if let Some(&(p, _)) = self.current.get(topic)
            && p < partitions
        {
            return p;
        }
        let p = rand::random_range(0..partitions.max(1));
        self.current.insert(topic.to_string(), (p, 0));
        p
    }

    /// Counts `bytes` sent to `topic`'s sticky `partition`; once `threshold` (`batch.size`)
    /// bytes went there, the next record picks another partition.
    pub fn produced(
        &mut self,
        topic: &str,
        partition: i32,
        bytes: usize,
        threshold: usize,
        partitions: i32,
    ) {
        let Some(entry) = self.current.get_mut(topic) else {
            return;
        };
        if entry.0 != partition {
            return;
        }
        entry.1 += bytes;
        if entry.1 >= threshold {
            self.next(topic, partition, partitions);
        }
    }

    /// The batch of `topic`'s sticky partition `previous` is done: move to another partition.
    pub fn next(&mut self, topic: &str, previous: i32, partitions: i32) {
        if self.current.get(topic).map(|c| c.0) != Some(previous) {
            return;
        }
        let next = if partitions > 1 {
            // Any partition but the previous one.
            let r = rand::random_range(0..partitions - 1);
            if r >= previous { r + 1 } else { r }
        } else {
            0
        };
        self.current.insert(topic.to_string(), (next, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from the Java client's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn partition_is_positive_and_in_range() {
        for i in 0..1000 {
            let key = format!("key-{i}");
            let p = partition_for_key(key.as_bytes(), 12);
            assert!((0..12).contains(&p));
        }
    }

    #[test]
    fn sticky_partition_holds_then_moves() {
        let mut s = StickyPartitions::default();
        let first = s.partition("t", 6);
        assert_eq!(s.partition("t", 6), first);
        s.next("t", first, 6);
        let second = s.partition("t", 6);
        assert_ne!(first, second);
        // A stale notification does not move it again.
        s.next("t", first, 6);
        assert_eq!(s.partition("t", 6), second);
        // Volume-based: batch.size bytes move it on.
        let mut v = StickyPartitions::default();
        let p = v.partition("v", 12);
        v.produced("v", p, 600, 1000, 12);
        assert_eq!(v.partition("v", 12), p);
        v.produced("v", p, 600, 1000, 12);
        assert_ne!(v.partition("v", 12), p);
        let mut one = StickyPartitions::default();
        assert_eq!(one.partition("u", 1), 0);
        one.next("u", 0, 1);
        assert_eq!(one.partition("u", 1), 0);
    }
}
