//! Counting requests per API, so broker load is a number and not a guess.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests sent, per API key (keys above 127 are counted together).
pub struct RequestStats {
    by_key: [AtomicU64; 128],
}

impl Default for RequestStats {
    fn default() -> Self {
        RequestStats {
            by_key: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl RequestStats {
    pub fn count(&self, api_key: i16) {
        let i = (api_key.max(0) as usize).min(127);
        self.by_key[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of one API so far.
    pub fn get(&self, api_key: i16) -> u64 {
        let i = (api_key.max(0) as usize).min(127);
        self.by_key[i].load(Ordering::Relaxed)
    }

    /// All requests so far.
    pub fn total(&self) -> u64 {
        self.by_key.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// (api key, count) of every API used so far.
    pub fn snapshot(&self) -> Vec<(i16, u64)> {
        self.by_key
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((k as i16, n))
            })
            .collect()
    }
}
