//! The timer queue: ordered by `(deadline, insertion)`, so equal deadlines
//! fire first in, first out.
//!
//! Timers are very often armed in deadline order: equal delays (timeouts,
//! periodic work) or delays that grow with creation order. Such a run goes
//! into a FIFO deque, which pops in O(1) and walks memory in order; only a
//! timer that would break the run goes into a 4-ary min-heap, which is half
//! as deep as a binary one and keeps a node's children in one or two cache
//! lines. The minimum is the smaller of the two fronts. The reference model
//! in `tests/runtime_model.rs` checks the resulting order against CPython's.
//!
//! An entry's order is one `u128`: the deadline in nanoseconds (saturated at
//! `u64::MAX`, about 584 years) above the insertion number. Deadlines
//! further out than that compare equal, and fire in insertion order, after
//! every nearer one.

use std::collections::VecDeque;
use std::time::Duration;

/// One armed timer.
pub(crate) struct TimerEntry<A> {
    /// `(deadline in ns) << 64 | insertion number`.
    key: u128,
    pub(crate) action: A,
}

impl<A> TimerEntry<A> {
    /// The deadline (saturated at `u64::MAX` nanoseconds).
    #[inline]
    pub(crate) fn when(&self) -> Duration {
        Duration::from_nanos(self.deadline_nanos())
    }

    /// The deadline in nanoseconds, as [`deadline_nanos`] gives it.
    #[inline]
    pub(crate) fn deadline_nanos(&self) -> u64 {
        (self.key >> 64) as u64
    }
}

/// `when` in nanoseconds, saturated at `u64::MAX`: the deadline part of a
/// key. A caller comparing many deadlines with one moment converts it once.
#[inline]
pub(crate) fn deadline_nanos(when: Duration) -> u64 {
    u64::try_from(when.as_nanos()).unwrap_or(u64::MAX)
}

/// Children per node of the heap.
const ARITY: usize = 4;

pub(crate) struct Timers<A> {
    /// A run of timers in increasing key order.
    sorted: VecDeque<TimerEntry<A>>,
    /// Everything armed out of order: a 4-ary min-heap on `key`.
    heap: Vec<TimerEntry<A>>,
    seq: u64,
}

impl<A> Timers<A> {
    pub(crate) fn new() -> Self {
        Timers { sorted: VecDeque::new(), heap: Vec::new(), seq: 0 }
    }

    pub(crate) fn push(&mut self, when: Duration, action: A) {
        let seq = self.seq;
        self.seq += 1;
        let entry =
            TimerEntry { key: (u128::from(deadline_nanos(when)) << 64) | u128::from(seq), action };
        // `seq` only grows, so a deadline not before the run's last one
        // keeps the run sorted.
        if self.sorted.back().is_none_or(|last| last.key < entry.key) {
            self.sorted.push_back(entry);
        } else {
            self.heap.push(entry);
            self.sift_up(self.heap.len() - 1);
        }
    }

    /// Whether the run's front comes first (if both queues are non-empty).
    #[inline]
    fn sorted_first(&self) -> Option<bool> {
        match (self.sorted.front(), self.heap.first()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(a), Some(b)) => Some(a.key < b.key),
        }
    }

    /// The earliest timer.
    #[inline]
    pub(crate) fn peek(&self) -> Option<&TimerEntry<A>> {
        match self.sorted_first()? {
            true => self.sorted.front(),
            false => self.heap.first(),
        }
    }

    /// Removes the earliest timer.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<TimerEntry<A>> {
        match self.sorted_first()? {
            true => self.sorted.pop_front(),
            false => Some(self.heap_pop()),
        }
    }

    /// Removes the heap's root; the heap is not empty.
    fn heap_pop(&mut self) -> TimerEntry<A> {
        let root = self.heap.swap_remove(0);
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
        root
    }

    /// Moves the entry at `i` up to where its key belongs.
    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.heap[i].key >= self.heap[parent].key {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Moves the entry at `i` down to where its key belongs.
    ///
    /// Bottom-up: the entry is swapped down along the smallest children all
    /// the way to a leaf, then back up to its place. Entries moved to the
    /// root come from the bottom and usually belong near it again, so this
    /// saves the comparison with the entry at every level.
    fn sift_down(&mut self, i: usize) {
        let len = self.heap.len();
        let mut pos = i;
        loop {
            let first = pos * ARITY + 1;
            if first >= len {
                break;
            }
            let children = &self.heap[first..(first + ARITY).min(len)];
            let mut least = 0;
            for (k, child) in children.iter().enumerate().skip(1) {
                if child.key < children[least].key {
                    least = k;
                }
            }
            self.heap.swap(pos, first + least);
            pos = first + least;
        }
        // Back up, but not above where it started.
        while pos > i {
            let parent = (pos - 1) / ARITY;
            if self.heap[pos].key >= self.heap[parent].key {
                break;
            }
            self.heap.swap(pos, parent);
            pos = parent;
        }
    }

    /// Makes `heap` a heap again after arbitrary changes.
    fn heapify(&mut self) {
        for i in (0..self.heap.len() / ARITY + 1).rev() {
            self.sift_down(i);
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
        let heap = std::mem::take(&mut self.heap);
        for entry in heap {
            if remove(&entry.action) {
                removed.push(entry.action);
            } else {
                self.heap.push(entry);
            }
        }
        self.heapify();
        removed
    }

    /// Empties the queue, in no particular order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = A> + '_ {
        let heap = std::mem::take(&mut self.heap);
        self.sorted.drain(..).map(|e| e.action).chain(heap.into_iter().map(|e| e.action))
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
                    let got = timers.pop().map(|e| (e.when().as_millis() as u64, e.action));
                    assert_eq!(got, Some(expected));
                }
            }
            armed.sort();
            let popped: Vec<_> = std::iter::from_fn(|| timers.pop())
                .map(|e| (e.when().as_millis() as u64, e.action))
                .collect();
            assert_eq!(popped, armed);
            assert_eq!(timers.len(), 0);
        }
    }

    /// A large shuffled queue, with cancelled timers taken out midway,
    /// still pops in `(when, insertion)` order.
    #[test]
    fn extract_keeps_the_order_of_what_remains() {
        let mut timers = Timers::new();
        let mut armed = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..2_000u64 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let when = (state >> 33) % 500;
            timers.push(Duration::from_micros(when), i);
            armed.push((when, i));
        }
        let removed = timers.extract(|&i| i % 3 == 0);
        assert_eq!(removed.len(), armed.iter().filter(|(_, i)| i % 3 == 0).count());
        armed.retain(|(_, i)| i % 3 != 0);
        armed.sort();
        let popped: Vec<_> = std::iter::from_fn(|| timers.pop())
            .map(|e| (e.when().as_micros() as u64, e.action))
            .collect();
        assert_eq!(popped, armed);
    }

    /// Deadlines beyond `u64::MAX` nanoseconds compare equal: they fire in
    /// insertion order, after every nearer one.
    #[test]
    fn deadlines_beyond_584_years_fire_last_in_insertion_order() {
        let mut timers = Timers::new();
        timers.push(Duration::MAX, 0);
        timers.push(Duration::from_secs(u64::MAX / 2), 1);
        timers.push(Duration::from_secs(1), 2);
        timers.push(Duration::from_nanos(u64::MAX), 3);
        let order: Vec<_> = std::iter::from_fn(|| timers.pop()).map(|e| e.action).collect();
        assert_eq!(order, [2, 0, 1, 3]);
    }

    /// After `extract` the heap is whole again at every size: for each size
    /// up to 80 and several removal patterns, what remains pops in order.
    #[test]
    fn extract_rebuilds_the_heap_at_every_size() {
        let mut state = 0x853c_49e6_748f_ea9bu64;
        for n in 1..80u64 {
            for step in 2..6u64 {
                let mut timers = Timers::new();
                let mut armed = Vec::new();
                // A first timer far out, so every later one goes to the heap.
                timers.push(Duration::from_secs(1_000), 0);
                armed.push((1_000_000_000, 0));
                for i in 1..=n {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let when = (state >> 40) % 1_000;
                    timers.push(Duration::from_micros(when), i);
                    armed.push((when, i));
                }
                let removed = timers.extract(|&i| i % step == 1);
                assert_eq!(removed.len(), armed.iter().filter(|(_, i)| i % step == 1).count());
                armed.retain(|(_, i)| i % step != 1);
                armed.sort();
                let popped: Vec<_> = std::iter::from_fn(|| timers.pop())
                    .map(|e| (e.when().as_micros() as u64, e.action))
                    .collect();
                assert_eq!(popped, armed, "size {n}, every {step}th taken out");
            }
        }
    }
}
