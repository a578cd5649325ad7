//! Model-based test of `Semaphore` (B11.4): random programs of acquirers,
//! releases and cancellations, run on gencoro's loop and on a plain model.
//!
//! A program starts from a semaphore of 0 to 3 permits; the main task runs
//! its operations in batches, with no yield inside a batch:
//!
//! * `Spawn`: a new task that acquires a permit, records the grant, then
//!   holds the permit until it is told to let go (an `Event`), or until it
//!   is cancelled, and drops it;
//! * `ReleaseHolder(i)`: tells the `i`-th (modulo) task that holds a permit
//!   and was not told yet to let go;
//! * `Cancel(i)`: cancels the `i`-th (modulo) task ever spawned, whatever it
//!   is doing: not started, queued, woken but not run, holding, letting go,
//!   or done;
//! * `ExtraRelease`: `sem.release()` by hand, one more permit in all;
//! * `Settle`: ends the batch and lets every ready task run (a sleep on the
//!   virtual clock, which only ends once the loop is idle).
//!
//! Inside a batch, cancellations race with wake-ups exactly as in the
//! trace tests: a task can be woken and cancelled before it runs, or
//! cancelled before it ever started. The model knows nothing of that: it
//! is a counter and a FIFO queue, and grants a permit the moment one is
//! free, to the oldest queued acquirer; a task cancelled while it holds or
//! was granted a permit gives it back to the queue at once. At every settle
//! both sides must agree on the order in which acquisitions returned, on
//! who holds a permit, on the semaphore's value and on its queue length;
//! and no permit may be lost or duplicated: the value plus the permits held
//! is the initial value plus the extra releases, and a permit is never
//! free while a task still queues for one.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Task};
use gencoro::sync::{Event, Semaphore};
use proptest::prelude::*;
use proptest::test_runner::Config;

#[derive(Debug, Clone)]
enum Op {
    Spawn,
    ReleaseHolder(usize),
    Cancel(usize),
    ExtraRelease,
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Spawn),
        3 => (0..8usize).prop_map(Op::ReleaseHolder),
        3 => (0..16usize).prop_map(Op::Cancel),
        1 => Just(Op::ExtraRelease),
        3 => Just(Op::Settle),
    ]
}

/// What both sides report at a settle.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// Tasks whose `acquire` returned a permit, in that order, so far.
    granted: Vec<usize>,
    holding: BTreeSet<usize>,
    value: usize,
    queued: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    /// Granted in this batch; the grant is recorded at the settle.
    Granted,
    Holding,
    Done,
}

/// The plain model: a counter and a FIFO queue.
struct Model {
    value: usize,
    queue: VecDeque<usize>,
    states: Vec<State>,
    granted: Vec<usize>,
    /// Grants of this batch, in order.
    batch: Vec<usize>,
}

impl Model {
    fn new(value: usize) -> Model {
        Model {
            value,
            queue: VecDeque::new(),
            states: Vec::new(),
            granted: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// A free permit goes to the oldest queued task at once.
    fn grant(&mut self) {
        while self.value > 0 {
            let Some(k) = self.queue.pop_front() else { break };
            self.value -= 1;
            self.states[k] = State::Granted;
            self.batch.push(k);
        }
    }

    fn release(&mut self) {
        self.value += 1;
        self.grant();
    }

    fn spawn(&mut self) {
        let k = self.states.len();
        self.states.push(State::Queued);
        self.queue.push_back(k);
        self.grant();
    }

    fn holders(&self) -> Vec<usize> {
        (0..self.states.len()).filter(|&k| self.states[k] == State::Holding).collect()
    }

    fn let_go(&mut self, k: usize) {
        self.states[k] = State::Done;
        self.release();
    }

    fn cancel(&mut self, k: usize) {
        match self.states[k] {
            State::Queued => {
                self.states[k] = State::Done;
                self.queue.retain(|&q| q != k);
            }
            State::Granted => {
                self.batch.retain(|&g| g != k);
                self.let_go(k);
            }
            State::Holding => self.let_go(k),
            State::Done => {}
        }
    }

    fn settle(&mut self) -> Snapshot {
        for k in std::mem::take(&mut self.batch) {
            self.states[k] = State::Holding;
            self.granted.push(k);
        }
        Snapshot {
            granted: self.granted.clone(),
            holding: self.holders().into_iter().collect(),
            value: self.value,
            queued: self.queue.len(),
        }
    }
}

/// Runs `ops` on the model: a snapshot per settle (one more at the end).
fn run_model(initial: usize, ops: &[Op]) -> Vec<Snapshot> {
    let mut m = Model::new(initial);
    let mut snapshots = Vec::new();
    for op in ops {
        match *op {
            Op::Spawn => m.spawn(),
            Op::ReleaseHolder(i) => {
                let holders = m.holders();
                if !holders.is_empty() {
                    m.let_go(holders[i % holders.len()]);
                }
            }
            Op::Cancel(i) => {
                if !m.states.is_empty() {
                    let k = i % m.states.len();
                    m.cancel(k);
                }
            }
            Op::ExtraRelease => m.release(),
            Op::Settle => snapshots.push(m.settle()),
        }
    }
    snapshots.push(m.settle());
    snapshots
}

/// Runs `ops` on gencoro: a snapshot per settle (one more at the end), and
/// the final value and queue length once every task was let go or
/// cancelled.
fn run_real(initial: usize, ops: &[Op]) -> (Vec<Snapshot>, usize, usize, usize) {
    let ops = ops.to_vec();
    Builder::new()
        .clock(Clock::virtual_time())
        .run(move || {
            let sem = Semaphore::new(initial);
            let granted = Rc::new(RefCell::new(Vec::new()));
            let holding = Rc::new(RefCell::new(BTreeSet::new()));
            let mut tasks: Vec<Task<()>> = Vec::new();
            let mut let_go: Vec<Event> = Vec::new();
            let mut asked = BTreeSet::new();
            let mut total = initial;
            let mut snapshots = Vec::new();
            let settle = |snapshots: &mut Vec<Snapshot>| -> Result<(), runtime::Error> {
                runtime::sleep(Duration::from_secs(1))?;
                snapshots.push(Snapshot {
                    granted: granted.borrow().clone(),
                    holding: holding.borrow().clone(),
                    value: sem.value(),
                    queued: sem.waiters(),
                });
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Spawn => {
                        let k = tasks.len();
                        let ev = Event::new();
                        let_go.push(ev.clone());
                        let (sem, granted, holding) =
                            (sem.clone(), granted.clone(), holding.clone());
                        tasks.push(runtime::spawn(move || {
                            let permit = sem.acquire()?;
                            granted.borrow_mut().push(k);
                            holding.borrow_mut().insert(k);
                            let told = ev.wait();
                            holding.borrow_mut().remove(&k);
                            drop(permit);
                            told
                        }));
                    }
                    Op::ReleaseHolder(i) => {
                        let holders: Vec<usize> = holding
                            .borrow()
                            .iter()
                            .copied()
                            .filter(|k| !asked.contains(k))
                            .collect();
                        if !holders.is_empty() {
                            let k = holders[i % holders.len()];
                            asked.insert(k);
                            let_go[k].set();
                        }
                    }
                    Op::Cancel(i) => {
                        if !tasks.is_empty() {
                            let k = i % tasks.len();
                            // A cancelled holder lets go: the model counts
                            // it as told.
                            asked.insert(k);
                            tasks[k].cancel();
                        }
                    }
                    Op::ExtraRelease => {
                        total += 1;
                        sem.release();
                    }
                    Op::Settle => settle(&mut snapshots)?,
                }
            }
            settle(&mut snapshots)?;
            for (ev, task) in let_go.iter().zip(&tasks) {
                ev.set();
                task.cancel();
            }
            runtime::gather_outcomes(&tasks)?;
            Ok((snapshots, total, sem.value(), sem.waiters()))
        })
        .expect("the program runs")
}

fn check(initial: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let (real, total, final_value, final_queued) = run_real(initial, ops);
    let model = run_model(initial, ops);
    for (i, (r, m)) in real.iter().zip(&model).enumerate() {
        prop_assert_eq!(r, m, "settle {} differs from the model", i);
        prop_assert!(r.value <= total);
    }
    prop_assert_eq!(real.len(), model.len());
    // The permits in all at each settle: the initial ones plus the extra
    // releases made before it.
    let mut totals = Vec::new();
    let mut extra = 0;
    for op in ops {
        match op {
            Op::ExtraRelease => extra += 1,
            Op::Settle => totals.push(initial + extra),
            _ => {}
        }
    }
    totals.push(initial + extra);
    for (i, (snapshot, permits)) in real.iter().zip(totals).enumerate() {
        prop_assert_eq!(
            snapshot.value + snapshot.holding.len(),
            permits,
            "settle {}: a permit was lost or duplicated",
            i
        );
        prop_assert!(
            snapshot.value == 0 || snapshot.queued == 0,
            "settle {}: a free permit while tasks queue",
            i
        );
        let mut seen = BTreeSet::new();
        prop_assert!(snapshot.granted.iter().all(|k| seen.insert(*k)), "a task was granted twice");
    }
    prop_assert_eq!(total, initial + extra);
    prop_assert_eq!(final_value, total, "every permit is back at the end");
    prop_assert_eq!(final_queued, 0);
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 1000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn semaphore_agrees_with_a_counter_and_a_fifo(
        initial in 0..4usize,
        ops in prop::collection::vec(op(), 0..40),
    ) {
        check(initial, &ops)?;
    }
}

/// The races the random programs rely on, spelled out: a woken waiter
/// cancelled in the batch that woke it, a waiter cancelled before it
/// started, and a release by hand that lands while a holder lets go.
#[test]
fn semaphore_model_fixed_races() {
    use Op::*;
    let programs: &[(usize, &[Op])] = &[
        (1, &[Spawn, Spawn, Spawn, Settle, ReleaseHolder(0), Cancel(1), Settle]),
        (0, &[Spawn, Spawn, Settle, ExtraRelease, Cancel(0), Cancel(1), Spawn, Settle]),
        (1, &[Spawn, Spawn, Cancel(1), Spawn, Settle, ReleaseHolder(0), ExtraRelease, Settle]),
        (0, &[Spawn, Spawn, Spawn, Settle, ExtraRelease, ExtraRelease, Cancel(0), Spawn, Settle]),
    ];
    for (initial, ops) in programs {
        check(*initial, ops).unwrap_or_else(|e| panic!("{ops:?}: {e}"));
    }
}
