//! Schedule-driven runs, the runtime's side of [`gencoro::testing`]: the
//! source of the choices the loop makes at its pick point, the record of the
//! choices it made, and the trace of what the tasks did.
//!
//! The loop consults an [`Explore`] only where a real run could have gone
//! more than one way (see `Core::run_ready_explored` and
//! `Core::fire_due_timers_explored`); with none, the loop is asyncio's FIFO
//! loop, untouched. Choices are small integers: 0 is what FIFO would pick,
//! `c` picks the `c`-th option (modulo their number), and a schedule that
//! runs out picks 0 from then on.
//!
//! [`gencoro::testing`]: crate::testing

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// How long an offloaded closure of a schedule-driven run may run, by
/// default.
pub(crate) const DEFAULT_OFFLOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// What an [`Explore`] draws its choices from.
pub(crate) enum Source {
    /// A schedule given in full (replay, exhaustive search, proptest's
    /// cases): choice `i` is `choices[i]`, 0 past the end.
    Fixed(Vec<u32>),
    /// A seeded random walk: every choice uniform among the options.
    Random(SplitMix64),
}

/// One point where the loop had more than one option, and what it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    /// How many options there were (at least 2).
    pub(crate) options: u32,
    /// The one taken, `0..options`; 0 is FIFO's.
    pub(crate) chosen: u32,
}

/// A schedule-driven run's state, shared by the loop and the harness that
/// reads it once the run is over. Nothing in it is borrowed while user code
/// runs.
pub(crate) struct Explore {
    source: RefCell<Source>,
    choices: RefCell<Vec<Choice>>,
    /// Handles run so far, and the most the run may take.
    steps: Cell<u64>,
    step_limit: u64,
    over_limit: Cell<bool>,
    /// Default names: tasks and plain futures are numbered per run, so
    /// that names (and so traces and deadlock reports) repeat run to run.
    next_task_number: Cell<u64>,
    next_future_number: Cell<u64>,
    trace: Option<RefCell<TraceLog>>,
    /// How long an offloaded closure may run before the run gives up on it.
    offload_timeout: Duration,
    /// What went wrong that a deadlock report should say.
    notes: RefCell<Vec<String>>,
    /// Set when the run must end at once, a deadlock: why.
    aborted: RefCell<Option<String>>,
}

impl Explore {
    pub(crate) fn new(source: Source, step_limit: u64, record_trace: bool) -> Explore {
        Explore {
            source: RefCell::new(source),
            // Sized for a scenario of a few dozen picks: one allocation
            // instead of growing from empty in every run.
            choices: RefCell::new(Vec::with_capacity(INITIAL_CHOICES)),
            steps: Cell::new(0),
            step_limit,
            over_limit: Cell::new(false),
            next_task_number: Cell::new(1),
            next_future_number: Cell::new(1),
            trace: record_trace.then(|| RefCell::new(TraceLog::default())),
            offload_timeout: DEFAULT_OFFLOAD_TIMEOUT,
            notes: RefCell::new(Vec::new()),
            aborted: RefCell::new(None),
        }
    }

    /// Takes the next choice among `options` (at least 2) and records it.
    pub(crate) fn choose(&self, options: usize) -> usize {
        debug_assert!(options >= 2);
        let options = u32::try_from(options).unwrap_or(u32::MAX);
        let mut made = self.choices.borrow_mut();
        let chosen = match &mut *self.source.borrow_mut() {
            Source::Fixed(choices) => choices.get(made.len()).map_or(0, |c| c % options),
            Source::Random(rng) => rng.below(options),
        };
        made.push(Choice { options, chosen });
        chosen as usize
    }

    /// The choices made, in order, taken out once the run is over.
    pub(crate) fn take_choices(&self) -> Vec<Choice> {
        std::mem::take(&mut *self.choices.borrow_mut())
    }

    /// Counts one handle about to run, or refuses it (true) once the run
    /// has taken as many as its limit allows.
    #[inline]
    pub(crate) fn count_step(&self) -> bool {
        let steps = self.steps.get();
        if steps >= self.step_limit || self.aborted.borrow().is_some() {
            self.over_limit.set(true);
            return true;
        }
        self.steps.set(steps + 1);
        false
    }

    pub(crate) fn steps(&self) -> u64 {
        self.steps.get()
    }

    pub(crate) fn step_limit(&self) -> u64 {
        self.step_limit
    }

    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit.get()
    }

    /// The default name of the next task of the run: `Task-1` is the main
    /// task.
    pub(crate) fn next_task_name(&self) -> String {
        let n = self.next_task_number.get();
        self.next_task_number.set(n + 1);
        numbered("Task-", n)
    }

    /// The default name of the next plain future of the run.
    pub(crate) fn next_future_name(&self) -> String {
        let n = self.next_future_number.get();
        self.next_future_number.set(n + 1);
        numbered("Future-", n)
    }

    /// Sets how long an offloaded closure may run (see `blocking::offload`).
    pub(crate) fn with_offload_timeout(mut self, timeout: Duration) -> Explore {
        self.offload_timeout = timeout;
        self
    }

    pub(crate) fn offload_timeout(&self) -> Duration {
        self.offload_timeout
    }

    /// Notes something a deadlock report of the run should say.
    pub(crate) fn note(&self, note: String) {
        self.notes.borrow_mut().push(note);
    }

    /// Ends the run at once: no more handles run, and it fails as a
    /// deadlock, for `why`.
    pub(crate) fn abort(&self, why: String) {
        self.aborted.borrow_mut().get_or_insert(why);
    }

    pub(crate) fn aborted(&self) -> Option<String> {
        self.aborted.borrow().clone()
    }

    pub(crate) fn notes(&self) -> Vec<String> {
        self.notes.borrow().clone()
    }

    pub(crate) fn is_tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records that task `id` did `kind` at `time`. `label` names the task
    /// the first time it is seen. Inlined, so that a run without a trace
    /// pays one test here.
    #[inline(always)]
    pub(crate) fn record(
        &self,
        time: Duration,
        id: u64,
        label: impl FnOnce() -> String,
        kind: TraceEventKind,
    ) {
        if let Some(trace) = &self.trace {
            self.record_into(trace, time, id, label, kind);
        }
    }

    #[inline(never)]
    fn record_into(
        &self,
        trace: &RefCell<TraceLog>,
        time: Duration,
        id: u64,
        label: impl FnOnce() -> String,
        kind: TraceEventKind,
    ) {
        let step = self.steps.get();
        let mut log = trace.borrow_mut();
        let task = log.index_of(id, label);
        log.events.push(TraceEvent { time, step, task, kind });
    }

    /// The index the trace gives task `id`, if it has seen it.
    pub(crate) fn traced_index(&self, id: u64) -> Option<usize> {
        self.trace.as_ref().and_then(|t| t.borrow().index.get(&id).copied())
    }

    /// Renames task `id` in the trace (a task renamed with `set_name`).
    pub(crate) fn relabel(&self, id: u64, label: String) {
        if let Some(trace) = &self.trace {
            let mut log = trace.borrow_mut();
            if let Some(&i) = log.index.get(&id) {
                log.tasks[i] = label;
            }
        }
    }

    /// The trace recorded (empty if none was).
    pub(crate) fn take_trace(&self) -> Trace {
        match &self.trace {
            Some(trace) => {
                let log = std::mem::take(&mut *trace.borrow_mut());
                Trace { tasks: log.tasks, events: log.events }
            }
            None => Trace::default(),
        }
    }
}

impl fmt::Debug for Explore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Explore")
            .field("choices", &self.choices.borrow().len())
            .field("steps", &self.steps.get())
            .field("step_limit", &self.step_limit)
            .finish_non_exhaustive()
    }
}

/// A set of positions `0..n` that finds its `k`-th smallest member in
/// O(log n): a Fenwick tree of counts, or one bit mask while `n` is at
/// most 64. A schedule-driven iteration keeps the position of each
/// stream's first handle in one, so that a pick costs O(log n) however
/// long the ready queue is.
#[derive(Default)]
pub(crate) struct PositionSet {
    /// The members, while `n <= 64`.
    bits: u64,
    /// Otherwise: `tree[i]` counts the members in `(i - lowbit(i), i]`,
    /// 1-based.
    tree: Vec<u32>,
    small: bool,
    len: usize,
}

impl PositionSet {
    /// Empties the set, for positions `0..n`.
    pub(crate) fn reset(&mut self, n: usize) {
        self.len = 0;
        self.bits = 0;
        self.small = n <= 64;
        self.tree.clear();
        if !self.small {
            self.tree.resize(n + 1, 0);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn update(&mut self, pos: usize, add: bool) {
        let mut i = pos + 1;
        while i < self.tree.len() {
            if add {
                self.tree[i] += 1;
            } else {
                self.tree[i] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    /// Adds `pos`, which must not be a member.
    pub(crate) fn insert(&mut self, pos: usize) {
        if self.small {
            self.bits |= 1 << pos;
        } else {
            self.update(pos, true);
        }
        self.len += 1;
    }

    /// Removes `pos`, which must be a member.
    pub(crate) fn remove(&mut self, pos: usize) {
        if self.small {
            self.bits &= !(1 << pos);
        } else {
            self.update(pos, false);
        }
        self.len -= 1;
    }

    /// The `k`-th smallest member, from 0; `k` must be below `len`.
    pub(crate) fn kth(&self, k: usize) -> usize {
        debug_assert!(k < self.len);
        if self.small {
            let mut bits = self.bits;
            for _ in 0..k {
                bits &= bits - 1;
            }
            return bits.trailing_zeros() as usize;
        }
        let n = self.tree.len() - 1;
        let mut pos = 0;
        let mut rest = k as u32;
        let mut step = if n == 0 { 0 } else { 1 << n.ilog2() };
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= rest {
                pos = next;
                rest -= self.tree[next];
            }
            step >>= 1;
        }
        pos
    }
}

/// The capacity a run's record of choices starts with.
const INITIAL_CHOICES: usize = 128;

/// `prefix` followed by `n` in decimal, as `format!("{prefix}{n}")` gives
/// it, without the formatting machinery (every task of a run is named).
fn numbered(prefix: &str, mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(prefix.len() + digits.len() - start);
    name.push_str(prefix);
    name.extend(digits[start..].iter().map(|&d| char::from(d)));
    name
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast generator whose
/// whole state is one `u64`, so a seed is the whole story of a run.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below
    /// 2^-32 for the small `n` of a ready queue).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::{PositionSet, numbered};

    #[test]
    fn numbered_names_match_format() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            assert_eq!(numbered("Task-", n), format!("Task-{n}"));
        }
        assert_eq!(numbered("Future-", 7), "Future-7");
    }

    #[test]
    fn a_position_set_finds_its_kth_member_against_a_sorted_list() {
        let mut rng = super::SplitMix64::new(3);
        for n in [1usize, 2, 3, 7, 8, 9, 63, 64, 65, 100, 200] {
            let mut set = PositionSet::default();
            set.reset(n);
            let mut model: Vec<usize> = Vec::new();
            for _ in 0..400 {
                let pos = rng.below(n as u32) as usize;
                match model.binary_search(&pos) {
                    Ok(i) => {
                        model.remove(i);
                        set.remove(pos);
                    }
                    Err(i) => {
                        model.insert(i, pos);
                        set.insert(pos);
                    }
                }
                assert_eq!(set.len(), model.len());
                for (k, &expected) in model.iter().enumerate() {
                    assert_eq!(set.kth(k), expected, "n {n}, k {k}, members {model:?}");
                }
            }
        }
    }
}

#[derive(Default)]
struct TraceLog {
    tasks: Vec<String>,
    /// Task id to its index in `tasks`: looked up, never iterated, so the
    /// trace does not depend on the map's order.
    index: HashMap<u64, usize>,
    events: Vec<TraceEvent>,
}

impl TraceLog {
    fn index_of(&mut self, id: u64, label: impl FnOnce() -> String) -> usize {
        if let Some(&i) = self.index.get(&id) {
            return i;
        }
        self.tasks.push(label());
        self.index.insert(id, self.tasks.len() - 1);
        self.tasks.len() - 1
    }
}

/// What the tasks of a schedule-driven run did, in order: the record that
/// [`gencoro::testing`](crate::testing) prints as a timeline, exports as
/// Chrome trace-event JSON, and compares between runs.
///
/// Two runs of the same scenario under the same schedule give equal traces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub(crate) tasks: Vec<String>,
    pub(crate) events: Vec<TraceEvent>,
}

impl Trace {
    /// The tasks, by the index events name them with, in the order they
    /// were first seen (the main task first). Their names: the one given,
    /// or `Task-<n>`, numbered per run.
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }

    /// The events, in the order they happened.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }
}

/// One thing a task did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceEvent {
    /// Loop time (virtual) when it happened.
    pub time: Duration,
    /// The ready handle (a task step, a callback, a timer) of the run it
    /// happened in, counting from 1 (0: before the first): a logical clock
    /// that orders events at the same loop time.
    pub step: u64,
    /// The task, as an index into [`Trace::tasks`].
    pub task: usize,
    /// What happened.
    pub kind: TraceEventKind,
}

/// What a [`TraceEvent`] records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceEventKind {
    /// The task was created (by the task at index `parent`, if a task
    /// created it).
    Spawn {
        /// The creating task, as an index into [`Trace::tasks`].
        parent: Option<usize>,
    },
    /// The loop resumed the task (or started it).
    Resume,
    /// The task suspended, waiting on what `on` describes (`yield` for a
    /// bare yield or `sleep(0)`).
    Suspend {
        /// What it waits on.
        on: String,
    },
    /// The task was made ready: what it waited on is done, or its wait is
    /// being cancelled.
    Wake,
    /// Cancellation of the task was requested.
    Cancel,
    /// The task ended.
    Complete {
        /// How.
        ending: Ending,
    },
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Its body returned a value.
    Returned,
    /// Its body returned an error (or panicked); the error's message.
    Failed(String),
    /// It ended cancelled.
    Cancelled,
}
