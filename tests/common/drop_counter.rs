//! Counted drops: a [`Counter`] hands out [`Counted`] tokens, each of which
//! counts its drop and asserts it is dropped once. `Send`, so tasks on
//! several threads can share one counter. Used as
//! `#[path = "common/drop_counter.rs"] mod drop_counter;`.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the drops of the tokens it made.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    /// A new token, counted when it drops.
    pub fn token(&self) -> Counted {
        Counted { counter: self.clone(), armed: true }
    }

    /// Counts one more drop, for a value that counts its own.
    pub fn count_one(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// How many tokens were dropped.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A value whose drop is counted, and must happen once.
pub struct Counted {
    counter: Counter,
    armed: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(self.armed, "dropped twice");
        self.armed = false;
        self.counter.0.fetch_add(1, Ordering::SeqCst);
    }
}
