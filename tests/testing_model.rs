#![cfg(feature = "testing")]
//! `gencoro::testing`: a schedule only produces orders a real run could.
//!
//! A reference-model property test runs random small programs (tasks doing
//! yields, sleeps, waits on events and `call_soon`s) under random schedules
//! and checks the loop's promises against a log the program keeps itself.
//! Then: which orders schedules can and cannot reach for timers and
//! offloaded closures, the schedule's text form, and the Chrome trace
//! export. All runs are on the harness's virtual clock.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, TaskBuilder};
use gencoro::sync::Event;
use gencoro::testing::{self, Checker, Schedule, TraceEventKind};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------

/// One step of a task's program.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `sleep(0)`.
    Yield,
    /// `sleep(ms)`, `ms` from 1 to 3 (so equal deadlines are common).
    Sleep(u64),
    /// Waits on event `k`, which the setter task sets at some time.
    Wait(usize),
    /// `call_soon` of a callback that logs its number.
    CallSoon,
}

const EVENTS: usize = 2;

#[derive(Clone, Debug)]
struct Program {
    tasks: Vec<Vec<Op>>,
    /// When the setter sets each event (ms after the start; 0 = at once).
    set_at: [u64; EVENTS],
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Yield),
        2 => (1u64..=3).prop_map(Op::Sleep),
        1 => (0..EVENTS).prop_map(Op::Wait),
        2 => Just(Op::CallSoon),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (proptest::collection::vec(proptest::collection::vec(op(), 0..6), 1..5), [0u64..4, 0u64..4])
        .prop_map(|(tasks, set_at)| Program { tasks, set_at })
}

fn schedule() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(prop_oneof![2 => Just(0u32), 1 => 1u32..5], 0..80)
}

/// What the program logs, in the order it happened.
#[derive(Clone, Debug, PartialEq)]
enum Entry {
    /// Task `task` begins op `op` at loop time `time`.
    Begin { task: usize, op: usize, time: Duration },
    /// Task `task` ends op `op`; `set` is whether the event it waited on
    /// (for a `Wait`) had been set by the setter, by the setter's own flag.
    End { task: usize, op: usize, time: Duration, set: bool },
    /// The setter set event `k`.
    Set { k: usize, time: Duration },
    /// The callback numbered `n` (in the order of the `call_soon` calls) ran.
    Callback { n: usize, time: Duration },
}

#[derive(Default)]
struct Log {
    entries: Vec<Entry>,
    /// How many `call_soon`s have been made.
    scheduled: usize,
}

fn model_scenario(program: Program, log: Rc<RefCell<Log>>) -> impl Fn() -> Result<(), String> {
    move || {
        *log.borrow_mut() = Log::default();
        let now = || runtime::time().unwrap();
        let events: Rc<Vec<(Event, Cell<bool>)>> =
            Rc::new((0..EVENTS).map(|_| (Event::new(), Cell::new(false))).collect());
        let setter = {
            let (events, log, set_at) = (events.clone(), log.clone(), program.set_at);
            runtime::spawn(move || -> Result<(), Error> {
                let mut order: Vec<usize> = (0..EVENTS).collect();
                order.sort_by_key(|&k| set_at[k]);
                let mut elapsed = 0;
                for k in order {
                    runtime::sleep(ms(set_at[k] - elapsed))?;
                    elapsed = set_at[k];
                    events[k].1.set(true);
                    events[k].0.set();
                    log.borrow_mut().entries.push(Entry::Set { k, time: now() });
                }
                Ok(())
            })
        };
        let tasks: Vec<_> = program
            .tasks
            .iter()
            .enumerate()
            .map(|(task, ops)| {
                let (ops, events, log) = (ops.clone(), events.clone(), log.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    for (i, op) in ops.into_iter().enumerate() {
                        log.borrow_mut().entries.push(Entry::Begin { task, op: i, time: now() });
                        let mut set = false;
                        match op {
                            Op::Yield => runtime::sleep(Duration::ZERO)?,
                            Op::Sleep(d) => runtime::sleep(ms(d))?,
                            Op::Wait(k) => {
                                events[k].0.wait()?;
                                set = events[k].1.get();
                            }
                            Op::CallSoon => {
                                let n = {
                                    let mut log = log.borrow_mut();
                                    log.scheduled += 1;
                                    log.scheduled - 1
                                };
                                let log = log.clone();
                                runtime::call_soon(move || {
                                    let time = runtime::time().unwrap();
                                    log.borrow_mut().entries.push(Entry::Callback { n, time });
                                })?;
                            }
                        }
                        log.borrow_mut().entries.push(Entry::End { task, op: i, time: now(), set });
                    }
                    Ok(())
                })
            })
            .collect();
        runtime::gather(tasks).map_err(|e| e.to_string())?;
        setter.join().map_err(|e| e.to_string())?;
        // Let the last callbacks run.
        runtime::sleep(ms(1)).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Checks the log of one run against the program; `Err` says what broke.
fn check_log(program: &Program, log: &Log) -> Result<(), String> {
    let entries = &log.entries;
    // (b) virtual time never goes backwards.
    let time_of = |e: &Entry| match *e {
        Entry::Begin { time, .. }
        | Entry::End { time, .. }
        | Entry::Set { time, .. }
        | Entry::Callback { time, .. } => time,
    };
    for pair in entries.windows(2) {
        if time_of(&pair[1]) < time_of(&pair[0]) {
            return Err(format!("time went backwards: {pair:?}"));
        }
    }
    // (a) each task's steps in program order, all of them, each begun
    // before it ends; (b) a sleep of d takes at least d.
    for (task, ops) in program.tasks.iter().enumerate() {
        let mine: Vec<&Entry> = entries
            .iter()
            .filter(|e| matches!(e, Entry::Begin { task: t, .. } | Entry::End { task: t, .. } if *t == task))
            .collect();
        if mine.len() != 2 * ops.len() {
            return Err(format!("task {task} logged {} entries for {} ops", mine.len(), ops.len()));
        }
        for (i, pair) in mine.chunks(2).enumerate() {
            let (Entry::Begin { op: b, time: start, .. }, Entry::End { op: e, time: end, set, .. }) =
                (pair[0], pair[1])
            else {
                return Err(format!("task {task}: op {i} out of order: {pair:?}"));
            };
            if *b != i || *e != i {
                return Err(format!("task {task}: op {i} ran as ops {b}/{e}"));
            }
            match ops[i] {
                Op::Sleep(d) if *end < *start + ms(d) => {
                    return Err(format!(
                        "task {task}: sleep({d}ms) from {start:?} ended at {end:?}"
                    ));
                }
                // (d) a waiter is never resumed before its event is set.
                Op::Wait(k) if !*set => {
                    return Err(format!("task {task}: woke from event {k} before it was set"));
                }
                _ => {}
            }
        }
    }
    // (d) again, by position: the setter's entry precedes the waiter's end.
    for (pos, entry) in entries.iter().enumerate() {
        if let Entry::End { task, op, .. } = *entry {
            if let Op::Wait(k) = program.tasks[task][op] {
                let set_before =
                    entries[..pos].iter().any(|e| matches!(e, Entry::Set { k: j, .. } if *j == k));
                if !set_before {
                    return Err(format!(
                        "task {task} op {op}: ended its wait on {k} before the set"
                    ));
                }
            }
        }
    }
    // The setter sets each event no earlier than its time.
    for entry in entries {
        if let Entry::Set { k, time } = *entry {
            if time < ms(program.set_at[k]) {
                return Err(format!("event {k} set at {time:?}, before {}ms", program.set_at[k]));
            }
        }
    }
    // (c) callbacks run in the order they were scheduled, all of them.
    let ran: Vec<usize> = entries
        .iter()
        .filter_map(|e| if let Entry::Callback { n, .. } = e { Some(*n) } else { None })
        .collect();
    if ran != (0..log.scheduled).collect::<Vec<_>>() {
        return Err(format!("callbacks ran as {ran:?} for {} scheduled", log.scheduled));
    }
    // And a callback never runs before the step that scheduled it: the
    // n-th callback after the n-th CallSoon's begin.
    let mut begun = 0;
    for entry in entries {
        match *entry {
            Entry::Begin { task, op, .. } if matches!(program.tasks[task][op], Op::CallSoon) => {
                begun += 1
            }
            Entry::Callback { n, .. } if n >= begun => {
                return Err(format!("callback {n} ran before it was scheduled"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks that a trace tells a story a real run could: each task is
/// spawned first (by a task spawned before it), then runs in stretches from
/// a resume to a suspension or its end; a task that suspended to wait (not
/// a bare yield) is woken before it resumes; nothing follows its end; time
/// and steps never go backwards.
fn check_trace(trace: &testing::Trace) -> Result<(), String> {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum State {
        Unborn,
        Ready,
        Running,
        Yielded,
        Waiting,
        Woken,
        Done,
    }
    let mut states = vec![State::Unborn; trace.tasks().len()];
    let mut last = (Duration::ZERO, 0);
    for (i, event) in trace.events().iter().enumerate() {
        if (event.time, event.step) < last {
            return Err(format!("event {i} goes back in time or steps: {event:?}"));
        }
        last = (event.time, event.step);
        let state = states.get(event.task).copied().ok_or(format!("event {i}: no such task"))?;
        let next = match (&event.kind, state) {
            (TraceEventKind::Spawn { parent }, State::Unborn) => {
                if let Some(p) = *parent {
                    if p == event.task || states.get(p).is_none_or(|&s| s == State::Unborn) {
                        return Err(format!("event {i}: spawned by {p}, not yet alive"));
                    }
                }
                State::Ready
            }
            (TraceEventKind::Resume, State::Ready | State::Yielded | State::Woken) => {
                State::Running
            }
            (TraceEventKind::Suspend { on }, State::Running) if on == "yield" => State::Yielded,
            (TraceEventKind::Suspend { .. }, State::Running) => State::Waiting,
            (TraceEventKind::Complete { .. }, State::Running) => State::Done,
            (TraceEventKind::Wake, State::Waiting | State::Woken) => State::Woken,
            // A wake-up or cancellation request may come at any time the
            // task is alive (a cancelled yield, a task cancelled unstarted).
            (TraceEventKind::Wake | TraceEventKind::Cancel, s)
                if s != State::Unborn && s != State::Done =>
            {
                s
            }
            (kind, state) => {
                return Err(format!(
                    "event {i}: {kind:?} for task {} ({}) in state {state:?}",
                    event.task,
                    trace.tasks()[event.task]
                ));
            }
        };
        states[event.task] = next;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random programs under random schedules: the loop keeps its
    /// promises, and the run is the same when repeated.
    #[test]
    fn schedules_only_produce_orders_a_real_run_could(program in program(), choices in schedule()) {
        let log = Rc::new(RefCell::new(Log::default()));
        let schedule = Schedule::new(choices);
        let run = testing::replay(&schedule, model_scenario(program.clone(), log.clone()));
        prop_assert!(run.passed(), "{:?}\n{}", run.failure_message(), run.trace());
        if let Err(broken) = check_log(&program, &log.borrow()) {
            return Err(TestCaseError::fail(format!("{broken}\nunder {schedule}:\n{}", run.trace())));
        }
        if let Err(broken) = check_trace(run.trace()) {
            return Err(TestCaseError::fail(format!("{broken}\nunder {schedule}:\n{}", run.trace())));
        }
        let first = log.borrow().entries.clone();
        let again = testing::replay(&schedule, model_scenario(program.clone(), log.clone()));
        prop_assert_eq!(again.trace(), run.trace());
        prop_assert_eq!(&log.borrow().entries, &first);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Choice 0 is FIFO: the empty schedule runs a program exactly as the
    /// ordinary loop (no schedule, same virtual clock) runs it.
    #[test]
    fn the_fifo_schedule_runs_programs_as_the_ordinary_loop_does(program in program()) {
        let log = Rc::new(RefCell::new(Log::default()));
        let scenario = model_scenario(program.clone(), log.clone());
        let outcome = Builder::new().clock(Clock::virtual_time()).run(move || Ok(scenario()));
        prop_assert_eq!(outcome.map_err(|e| e.to_string()), Ok(Ok(())));
        let ordinary = std::mem::take(&mut *log.borrow_mut());
        let run = testing::replay(&Schedule::fifo(), model_scenario(program.clone(), log.clone()));
        prop_assert!(run.passed(), "{:?}", run.failure_message());
        prop_assert_eq!(&log.borrow().entries, &ordinary.entries);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// The `_run_once` snapshot: an iteration runs each task that was ready
    /// when it began once, and what it makes ready waits for the next one.
    /// So tasks that only yield advance in lockstep under every schedule: at
    /// any moment, no two unfinished tasks differ by more than one step.
    #[test]
    fn yielding_tasks_advance_in_lockstep_under_every_schedule(
        lengths in proptest::collection::vec(1usize..6, 2..5),
        choices in schedule(),
    ) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let scenario = {
            let (lengths, log) = (lengths.clone(), log.clone());
            move || -> Result<(), String> {
                log.borrow_mut().clear();
                let tasks: Vec<_> = lengths
                    .iter()
                    .enumerate()
                    .map(|(task, &steps)| {
                        let log = log.clone();
                        runtime::spawn(move || -> Result<(), Error> {
                            for step in 0..steps {
                                log.borrow_mut().push((task, step));
                                runtime::sleep(Duration::ZERO)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                runtime::gather(tasks).map(drop).map_err(|e| e.to_string())
            }
        };
        let run = testing::replay(&Schedule::new(choices), scenario);
        prop_assert!(run.passed(), "{:?}", run.failure_message());
        let mut done = vec![0usize; lengths.len()];
        for &(task, step) in log.borrow().iter() {
            prop_assert_eq!(step, done[task], "task {} out of order", task);
            done[task] += 1;
            let unfinished: Vec<usize> =
                (0..lengths.len()).filter(|&t| done[t] < lengths[t]).map(|t| done[t]).collect();
            if let (Some(min), Some(max)) = (unfinished.iter().min(), unfinished.iter().max()) {
                prop_assert!(max - min <= 1, "steps taken {:?} of {:?}", done, lengths);
            }
        }
        prop_assert_eq!(done, lengths);
    }
}

#[test]
fn the_model_check_catches_a_broken_log() {
    // The checker of the model test can fail: feed it logs a wrong loop
    // would produce.
    let program =
        Program { tasks: vec![vec![Op::Sleep(2), Op::CallSoon, Op::Wait(0)]], set_at: [1, 0] };
    let log = Rc::new(RefCell::new(Log::default()));
    let run = testing::replay(&Schedule::fifo(), model_scenario(program.clone(), log.clone()));
    assert!(run.passed(), "{:?}", run.failure_message());
    let good = std::mem::take(&mut *log.borrow_mut());
    check_log(&program, &good).unwrap();
    let t = |n| ms(n);
    let mutate = |f: &dyn Fn(&mut Vec<Entry>)| {
        let mut entries = good.entries.clone();
        f(&mut entries);
        check_log(&program, &Log { entries, scheduled: good.scheduled })
    };
    // A sleep that ends early.
    assert!(
        mutate(&|e| {
            for x in e.iter_mut() {
                if let Entry::End { op: 0, time, .. } = x {
                    *time = t(1);
                }
            }
        })
        .is_err()
    );
    // A step out of order.
    assert!(
        mutate(&|e| {
            let i = e.iter().position(|x| matches!(x, Entry::Begin { op: 1, .. })).unwrap();
            let j = e.iter().position(|x| matches!(x, Entry::Begin { op: 2, .. })).unwrap();
            e.swap(i, j);
        })
        .is_err()
    );
    // A lost callback.
    assert!(mutate(&|e| e.retain(|x| !matches!(x, Entry::Callback { .. }))).is_err());
    // A wake-up before the set.
    assert!(
        mutate(&|e| {
            let i = e.iter().position(|x| matches!(x, Entry::Set { k: 0, .. })).unwrap();
            let set = e.remove(i);
            e.push(set);
        })
        .is_err()
    );
}

#[test]
fn callbacks_scheduled_in_one_step_keep_their_order_under_every_schedule() {
    // Callbacks from several tasks, interleaved with task wake-ups: every
    // schedule with up to two deviations runs them in the order scheduled.
    testing::check_exhaustive(2, || -> Result<(), String> {
        let ran = Rc::new(RefCell::new(Vec::new()));
        let next = Rc::new(Cell::new(0));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (ran, next) = (ran.clone(), next.clone());
                runtime::spawn(move || -> Result<(), Error> {
                    for _ in 0..2 {
                        let n = next.get();
                        next.set(n + 1);
                        let ran = ran.clone();
                        runtime::call_soon(move || ran.borrow_mut().push(n))?;
                        runtime::sleep(Duration::ZERO)?;
                    }
                    Ok(())
                })
            })
            .collect();
        runtime::gather(tasks).map_err(|e| e.to_string())?;
        runtime::sleep(Duration::ZERO).map_err(|e| e.to_string())?;
        let ran = ran.borrow();
        if *ran == (0..6).collect::<Vec<_>>() { Ok(()) } else { Err(format!("ran {ran:?}")) }
    })
    .unwrap();
}

// ---------------------------------------------------------------------------
// Timers and offloaded closures.
// ---------------------------------------------------------------------------

/// Tasks `a` and `b` sleep `delays`; the order in which they wake.
fn sleepers(delays: [u64; 2], order: Rc<RefCell<Vec<String>>>) -> impl Fn() -> Result<(), String> {
    move || {
        order.borrow_mut().clear();
        let tasks: Vec<_> = ["a", "b"]
            .into_iter()
            .zip(delays)
            .map(|(name, delay)| {
                let order = order.clone();
                TaskBuilder::new().name(name).spawn(move || -> Result<(), Error> {
                    runtime::sleep(ms(delay))?;
                    order.borrow_mut().push(name.to_owned());
                    Ok(())
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        runtime::gather(tasks).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Every order `scenario` leaves in `order` under the schedules of up to
/// `k` deviations (found by recording them from a passing search).
fn orders_reached<T: Clone + Ord + 'static>(
    k: usize,
    order: Rc<RefCell<Vec<T>>>,
    scenario: impl Fn() -> Result<(), String> + 'static,
) -> Vec<Vec<T>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    testing::check_exhaustive(k, move || {
        scenario()?;
        sink.borrow_mut().push(order.borrow().clone());
        Ok::<(), String>(())
    })
    .unwrap();
    let mut seen = seen.borrow().clone();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn tasks_sleeping_the_same_time_wake_in_either_order_and_fifo_keeps_spawn_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let fifo = testing::replay(&Schedule::fifo(), sleepers([5, 5], order.clone()));
    assert!(fifo.passed());
    assert_eq!(*order.borrow(), ["a", "b"]);
    let reached = orders_reached(1, order.clone(), sleepers([5, 5], order.clone()));
    assert_eq!(reached, [vec!["a", "b"], vec!["b", "a"]]);
}

#[test]
fn tasks_sleeping_different_times_wake_in_deadline_order_under_every_schedule() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let reached = orders_reached(3, order.clone(), sleepers([6, 5], order.clone()));
    assert_eq!(reached, [vec!["b", "a"]]);
}

/// Two `call_later`s with `delays`, scheduled in one step; the order they
/// run in. Callbacks are one stream at the pick point, so only the timer
/// choice can reorder them.
fn later_calls(
    delays: [u64; 2],
    order: Rc<RefCell<Vec<usize>>>,
) -> impl Fn() -> Result<(), String> {
    move || {
        order.borrow_mut().clear();
        for (i, delay) in delays.into_iter().enumerate() {
            let order = order.clone();
            runtime::call_later(ms(delay), move || order.borrow_mut().push(i))
                .map_err(|e| e.to_string())?;
        }
        runtime::sleep(ms(10)).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[test]
fn call_later_timers_with_equal_deadlines_fire_in_either_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let fifo = testing::replay(&Schedule::fifo(), later_calls([3, 3], order.clone()));
    assert!(fifo.passed());
    assert_eq!(*order.borrow(), [0, 1], "choice 0 is FIFO: the first armed fires first");
    let reached = orders_reached(1, order.clone(), later_calls([3, 3], order.clone()));
    assert_eq!(reached, [vec![0, 1], vec![1, 0]]);
    let reached = orders_reached(3, order.clone(), later_calls([4, 3], order.clone()));
    assert_eq!(reached, [vec![1, 0]], "an earlier deadline always fires first");
}

#[test]
fn three_equal_deadline_timers_reach_all_six_orders() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let scenario = {
        let order = order.clone();
        move || -> Result<(), String> {
            order.borrow_mut().clear();
            for i in 0..3 {
                let order = order.clone();
                runtime::call_later(ms(2), move || order.borrow_mut().push(i))
                    .map_err(|e| e.to_string())?;
            }
            runtime::sleep(ms(5)).map_err(|e| e.to_string())?;
            Ok(())
        }
    };
    let reached = orders_reached(2, order, scenario);
    assert_eq!(reached.len(), 6, "{reached:?}");
}

/// Two tasks offload a closure each; the order the closures ran in (by
/// the closures themselves) and the order their results were delivered.
#[derive(Default)]
struct OffloadOrders {
    ran: Arc<Mutex<Vec<usize>>>,
    delivered: Rc<RefCell<Vec<usize>>>,
}

fn offloaders(orders: Rc<OffloadOrders>) -> impl Fn() -> Result<(), String> {
    move || {
        orders.ran.lock().unwrap().clear();
        orders.delivered.borrow_mut().clear();
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let ran = orders.ran.clone();
                let delivered = orders.delivered.clone();
                runtime::spawn(move || -> Result<(), Error> {
                    let got = runtime::offload(move || {
                        ran.lock().unwrap().push(i);
                        i
                    })?;
                    delivered.borrow_mut().push(got);
                    Ok(())
                })
            })
            .collect();
        runtime::gather(tasks).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[test]
fn two_offloaded_closures_can_run_and_deliver_in_either_order() {
    let orders = Rc::new(OffloadOrders::default());
    let fifo = testing::replay(&Schedule::fifo(), offloaders(orders.clone()));
    assert!(fifo.passed(), "{:?}", fifo.failure_message());
    assert_eq!(*orders.ran.lock().unwrap(), [0, 1]);
    assert_eq!(*orders.delivered.borrow(), [0, 1]);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let scenario = offloaders(orders.clone());
    let inner = orders.clone();
    testing::check_exhaustive(2, move || {
        scenario()?;
        let ran = inner.ran.lock().unwrap().clone();
        sink.borrow_mut().push((ran, inner.delivered.borrow().clone()));
        Ok::<(), String>(())
    })
    .unwrap();
    let seen = seen.borrow();
    for ran in [[0, 1], [1, 0]] {
        assert!(seen.iter().any(|(r, _)| *r == ran), "closures never ran as {ran:?}: {seen:?}");
    }
    for delivered in [[0, 1], [1, 0]] {
        assert!(seen.iter().any(|(_, d)| *d == delivered), "never delivered as {delivered:?}");
    }
    // The two can differ: run in one order, delivered in the other.
    assert!(seen.iter().any(|(r, d)| r != d), "run and delivery order always agree: {seen:?}");
}

/// In a schedule-driven run an offloaded closure runs on a thread of its
/// own (it sees what a pool thread sees: no running loop), and closures
/// run one at a time, never two at once, under any schedule.
#[test]
fn offloaded_closures_run_one_at_a_time_off_the_loop_thread_in_a_schedule_driven_run() {
    let running = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    let (r, o) = (running.clone(), overlapped.clone());
    testing::check_seeded(5, 30, move || -> Result<(), String> {
        let loop_thread = std::thread::current().id();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (r, o) = (r.clone(), o.clone());
                runtime::spawn(move || {
                    runtime::offload(move || {
                        if r.fetch_add(1, Ordering::SeqCst) > 0 {
                            o.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                        r.fetch_sub(1, Ordering::SeqCst);
                        (std::thread::current().id(), runtime::EventLoop::running().is_err())
                    })
                })
            })
            .collect();
        for (thread, no_loop) in runtime::gather(tasks).map_err(|e| e.to_string())? {
            if thread == loop_thread || !no_loop {
                return Err("an offloaded closure ran on the loop's thread".to_owned());
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(overlapped.load(Ordering::SeqCst), 0, "two offloaded closures ran at once");
}

// ---------------------------------------------------------------------------
// Schedule strings.
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn schedule_strings_round_trip(
        choices in proptest::collection::vec(prop_oneof![3 => Just(0u32), 1 => any::<u32>()], 0..40)
    ) {
        let schedule = Schedule::new(choices.clone());
        let mut trimmed = choices.clone();
        while trimmed.last() == Some(&0) {
            trimmed.pop();
        }
        prop_assert_eq!(schedule.choices(), &trimmed[..]);
        prop_assert_eq!(schedule.deviations(), choices.iter().filter(|&&c| c != 0).count());
        let text = schedule.to_string();
        let parsed: Schedule = text.parse().unwrap();
        prop_assert_eq!(&parsed, &schedule, "{}", text);
        prop_assert_eq!(parsed.to_string(), text.clone());
        // Short: no spelled-out run of three zeros, no trailing zero.
        prop_assert!(!format!(".{text}.").contains(".0.0.0."), "{}", text);
        prop_assert!(trimmed.is_empty() == (text == "fifo"), "{}", text);
        prop_assert!(!text.ends_with(".0"), "{}", text);
    }
}

#[test]
fn schedule_strings_have_a_fifo_form_and_zero_runs() {
    assert_eq!(Schedule::fifo().to_string(), "fifo");
    assert!(Schedule::fifo().is_fifo());
    assert_eq!("fifo".parse::<Schedule>().unwrap(), Schedule::fifo());
    assert_eq!("".parse::<Schedule>().unwrap(), Schedule::fifo());
    assert_eq!("0*7".parse::<Schedule>().unwrap(), Schedule::fifo());
    assert_eq!(" 1.2 ".parse::<Schedule>().unwrap().choices(), [1, 2]);
    let s: Schedule = "0*3.2.0*4.1".parse().unwrap();
    assert_eq!(s.choices(), [0, 0, 0, 2, 0, 0, 0, 0, 1]);
    assert_eq!(s.to_string(), "0*3.2.0*4.1");
    assert_eq!(Schedule::new(vec![0, 0, 1]).to_string(), "0.0.1");
    assert_eq!(Schedule::new(vec![0, 0, 0, 1]).to_string(), "0*3.1");
    assert_eq!(Schedule::new(vec![1, 0, 0]).to_string(), "1");
    assert_eq!(Schedule::new(vec![0, 0, 0]), Schedule::fifo());
    assert_eq!(s.deviations(), 2);
}

#[test]
fn bad_schedule_strings_are_errors_naming_the_bad_part() {
    for (text, part) in [
        ("x", "x"),
        ("1.x.2", "x"),
        ("1..2", ""),
        ("1.", ""),
        ("-1", "-1"),
        ("4294967296", "4294967296"),
        ("0*", "0*"),
        ("0*y", "0*y"),
        ("0*16777217", "0*16777217"),
        ("1,2", "1,2"),
        ("fifo.1", "fifo"),
    ] {
        let error = text.parse::<Schedule>().expect_err(text);
        let message = error.to_string();
        assert!(message.starts_with("not a schedule"), "{text}: {message}");
        assert!(message.contains(&format!("'{part}'")), "{text}: {message}");
    }
    // The most choices a string may spell out (2^24) still parse.
    assert_eq!("0*16777215.1".parse::<Schedule>().unwrap().choices().len(), 1 << 24);
}

// ---------------------------------------------------------------------------
// Chrome trace export.
// ---------------------------------------------------------------------------

fn traced_scenario() -> Result<(), String> {
    let named = TaskBuilder::new()
        .name("named")
        .spawn(|| -> Result<(), Error> {
            runtime::sleep(ms(2))?;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let failing = runtime::spawn(|| -> Result<(), Error> {
        runtime::sleep(Duration::ZERO)?;
        Err(Error::new("planned failure"))
    });
    let cancelled = runtime::spawn(|| -> Result<(), Error> { runtime::sleep(ms(100)) });
    runtime::sleep(ms(1)).map_err(|e| e.to_string())?;
    cancelled.cancel();
    let _ = cancelled.join();
    let _ = failing.join();
    named.join().map_err(|e| e.to_string())
}

#[test]
fn the_chrome_export_is_valid_trace_event_json() {
    let schedule: Schedule = "0.1.1.0.1".parse().unwrap();
    let run = testing::replay(&schedule, traced_scenario);
    assert!(run.passed(), "{:?}", run.failure_message());
    let trace = run.trace();
    check_trace(trace).unwrap();
    let json: serde_json::Value = serde_json::from_str(&trace.to_chrome_json()).unwrap();
    let events = json["traceEvents"].as_array().expect("traceEvents is an array");
    assert!(!events.is_empty());
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut complete = 0;
    for event in events {
        for field in ["name", "ph", "ts", "pid", "tid"] {
            assert!(event.get(field).is_some(), "{field} missing in {event}");
        }
        assert!(event["name"].is_string(), "{event}");
        assert!(event["ts"].is_u64() || event["ts"].is_f64(), "{event}");
        assert!(event["pid"].is_u64(), "{event}");
        let tid = event["tid"].as_u64().expect("tid is a number");
        assert!((tid as usize) < trace.tasks().len(), "tid {tid} is no task: {event}");
        match event["ph"].as_str().expect("ph is a string") {
            "X" => {
                complete += 1;
                let dur = event["dur"].as_f64().unwrap_or_else(|| panic!("X without dur: {event}"));
                assert!(dur > 0.0, "{event}");
            }
            "M" => {
                assert_eq!(event["name"], "thread_name", "{event}");
                let name = event["args"]["name"].as_str().expect("thread_name has a name");
                assert!(names.insert(tid, name.to_owned()).is_none(), "two names for {tid}");
            }
            "i" | "I" => {}
            other => panic!("unexpected phase {other}: {event}"),
        }
    }
    // Thread names are the trace's tasks, by index.
    let expected: HashMap<u64, String> =
        trace.tasks().iter().enumerate().map(|(i, t)| (i as u64, t.clone())).collect();
    assert_eq!(names, expected);
    assert!(trace.tasks().iter().any(|t| t == "named"));
    // One complete event per stretch a task ran: each suspension or end.
    let stretches = trace
        .events()
        .iter()
        .filter(|e| {
            matches!(e.kind, TraceEventKind::Suspend { .. } | TraceEventKind::Complete { .. })
        })
        .count();
    assert_eq!(complete, stretches);
    // Timestamps of complete events never go backwards within a thread.
    let mut last: HashMap<u64, f64> = HashMap::new();
    for event in events.iter().filter(|e| e["ph"] == "X") {
        let (tid, ts) = (event["tid"].as_u64().unwrap(), event["ts"].as_f64().unwrap());
        let previous = last.insert(tid, ts + event["dur"].as_f64().unwrap());
        assert!(previous.is_none_or(|end| end <= ts), "overlapping stretches on {tid}: {event}");
    }
    // The export is deterministic too.
    let again = testing::replay(&schedule, traced_scenario);
    assert_eq!(again.trace().to_chrome_json(), trace.to_chrome_json());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Spawns, sleeps, a failure and a cancellation: under any schedule the
    /// trace follows each task's life cycle, and its export stays valid.
    #[test]
    fn traces_follow_the_task_life_cycle_under_random_schedules(choices in schedule()) {
        let run = testing::replay(&Schedule::new(choices), traced_scenario);
        prop_assert!(run.passed(), "{:?}", run.failure_message());
        if let Err(broken) = check_trace(run.trace()) {
            return Err(TestCaseError::fail(format!("{broken}\n{}", run.trace())));
        }
        let json: serde_json::Value = serde_json::from_str(&run.trace().to_chrome_json()).unwrap();
        prop_assert!(json["traceEvents"].as_array().is_some_and(|e| !e.is_empty()));
    }
}

#[test]
fn a_failure_report_trace_exports_too() {
    let failure = Checker::new()
        .check_exhaustive(1, || -> Result<(), String> {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..2)
                .map(|i| {
                    let order = order.clone();
                    runtime::spawn(move || -> Result<(), Error> {
                        order.borrow_mut().push(i);
                        Ok(())
                    })
                })
                .collect();
            runtime::gather(tasks).map_err(|e| e.to_string())?;
            if *order.borrow() == [0, 1] { Ok(()) } else { Err("reordered".to_owned()) }
        })
        .unwrap_err();
    let json: serde_json::Value = serde_json::from_str(&failure.trace().to_chrome_json()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let threads = events.iter().filter(|e| e["ph"] == "M").count();
    assert_eq!(threads, failure.trace().tasks().len());
    assert_eq!(threads, 3, "main and two tasks");
}

/// `n` tasks: each logs, yields, schedules a logging callback, sleeps 1 to
/// 3 ms (so many timers share a deadline), and logs again. Runs it under
/// the ordinary loop and under the FIFO schedule, and compares the logs.
fn compare_fifo_with_the_ordinary_loop(n: usize) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let scenario = {
        let log = log.clone();
        move || -> Result<(), String> {
            log.borrow_mut().clear();
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    let log = log.clone();
                    runtime::spawn(move || -> Result<(), Error> {
                        log.borrow_mut().push(i * 10);
                        runtime::sleep(Duration::ZERO)?;
                        let inner = log.clone();
                        runtime::call_soon(move || inner.borrow_mut().push(i * 10 + 1))?;
                        runtime::sleep(ms(1 + (i % 3) as u64))?;
                        log.borrow_mut().push(i * 10 + 2);
                        Ok(())
                    })
                })
                .collect();
            runtime::gather(tasks).map(drop).map_err(|e| e.to_string())
        }
    };
    let ordinary = {
        let scenario = scenario.clone();
        Builder::new()
            .clock(Clock::virtual_time())
            .stack_size(32 * 1024)
            .run(move || Ok(scenario()))
    };
    assert_eq!(ordinary.map_err(|e| e.to_string()), Ok(Ok(())));
    let expected = std::mem::take(&mut *log.borrow_mut());
    assert_eq!(expected.len(), 3 * n);
    let run = Checker::new().stack_size(32 * 1024).replay(&Schedule::fifo(), scenario);
    assert!(run.passed(), "{:?}", run.failure_message());
    assert_eq!(*log.borrow(), expected);
}

#[test]
fn the_fifo_schedule_matches_the_ordinary_loop_with_many_tasks() {
    compare_fifo_with_the_ordinary_loop(200);
}

/// Past the ordinary loop's prefetching batch (2,048 ready handles), which
/// takes another path; a pick costs O(log n), so this is quick.
#[test]
fn the_fifo_schedule_matches_the_ordinary_loop_past_the_prefetch_batch() {
    compare_fifo_with_the_ordinary_loop(2100);
}

/// Batches longer than the short-batch path (16 handles) and than one bit
/// mask (64): under random schedules every task still takes exactly one
/// step per iteration, callbacks keep their order, and the schedules do
/// reorder the tasks.
#[test]
fn large_batches_keep_the_snapshot_and_callback_order_under_random_schedules() {
    for tasks in [20usize, 80, 150] {
        let orders: Rc<RefCell<Vec<Vec<usize>>>> = Rc::new(RefCell::new(Vec::new()));
        let seen = orders.clone();
        let scenario = move || -> Result<(), String> {
            let log: Rc<RefCell<Vec<(usize, usize)>>> = Rc::new(RefCell::new(Vec::new()));
            let calls: Rc<RefCell<Vec<usize>>> = Rc::new(RefCell::new(Vec::new()));
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let log = log.clone();
                    let calls = calls.clone();
                    runtime::spawn(move || -> Result<(), Error> {
                        for step in 0..3 {
                            log.borrow_mut().push((t, step));
                            let calls = calls.clone();
                            let number = t * 3 + step;
                            runtime::call_soon(move || calls.borrow_mut().push(number))?;
                            runtime::sleep(Duration::ZERO)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            runtime::gather(handles).map_err(|e| e.to_string())?;
            let log = log.borrow();
            for step in 0..3 {
                let block = &log[step * tasks..(step + 1) * tasks];
                if block.iter().any(|&(_, s)| s != step) {
                    return Err(format!("iteration {step} mixes steps: {block:?}"));
                }
                let mut order: Vec<usize> = block.iter().map(|&(t, _)| t).collect();
                seen.borrow_mut().push(order.clone());
                order.sort_unstable();
                if order != (0..tasks).collect::<Vec<_>>() {
                    return Err(format!("iteration {step} is not one step of each task"));
                }
            }
            // Callbacks run in the order they were scheduled.
            let calls = calls.borrow();
            let expected: Vec<usize> = (0..3)
                .flat_map(|step| {
                    log[step * tasks..(step + 1) * tasks].iter().map(|&(t, s)| t * 3 + s)
                })
                .collect();
            if *calls != expected {
                return Err("callbacks ran out of order".to_owned());
            }
            Ok(())
        };
        Checker::new().stack_size(32 * 1024).check_seeded(9, 5, scenario).unwrap();
        let fifo: Vec<usize> = (0..tasks).collect();
        assert!(
            orders.borrow().iter().any(|order| *order != fifo),
            "{tasks} tasks: no schedule reordered them"
        );
    }
}
