//! Trace identity: the (project_id, trace_id) pair every trace is unique on, as a 128-bit key.
//!
//! The key is two independent aHash values under per-process random keys, so the global
//! id -> location map costs 16 bytes of key per trace instead of the two strings. Two different
//! ids share a key with probability about n²/2¹²⁹ (≈ 10⁻²⁷ for a billion traces), and the random
//! keys make collisions impossible to aim at. `Store::get` still compares the stored ids.

use ahash::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The identity of a trace within the store (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IdKey(u64, u64);

/// Computes [`IdKey`]s; the keys are only meaningful within one process.
#[derive(Debug, Default)]
pub(crate) struct IdHasher {
    first: RandomState,
    second: RandomState,
}

impl IdHasher {
    pub(crate) fn key(&self, project_id: &str, trace_id: &str) -> IdKey {
        IdKey(self.first.hash_one((project_id, trace_id)), self.second.hash_one((project_id, trace_id)))
    }
}

/// An `IdKey` is already a uniform random hash: a map keyed by it uses its halves XORed, unhashed.
#[derive(Debug, Default)]
pub(crate) struct IdKeyHasher(u64);

impl Hasher for IdKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// A map keyed by trace identity.
pub(crate) type IdMap<V> = HashMap<IdKey, V, BuildHasherDefault<IdKeyHasher>>;
