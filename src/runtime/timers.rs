//! The timer queue: ordered by `(deadline, insertion)`, so equal deadlines
//! fire first in, first out.
//!
//! Timers are very often armed in deadline order: equal delays (timeouts,
//! periodic work) or delays that grow with creation order. Such a run goes
//! into a FIFO deque, which pops in O(1) and walks memory in order; only a
//! timer that would break the run goes into the binary heap. The minimum is
//! the smaller of the two fronts. The reference model in
//! `tests/runtime_model.rs` checks the resulting order against CPython's.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

/// One armed timer.
pub(crate) struct TimerEntry<A> {
    pub(crate) when: Duration,
    seq: u64,
    pub(crate) action: A,
}

impl<A> TimerEntry<A> {
    fn key(&self) -> (Duration, u64) {
        (self.when, self.seq)
    }
}

/// Min-heap order on `(when, seq)`.
struct HeapEntry<A>(TimerEntry<A>);

impl<A> PartialEq for HeapEntry<A> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}
impl<A> Eq for HeapEntry<A> {}
impl<A> PartialOrd for HeapEntry<A> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<A> Ord for HeapEntry<A> {
    /// Reversed, so `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.key().cmp(&self.0.key())
    }
}

pub(crate) struct Timers<A> {
    /// A run of timers in non-decreasing `(when, seq)` order.
    sorted: VecDeque<TimerEntry<A>>,
    /// Everything armed out of order.
    heap: BinaryHeap<HeapEntry<A>>,
    seq: u64,
}

impl<A> Timers<A> {
    pub(crate) fn new() -> Self {
        Timers { sorted: VecDeque::new(), heap: BinaryHeap::new(), seq: 0 }
    }

    pub(crate) fn push(&mut self, when: Duration, action: A) {
        let seq = self.seq;
        self.seq += 1;
        let entry = TimerEntry { when, seq, action };
        // `seq` only grows, so a deadline not before the run's last one
        // keeps the run sorted.
        if self.sorted.back().is_none_or(|last| last.when <= when) {
            self.sorted.push_back(entry);
        } else {
            self.heap.push(HeapEntry(entry));
        }
    }

    /// Whether the run's front comes first (if both queues are non-empty).
    fn sorted_first(&self) -> Option<bool> {
        match (self.sorted.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(a), Some(b)) => Some(a.key() < b.0.key()),
        }
    }

    /// The earliest timer.
    pub(crate) fn peek(&self) -> Option<&TimerEntry<A>> {
        match self.sorted_first()? {
            true => self.sorted.front(),
            false => self.heap.peek().map(|e| &e.0),
        }
    }

    /// Removes the earliest timer.
    pub(crate) fn pop(&mut self) -> Option<TimerEntry<A>> {
        match self.sorted_first()? {
            true => self.sorted.pop_front(),
            false => self.heap.pop().map(|e| e.0),
        }
    }

    /// Takes out every timer whose action `remove` accepts, keeping the
    /// others in the same order. The caller drops what comes out, after it
    /// has let go of the queue.
    pub(crate) fn extract(&mut self, mut remove: impl FnMut(&A) -> bool) -> Vec<A> {
        let mut removed = Vec::new();
        let sorted = std::mem::take(&mut self.sorted);
        for entry in sorted {
            if remove(&entry.action) {
                removed.push(entry.action);
            } else {
                self.sorted.push_back(entry);
            }
        }
        let heap = std::mem::take(&mut self.heap).into_vec();
        let mut kept = Vec::with_capacity(heap.len());
        for entry in heap {
            if remove(&entry.0.action) {
                removed.push(entry.0.action);
            } else {
                kept.push(entry);
            }
        }
        self.heap = BinaryHeap::from(kept);
        removed
    }

    /// Empties the queue, in no particular order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = A> + '_ {
        let heap = std::mem::take(&mut self.heap).into_vec();
        self.sorted.drain(..).map(|e| e.action).chain(heap.into_iter().map(|e| e.0.action))
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len() + self.heap.len()
    }

    pub(crate) fn clear(&mut self) {
        self.sorted.clear();
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Timers;
    use std::time::Duration;

    /// The queue pops in `(when, insertion)` order, whatever the arming
    /// order: checked against sorting, the obvious oracle.
    #[test]
    fn pops_in_deadline_then_insertion_order() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut timers = Timers::new();
            let mut armed = Vec::new();
            for i in 0..(round % 40 + 1) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Few distinct deadlines, so ties are common; sometimes runs.
                let when = if round % 3 == 0 { i / 3 } else { state % 8 };
                timers.push(Duration::from_millis(when), i);
                armed.push((when, i));
                if state % 5 == 0 {
                    // Pop in the middle too.
                    armed.sort();
                    let expected = armed.remove(0);
                    let got = timers.pop().map(|e| (e.when.as_millis() as u64, e.action));
                    assert_eq!(got, Some(expected));
                }
            }
            armed.sort();
            let popped: Vec<_> = std::iter::from_fn(|| timers.pop())
                .map(|e| (e.when.as_millis() as u64, e.action))
                .collect();
            assert_eq!(popped, armed);
            assert_eq!(timers.len(), 0);
        }
    }
}
