//! A fast hasher for the per-partition maps consulted for every record (the fetcher's partition
//! state, the runtime's partitions). Their keys are the client's own topic names and partition
//! indexes, not input an attacker picks, so the flooding resistance of the default SipHash buys
//! nothing there; its cost per record does show in profiles.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The multiply-rotate hash of the Firefox and rustc hash maps (FxHash).
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher {
    hash: u64,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.add(u64::from(n as u32));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::TopicPartition;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_different_ones_spread() {
        let b = BuildHasherDefault::<FastHasher>::default();
        let a1 = TopicPartition::new("orders", 3);
        let a2 = TopicPartition::new(String::from("orders").as_str(), 3);
        assert_eq!(b.hash_one(&a1), b.hash_one(&a2));
        let hashes: std::collections::HashSet<u64> = (0..1000)
            .map(|p| b.hash_one(TopicPartition::new("orders", p)))
            .collect();
        assert_eq!(hashes.len(), 1000);
        let mut m: FastMap<TopicPartition, i32> = FastMap::default();
        for p in 0..100 {
            m.insert(TopicPartition::new("t", p), p);
        }
        assert!((0..100).all(|p| m[&TopicPartition::new("t", p)] == p));
    }
}
