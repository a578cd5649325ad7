//! Model-based test of the event loop.
//!
//! Random task trees run twice: on gencoro's loop with a virtual clock, and
//! on a reference model, a plain discrete-event interpreter of CPython 3.11's
//! scheduler written below without coroutines. Both must produce the same
//! trace (every completed operation logs `t=<ms> task<id> <what> -> <result>`,
//! so order and time are both checked), the same final virtual time and the
//! same outcome for every task (value, cancelled, panicked or still pending).
//!
//! A program is a main task and up to eight more. Each task runs a script:
//! sleep (0 is a plain yield), a sleep that catches a cancellation, spawn a
//! child with its own script, join, cancel, gather (`return_exceptions` both
//! ways), panic, log, return a value. A task holds the handles its parent
//! held when it was spawned, then those of its own children; handles only
//! flow to tasks created later, so joins never form a cycle and every
//! program ends. A cancellation that reaches a task through a wait is logged
//! and propagated (the task ends cancelled), except in a catching sleep
//! before `main` has finished; other failures are logged and the task goes
//! on.
//!
//! The model follows CPython 3.11 (`base_events._run_once`, `Task.__step`,
//! `Task.cancel`, `tasks.gather`, `runners.Runner`):
//!
//! * a FIFO ready queue; each iteration runs the entries present when it
//!   began; due timers are appended behind them in `(deadline, seq)` order
//!   (gencoro's documented tie rule, SEMANTICS.md);
//! * a sleep's timer only completes its future; the task resumes one
//!   iteration later through its wake-up;
//! * a finished task queues its callbacks in registration order; a joiner
//!   resumes in the next iteration; a gather's child callbacks are queued
//!   the same way, the outer future completes inside the last one (or the
//!   first failing one) and its waiter resumes one iteration after that;
//! * `Task.cancel`: done: false; waiting on a pending sleep: the wake-up is
//!   queued now with a cancellation; waiting on a task: that task is
//!   cancelled; waiting on a gather that is not done: its pending children
//!   are cancelled; otherwise `must_cancel`, delivered at the next step
//!   (before its first step, no body code runs);
//! * `asyncio.run`: the main task's first done callback stops the loop, so
//!   the iteration after the one in which `main` finished still runs; then
//!   every pending task is cancelled, the loop runs until they are done and
//!   two more iterations (`gather(*to_cancel)`), then four more
//!   (`shutdown_asyncgens`, `shutdown_default_executor`). CPython cancels in
//!   `all_tasks()` set order, which is unspecified, so the lines written
//!   from the shutdown on are compared as a multiset (catching sleeps stop
//!   catching once `main` is done, which makes that multiset independent of
//!   the order).
//!
//! gencoro moves a task's value out on retrieval: a second `join` (or a
//! gather after a join) reports `InvalidState`, logged as `Taken`; the model
//! does the same (the Python translation emulates it).
//!
//! Every failure message carries the equivalent asyncio program, runnable
//! with `python3` 3.11+ on a virtual-time loop. `GENCORO_PY_CHECK=<cases>`
//! also runs `model_agrees_with_cpython`, which checks the model itself
//! against CPython on that many random programs.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, Task};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// One operation of a task's script. Handle indices refer to the children
/// this task handles so far, in spawn order.
#[derive(Clone, Debug)]
enum Op {
    /// `sleep(ms)`; 0 is a plain yield.
    Sleep(u64),
    /// A sleep that catches a cancellation and goes on, until `main` has
    /// finished; from then on it propagates it like `Sleep`. (So the
    /// shutdown cancels every task for good, and what it shows does not
    /// depend on the order in which it cancels them.)
    SleepCatch(u64),
    /// Spawn a child running this script; keeps its handle.
    Spawn(Script),
    Join(usize),
    Cancel(usize),
    /// Gather distinct children; `true` is `return_exceptions=True`.
    Gather(Vec<usize>, bool),
    Panic,
    Log,
    Return(i64),
}

type Script = Vec<Op>;

/// Child tasks a program may spawn at most.
const MAX_CHILDREN: usize = 8;

/// What the generator produces before handle indices are resolved.
#[derive(Clone, Debug)]
enum RawOp {
    Sleep(u64),
    SleepCatch(u64),
    Spawn(Vec<RawOp>),
    Join(usize),
    Cancel(usize),
    Gather(Vec<usize>, bool),
    Panic,
    Log,
    Return(i64),
}

fn raw_op(depth: u32) -> BoxedStrategy<RawOp> {
    let leaf = prop_oneof![
        6 => prop_oneof![1 => Just(0u64), 2 => 1..=4u64].prop_map(RawOp::Sleep),
        2 => (0..=4u64).prop_map(RawOp::SleepCatch),
        3 => (0..8usize).prop_map(RawOp::Join),
        2 => (0..8usize).prop_map(RawOp::Cancel),
        3 => (vec(0..8usize, 1..=3), any::<bool>()).prop_map(|(ks, re)| RawOp::Gather(ks, re)),
        1 => Just(RawOp::Panic),
        1 => Just(RawOp::Log),
        1 => (0..10i64).prop_map(RawOp::Return),
    ];
    if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            16 => leaf,
            9 => vec(raw_op(depth - 1), 0..=6).prop_map(RawOp::Spawn),
        ]
        .boxed()
    }
}

/// Resolves handle indices (modulo the handles the task holds at that point;
/// an op that needs one before there is any is dropped), drops dead ops after
/// a `Panic` or `Return`, and caps the number of spawns, depth first.
fn normalize(raw: &[RawOp], inherited: usize, budget: &mut usize) -> Script {
    let mut out = Vec::new();
    let mut handles = inherited;
    for op in raw {
        match op {
            RawOp::Sleep(ms) => out.push(Op::Sleep(*ms)),
            RawOp::SleepCatch(ms) => out.push(Op::SleepCatch(*ms)),
            RawOp::Spawn(child) => {
                if *budget > 0 {
                    *budget -= 1;
                    out.push(Op::Spawn(normalize(child, handles, budget)));
                    handles += 1;
                }
            }
            RawOp::Join(k) if handles > 0 => out.push(Op::Join(k % handles)),
            RawOp::Cancel(k) if handles > 0 => out.push(Op::Cancel(k % handles)),
            RawOp::Gather(ks, re) if handles > 0 => {
                let mut distinct = Vec::new();
                for k in ks {
                    if !distinct.contains(&(k % handles)) {
                        distinct.push(k % handles);
                    }
                }
                out.push(Op::Gather(distinct, *re));
            }
            RawOp::Join(_) | RawOp::Cancel(_) | RawOp::Gather(..) => {}
            RawOp::Log => out.push(Op::Log),
            RawOp::Panic => {
                out.push(Op::Panic);
                break;
            }
            RawOp::Return(v) => {
                out.push(Op::Return(*v));
                break;
            }
        }
    }
    out
}

fn program() -> impl Strategy<Value = Script> {
    vec(raw_op(3), 2..=10).prop_map(|raw| {
        let mut budget = MAX_CHILDREN;
        normalize(&raw, 0, &mut budget)
    })
}

/// The value a task returns when its script runs out.
fn end_value(id: usize) -> i64 {
    100 + id as i64
}

fn task_list(ids: &[usize]) -> String {
    let names: Vec<String> = ids.iter().map(|c| format!("task{c}")).collect();
    format!("[{}]", names.join(", "))
}

/// What one run shows: the trace, the final virtual time in ms, and each
/// task's outcome by id (main is 0, children are numbered in spawn order).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    trace: Vec<String>,
    time_ms: u64,
    outcomes: Vec<String>,
}

// ---------------------------------------------------------------------------
// gencoro
// ---------------------------------------------------------------------------

/// The payload of the scripted panics; the panic hook keeps them quiet.
struct ScriptedPanic;

fn quiet_scripted_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<ScriptedPanic>() {
                previous(info);
            }
        }));
    });
}

#[derive(Default)]
struct Rt {
    trace: RefCell<Vec<String>>,
    /// Every child, by id - 1.
    tasks: RefCell<Vec<Task<i64>>>,
    /// What each task's body returned.
    returned: RefCell<BTreeMap<usize, i64>>,
    /// `main`'s body has finished.
    main_done: Cell<bool>,
}

impl Rt {
    fn log(&self, id: usize, msg: &str) {
        let t = runtime::time().expect("logging from inside the loop").as_millis();
        self.trace.borrow_mut().push(format!("t={t} task{id} {msg}"));
    }
}

struct MainDone(Rc<Rt>);

impl Drop for MainDone {
    fn drop(&mut self) {
        self.0.main_done.set(true);
    }
}

fn err_name(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Cancelled => "Cancelled".to_owned(),
        ErrorKind::Panicked => "Panicked".to_owned(),
        ErrorKind::InvalidState => "Taken".to_owned(),
        kind => format!("{kind:?}"),
    }
}

fn res_name(r: &Result<i64, Error>) -> String {
    match r {
        Ok(v) => format!("Ok({v})"),
        Err(e) => err_name(e),
    }
}

/// Propagates a cancellation; any other failure was logged and is dropped.
fn propagate_cancel<T>(r: &Result<T, Error>) -> Result<(), Error> {
    match r {
        Err(e) if e.is_cancelled() => Err(e.clone()),
        _ => Ok(()),
    }
}

fn body(
    rt: Rc<Rt>,
    id: usize,
    script: Script,
    inherited: Vec<(usize, Task<i64>)>,
) -> Result<i64, Error> {
    rt.log(id, "start");
    let mut kids = inherited;
    for op in script {
        match op {
            Op::Sleep(ms) => {
                let r = runtime::sleep(Duration::from_millis(ms));
                let shown = match &r {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => err_name(e),
                };
                rt.log(id, &format!("sleep {ms} -> {shown}"));
                r?;
            }
            Op::SleepCatch(ms) => match runtime::sleep(Duration::from_millis(ms)) {
                Ok(()) => rt.log(id, &format!("sleep_catch {ms} -> ok")),
                Err(e) if rt.main_done.get() => {
                    rt.log(id, &format!("sleep_catch {ms} -> {}", err_name(&e)));
                    return Err(e);
                }
                Err(e) => rt.log(id, &format!("sleep_catch {ms} -> {} (caught)", err_name(&e))),
            },
            Op::Spawn(child) => {
                let cid = rt.tasks.borrow().len() + 1;
                let rt2 = rt.clone();
                let handles = kids.clone();
                let task = runtime::spawn(move || body(rt2, cid, child, handles));
                rt.tasks.borrow_mut().push(task.clone());
                kids.push((cid, task));
                rt.log(id, &format!("spawn task{cid}"));
            }
            Op::Join(k) => {
                let (cid, task) = &kids[k];
                let r = task.join();
                rt.log(id, &format!("join task{cid} -> {}", res_name(&r)));
                propagate_cancel(&r)?;
            }
            Op::Cancel(k) => {
                let (cid, task) = &kids[k];
                let r = task.cancel();
                rt.log(id, &format!("cancel task{cid} -> {r}"));
            }
            Op::Gather(ks, false) => {
                let ids: Vec<usize> = ks.iter().map(|&k| kids[k].0).collect();
                let r = runtime::gather(ks.iter().map(|&k| kids[k].1.clone()));
                let shown = match &r {
                    Ok(vs) => format!("Ok({vs:?})"),
                    Err(e) => err_name(e),
                };
                rt.log(id, &format!("gather {} -> {shown}", task_list(&ids)));
                propagate_cancel(&r)?;
            }
            Op::Gather(ks, true) => {
                let ids: Vec<usize> = ks.iter().map(|&k| kids[k].0).collect();
                let r = runtime::gather_outcomes(ks.iter().map(|&k| kids[k].1.clone()));
                let shown = match &r {
                    Ok(rs) => {
                        format!("[{}]", rs.iter().map(res_name).collect::<Vec<_>>().join(", "))
                    }
                    Err(e) => err_name(e),
                };
                rt.log(id, &format!("gather_rx {} -> {shown}", task_list(&ids)));
                propagate_cancel(&r)?;
            }
            Op::Panic => {
                rt.log(id, "panic");
                std::panic::panic_any(ScriptedPanic);
            }
            Op::Log => rt.log(id, "log"),
            Op::Return(v) => {
                rt.log(id, &format!("return {v}"));
                rt.returned.borrow_mut().insert(id, v);
                return Ok(v);
            }
        }
    }
    rt.log(id, "end");
    rt.returned.borrow_mut().insert(id, end_value(id));
    Ok(end_value(id))
}

fn run_gencoro(program: &Script) -> Observed {
    quiet_scripted_panics();
    let clock = Clock::virtual_time();
    let rt = Rc::new(Rt::default());
    let (rt2, script) = (rt.clone(), program.clone());
    let result = Builder::new().clock(clock.clone()).run(move || {
        // Set however `main`'s body ends, even by unwinding.
        let _main_done = MainDone(rt2.clone());
        body(rt2, 0, script, Vec::new())
    });
    let mut outcomes = vec![res_name(&result)];
    for (i, task) in rt.tasks.borrow().iter().enumerate() {
        outcomes.push(if !task.is_done() {
            "Pending".to_owned()
        } else if task.is_cancelled() {
            "Cancelled".to_owned()
        } else if let Some(e) = task.failure() {
            err_name(&e)
        } else {
            format!("Ok({})", rt.returned.borrow()[&(i + 1)])
        });
    }
    // The handles and the task bodies refer to each other.
    rt.tasks.borrow_mut().clear();
    let trace = rt.trace.take();
    Observed { trace, time_ms: clock.now().as_millis() as u64, outcomes }
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    Go,
    Cancel,
}

/// What a suspended task waits on. Python: `Task._fut_waiter`.
#[derive(Clone, Copy, Debug)]
enum Waiter {
    /// Nothing: not started, running, or after a plain yield.
    Nothing,
    /// Its sleep future (pending while `MTask::sleep` is set).
    Sleep,
    Task(usize),
    Gather(usize),
}

/// A done callback of a task. Python: `fut._callbacks`.
#[derive(Clone, Copy, Debug)]
enum Callback {
    /// A joining task's `__wakeup`.
    Wakeup(usize),
    /// `gather`'s `_done_callback` for child `.1` of gather `.0`.
    GatherChild(usize, usize),
    /// `run_until_complete`'s `_run_until_complete_cb`: stops the loop.
    StopLoop,
}

/// An entry of the ready queue.
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// `Task.__step`, with a cancellation to throw in or not.
    Step(usize, Wake),
    /// A sleep's timer: `_set_result_unless_cancelled` for sleep `seq`.
    SleepTimer(usize, u64),
    GatherChild(usize, usize),
    StopLoop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Fin {
    Value(i64),
    Cancelled,
    Panicked,
}

struct MTask {
    script: Script,
    /// The op running, or the one the task is suspended in.
    pc: usize,
    started: bool,
    /// Handles: those inherited from its parent, then its children's.
    kids: Vec<usize>,
    fin: Option<Fin>,
    /// Its value was moved out by a join or a gather.
    taken: bool,
    must_cancel: bool,
    waiter: Waiter,
    /// The seq of its pending sleep timer.
    sleep: Option<u64>,
    /// The gather it waits in.
    gather: usize,
    callbacks: Vec<Callback>,
}

/// Python's `_GatheringFuture` plus the state `gather` keeps in its closure.
struct MGather {
    children: Vec<usize>,
    return_exceptions: bool,
    nfinished: usize,
    done: bool,
    /// The exception set on the outer future.
    failure: Option<&'static str>,
    cancel_requested: bool,
    waiters: Vec<usize>,
}

struct Model {
    now: u64,
    next_seq: u64,
    ready: VecDeque<Entry>,
    /// `(deadline, seq, task)`.
    timers: Vec<(u64, u64, usize)>,
    tasks: Vec<MTask>,
    gathers: Vec<MGather>,
    trace: Vec<String>,
    /// `main` has finished (see `Op::SleepCatch`).
    main_done: bool,
    stopping: bool,
}

type Took = Result<i64, &'static str>;

fn show(r: &Took) -> String {
    match r {
        Ok(v) => format!("Ok({v})"),
        Err(e) => (*e).to_owned(),
    }
}

impl Model {
    /// Runs `program` as `asyncio.run` would. Returns what it shows and how
    /// many trace lines were written before the shutdown began.
    fn run(program: &Script) -> (Observed, usize) {
        let mut m = Model {
            now: 0,
            next_seq: 0,
            ready: VecDeque::new(),
            timers: Vec::new(),
            tasks: Vec::new(),
            gathers: Vec::new(),
            trace: Vec::new(),
            main_done: false,
            stopping: false,
        };
        let main = m.spawn(program.clone(), Vec::new());
        m.tasks[main].callbacks.push(Callback::StopLoop);
        // `run_until_complete(main)`: `run_forever` until stopped.
        while !m.stopping {
            m.run_once(true);
        }
        let main_phase = m.trace.len();
        // `_cancel_all_tasks`.
        let to_cancel: Vec<usize> =
            (0..m.tasks.len()).filter(|&t| m.tasks[t].fin.is_none()).collect();
        for &t in &to_cancel {
            m.cancel(t);
        }
        if !to_cancel.is_empty() {
            while to_cancel.iter().any(|&t| m.tasks[t].fin.is_none()) {
                m.run_once(true);
            }
            // `run_until_complete(gather(*to_cancel))`: the gather completes
            // in the next iteration, its stop callback runs in the one after.
            m.run_once(false);
            m.run_once(false);
        }
        // `shutdown_asyncgens()` and `shutdown_default_executor()`: each a
        // task that returns at its first step, then the stop callback.
        for _ in 0..4 {
            m.run_once(false);
        }
        let outcomes = m
            .tasks
            .iter()
            .map(|t| match &t.fin {
                Some(Fin::Value(v)) => format!("Ok({v})"),
                Some(Fin::Cancelled) => "Cancelled".to_owned(),
                Some(Fin::Panicked) => "Panicked".to_owned(),
                None => "Pending".to_owned(),
            })
            .collect();
        (Observed { trace: m.trace, time_ms: m.now, outcomes }, main_phase)
    }

    /// `_run_once`. `may_wait` is false when CPython has a handle of its own
    /// ready (a stop callback, a shutdown step), so no time passes.
    fn run_once(&mut self, may_wait: bool) {
        if may_wait && self.ready.is_empty() {
            let earliest = self.timers.iter().map(|t| t.0).min();
            let when = earliest.expect("the model deadlocked: nothing ready, no timer");
            self.now = self.now.max(when);
        }
        self.timers.sort_unstable();
        while self.timers.first().is_some_and(|t| t.0 <= self.now) {
            let (_, seq, task) = self.timers.remove(0);
            self.ready.push_back(Entry::SleepTimer(task, seq));
        }
        let ntodo = self.ready.len();
        for _ in 0..ntodo {
            let entry = self.ready.pop_front().expect("ntodo entries are ready");
            match entry {
                Entry::Step(task, wake) => self.step(task, wake),
                Entry::SleepTimer(task, seq) => {
                    if self.tasks[task].sleep == Some(seq) {
                        self.tasks[task].sleep = None;
                        self.ready.push_back(Entry::Step(task, Wake::Go));
                    }
                }
                Entry::GatherChild(g, child) => self.gather_child_done(g, child),
                Entry::StopLoop => self.stopping = true,
            }
        }
    }

    fn log(&mut self, id: usize, msg: &str) {
        let line = format!("t={} task{id} {msg}", self.now);
        self.trace.push(line);
    }

    /// `loop.create_task`: the first step is queued.
    fn spawn(&mut self, script: Script, inherited: Vec<usize>) -> usize {
        let id = self.tasks.len();
        self.tasks.push(MTask {
            script,
            pc: 0,
            started: false,
            kids: inherited,
            fin: None,
            taken: false,
            must_cancel: false,
            waiter: Waiter::Nothing,
            sleep: None,
            gather: usize::MAX,
            callbacks: Vec::new(),
        });
        self.ready.push_back(Entry::Step(id, Wake::Go));
        id
    }

    /// gencoro's `take_result`: the value moves out once.
    fn take(&mut self, id: usize) -> Took {
        let t = &mut self.tasks[id];
        match t.fin {
            Some(Fin::Value(_)) if t.taken => Err("Taken"),
            Some(Fin::Value(v)) => {
                t.taken = true;
                Ok(v)
            }
            Some(Fin::Cancelled) => Err("Cancelled"),
            Some(Fin::Panicked) => Err("Panicked"),
            None => unreachable!("only done tasks are taken"),
        }
    }

    /// `Task.__step` (entered directly or from `__wakeup`).
    fn step(&mut self, id: usize, wake: Wake) {
        let t = &mut self.tasks[id];
        if t.fin.is_some() {
            return;
        }
        let mut wake = wake;
        if t.must_cancel {
            t.must_cancel = false;
            wake = Wake::Cancel;
        }
        t.waiter = Waiter::Nothing;
        if !t.started {
            t.started = true;
            if wake == Wake::Cancel {
                // Thrown into the unstarted coroutine: no body code runs.
                self.finish(id, Fin::Cancelled);
            } else {
                self.log(id, "start");
                self.run_ops(id);
            }
            return;
        }
        // Resume the op the task is suspended in.
        let op = t.script[t.pc].clone();
        t.pc += 1;
        let cancelled = match op {
            Op::Sleep(ms) => {
                let shown = if wake == Wake::Cancel { "Cancelled" } else { "ok" };
                self.log(id, &format!("sleep {ms} -> {shown}"));
                wake == Wake::Cancel
            }
            Op::SleepCatch(ms) => {
                let shown = match wake {
                    Wake::Go => "ok",
                    Wake::Cancel if self.main_done => "Cancelled",
                    Wake::Cancel => "Cancelled (caught)",
                };
                self.log(id, &format!("sleep_catch {ms} -> {shown}"));
                wake == Wake::Cancel && self.main_done
            }
            Op::Join(k) => {
                let child = self.tasks[id].kids[k];
                let r = if wake == Wake::Cancel { Err("Cancelled") } else { self.take(child) };
                self.log(id, &format!("join task{child} -> {}", show(&r)));
                r == Err("Cancelled")
            }
            Op::Gather(ks, return_exceptions) => {
                let g = self.tasks[id].gather;
                let ids: Vec<usize> = ks.iter().map(|&k| self.tasks[id].kids[k]).collect();
                let shown = if wake == Wake::Cancel {
                    "Cancelled".to_owned()
                } else if let Some(failure) = self.gathers[g].failure {
                    failure.to_owned()
                } else if return_exceptions {
                    let rs: Vec<String> = ids.iter().map(|&c| show(&self.take(c))).collect();
                    format!("[{}]", rs.join(", "))
                } else {
                    // Values in argument order; stop at the first that was
                    // taken already.
                    let mut values = Vec::new();
                    let mut failure = None;
                    for &c in &ids {
                        match self.take(c) {
                            Ok(v) => values.push(v),
                            Err(e) => {
                                failure = Some(e);
                                break;
                            }
                        }
                    }
                    match failure {
                        Some(e) => e.to_owned(),
                        None => format!("Ok({values:?})"),
                    }
                };
                let label = if return_exceptions { "gather_rx" } else { "gather" };
                self.log(id, &format!("{label} {} -> {shown}", task_list(&ids)));
                shown == "Cancelled"
            }
            _ => unreachable!("a task only suspends in sleep, join or gather"),
        };
        if cancelled {
            self.finish(id, Fin::Cancelled);
        } else {
            self.run_ops(id);
        }
    }

    /// Runs the task's ops from `pc` until it suspends or ends.
    fn run_ops(&mut self, id: usize) {
        loop {
            let pc = self.tasks[id].pc;
            let Some(op) = self.tasks[id].script.get(pc).cloned() else {
                self.log(id, "end");
                self.finish(id, Fin::Value(end_value(id)));
                return;
            };
            match op {
                Op::Sleep(0) | Op::SleepCatch(0) => {
                    // A bare yield: `call_soon(self.__step)`, no waiter.
                    self.ready.push_back(Entry::Step(id, Wake::Go));
                    return;
                }
                Op::Sleep(ms) | Op::SleepCatch(ms) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.timers.push((self.now + ms, seq, id));
                    self.tasks[id].sleep = Some(seq);
                    self.suspend(id, Waiter::Sleep);
                    return;
                }
                Op::Spawn(script) => {
                    let handles = self.tasks[id].kids.clone();
                    let child = self.spawn(script, handles);
                    self.tasks[id].kids.push(child);
                    self.log(id, &format!("spawn task{child}"));
                }
                Op::Join(k) => {
                    let child = self.tasks[id].kids[k];
                    if self.tasks[child].fin.is_none() {
                        self.tasks[child].callbacks.push(Callback::Wakeup(id));
                        self.suspend(id, Waiter::Task(child));
                        return;
                    }
                    // Done already: no suspension.
                    let r = self.take(child);
                    self.log(id, &format!("join task{child} -> {}", show(&r)));
                    if r == Err("Cancelled") {
                        self.finish(id, Fin::Cancelled);
                        return;
                    }
                }
                Op::Cancel(k) => {
                    let child = self.tasks[id].kids[k];
                    let r = self.cancel(child);
                    self.log(id, &format!("cancel task{child} -> {r}"));
                }
                Op::Gather(ks, return_exceptions) => {
                    let g = self.gathers.len();
                    let children: Vec<usize> = ks.iter().map(|&k| self.tasks[id].kids[k]).collect();
                    for &c in &children {
                        // `add_done_callback`: queued at once if done.
                        if self.tasks[c].fin.is_some() {
                            self.ready.push_back(Entry::GatherChild(g, c));
                        } else {
                            self.tasks[c].callbacks.push(Callback::GatherChild(g, c));
                        }
                    }
                    self.gathers.push(MGather {
                        children,
                        return_exceptions,
                        nfinished: 0,
                        done: false,
                        failure: None,
                        cancel_requested: false,
                        waiters: vec![id],
                    });
                    self.tasks[id].gather = g;
                    self.suspend(id, Waiter::Gather(g));
                    return;
                }
                Op::Panic => {
                    self.log(id, "panic");
                    self.finish(id, Fin::Panicked);
                    return;
                }
                Op::Log => self.log(id, "log"),
                Op::Return(v) => {
                    self.log(id, &format!("return {v}"));
                    self.finish(id, Fin::Value(v));
                    return;
                }
            }
            self.tasks[id].pc += 1;
        }
    }

    /// The end of `__step` when the coroutine yielded a future.
    fn suspend(&mut self, id: usize, waiter: Waiter) {
        self.tasks[id].waiter = waiter;
        if self.tasks[id].must_cancel && self.cancel_waiter(id, waiter) {
            self.tasks[id].must_cancel = false;
        }
    }

    /// The task completes; its callbacks are queued in registration order.
    fn finish(&mut self, id: usize, fin: Fin) {
        let t = &mut self.tasks[id];
        let fin = if matches!(fin, Fin::Value(_)) && t.must_cancel {
            // Cancelled right before the coroutine returned.
            t.must_cancel = false;
            Fin::Cancelled
        } else {
            fin
        };
        let wake = if fin == Fin::Cancelled { Wake::Cancel } else { Wake::Go };
        t.fin = Some(fin);
        self.main_done |= id == 0;
        t.waiter = Waiter::Nothing;
        for cb in std::mem::take(&mut t.callbacks) {
            self.ready.push_back(match cb {
                Callback::Wakeup(w) => Entry::Step(w, wake),
                Callback::GatherChild(g, c) => Entry::GatherChild(g, c),
                Callback::StopLoop => Entry::StopLoop,
            });
        }
    }

    /// `Task.cancel`.
    fn cancel(&mut self, id: usize) -> bool {
        if self.tasks[id].fin.is_some() {
            return false;
        }
        let waiter = self.tasks[id].waiter;
        if self.cancel_waiter(id, waiter) {
            return true;
        }
        self.tasks[id].must_cancel = true;
        true
    }

    /// `self._fut_waiter.cancel()`.
    fn cancel_waiter(&mut self, id: usize, waiter: Waiter) -> bool {
        match waiter {
            Waiter::Nothing => false,
            Waiter::Sleep => match self.tasks[id].sleep.take() {
                Some(seq) => {
                    self.timers.retain(|t| t.1 != seq);
                    self.ready.push_back(Entry::Step(id, Wake::Cancel));
                    true
                }
                // The timer fired; the future is done.
                None => false,
            },
            Waiter::Task(child) => self.cancel(child),
            Waiter::Gather(g) => self.cancel_gather(g),
        }
    }

    /// `_GatheringFuture.cancel`.
    fn cancel_gather(&mut self, g: usize) -> bool {
        if self.gathers[g].done {
            return false;
        }

        let mut any = false;
        for c in self.gathers[g].children.clone() {
            any |= self.cancel(c);
        }
        if any {
            self.gathers[g].cancel_requested = true;
        }
        any
    }

    /// `gather`'s `_done_callback`.
    fn gather_child_done(&mut self, g: usize, child: usize) {
        let gather = &mut self.gathers[g];
        gather.nfinished += 1;
        if gather.done {
            return;
        }
        if !gather.return_exceptions {
            match self.tasks[child].fin {
                Some(Fin::Cancelled) => return self.set_outer(g, Some("Cancelled")),
                Some(Fin::Panicked) => return self.set_outer(g, Some("Panicked")),
                _ => {}
            }
        }
        let gather = &self.gathers[g];
        if gather.nfinished == gather.children.len() {
            let failure = gather.cancel_requested.then_some("Cancelled");
            self.set_outer(g, failure);
        }
    }

    /// `outer.set_result` / `outer.set_exception`: wakes the waiter.
    fn set_outer(&mut self, g: usize, failure: Option<&'static str>) {
        let gather = &mut self.gathers[g];
        gather.done = true;
        gather.failure = failure;
        for w in std::mem::take(&mut gather.waiters) {
            self.ready.push_back(Entry::Step(w, Wake::Go));
        }
    }
}

// ---------------------------------------------------------------------------
// Comparing, and the equivalent asyncio program
// ---------------------------------------------------------------------------

/// Checks `actual` against the model: the trace up to the shutdown exactly,
/// the shutdown's lines as a multiset, the time and the outcomes exactly.
/// The error explains the difference and carries the asyncio program.
fn compare(
    program: &Script,
    model: &Observed,
    main_phase: usize,
    actual: &Observed,
    who: &str,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let prefix_ok = actual.trace.get(..main_phase) == Some(&model.trace[..main_phase]);
    if !prefix_ok {
        let at = (0..main_phase)
            .find(|&i| actual.trace.get(i) != Some(&model.trace[i]))
            .unwrap_or(main_phase);
        problems.push(format!("traces differ before the shutdown, first at line {at}"));
    }
    let mut expected_rest = model.trace[main_phase..].to_vec();
    let mut actual_rest = actual.trace.get(main_phase..).unwrap_or_default().to_vec();
    expected_rest.sort();
    actual_rest.sort();
    if prefix_ok && expected_rest != actual_rest {
        problems.push("the shutdown's trace lines differ".to_owned());
    }
    if actual.time_ms != model.time_ms {
        problems
            .push(format!("final time: model {} ms, {who} {} ms", model.time_ms, actual.time_ms));
    }
    if actual.outcomes != model.outcomes {
        problems.push(format!("outcomes: model {:?}, {who} {:?}", model.outcomes, actual.outcomes));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{who} disagrees with the model: {}\n", problems.join("; "));
    let _ = writeln!(msg, "program (main's script): {}", py_script(program));
    let _ = writeln!(msg, "--- model trace ({main_phase} lines before the shutdown)");
    for (i, line) in model.trace.iter().enumerate() {
        let mark = if i == main_phase { "==shutdown==\n" } else { "" };
        let _ = writeln!(msg, "{mark}{i:3} {line}");
    }
    let _ = writeln!(msg, "--- {who} trace");
    for (i, line) in actual.trace.iter().enumerate() {
        let same = model.trace.get(i) == Some(line);
        let _ = writeln!(msg, "{i:3}{} {line}", if same { " " } else { "*" });
    }
    let _ = writeln!(msg, "--- equivalent asyncio program:\n{}", python_source(&[program]));
    Err(msg)
}

fn py_script(script: &Script) -> String {
    let ops: Vec<String> = script
        .iter()
        .map(|op| match op {
            Op::Sleep(ms) => format!("('sleep', {ms})"),
            Op::SleepCatch(ms) => format!("('sleep_catch', {ms})"),
            Op::Spawn(child) => format!("('spawn', {})", py_script(child)),
            Op::Join(k) => format!("('join', {k})"),
            Op::Cancel(k) => format!("('cancel', {k})"),
            Op::Gather(ks, re) => {
                format!("('gather', {ks:?}, {})", if *re { "True" } else { "False" })
            }
            Op::Panic => "('panic',)".to_owned(),
            Op::Log => "('log',)".to_owned(),
            Op::Return(v) => format!("('return', {v})"),
        })
        .collect();
    format!("[{}]", ops.join(", "))
}

/// The same interpreter in asyncio, on a virtual-time loop (1 ms of the
/// programs is 1 s of loop time: integral floats keep deadlines exact) whose
/// timers break deadline ties first in, first out, as gencoro documents.
const PY_PRELUDE: &str = r#"
import asyncio, heapq, itertools, logging
from asyncio import events

logging.getLogger("asyncio").setLevel(logging.CRITICAL)
_seq = itertools.count()

class FifoTimer(events.TimerHandle):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._seq = next(_seq)
    def __lt__(self, other):
        return (self._when, self._seq) < (other._when, other._seq)

class VirtualSelector:
    def __init__(self, loop, inner):
        self._loop, self._inner = loop, inner
    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError("deadlock: nothing ready and no timer")
        if timeout > 0:
            self._loop._vt += timeout
        return self._inner.select(0)
    def __getattr__(self, name):
        return getattr(self._inner, name)

class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        self._vt = 0.0
        super().__init__()
        self._selector = VirtualSelector(self, self._selector)
    def time(self):
        return self._vt
    def call_at(self, when, callback, *args, context=None):
        self._check_closed()
        timer = FifoTimer(when, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

class Panic(Exception):
    pass

def run_program(prog):
    trace, tasks, taken, counter = [], {}, set(), [0]
    main_done = False

    def log(tid, msg):
        trace.append(f"t={round(asyncio.get_running_loop().time())} task{tid} {msg}")

    def take(t):  # gencoro's take_result: a value moves out once
        if t.cancelled():
            return "Cancelled"
        e = t.exception()
        if isinstance(e, Panic):
            return "Panicked"
        if e is not None:
            return type(e).__name__
        if t in taken:
            return "Taken"
        taken.add(t)
        return f"Ok({t.result()})"

    async def body(tid, script, inherited):
        nonlocal main_done
        if tid == 0:
            try:
                return await body_ops(tid, script, inherited)
            finally:
                main_done = True
        return await body_ops(tid, script, inherited)

    async def body_ops(tid, script, inherited):
        tasks.setdefault(tid, asyncio.current_task())
        log(tid, "start")
        kids = inherited
        for op in script:
            kind = op[0]
            if kind == "sleep":
                try:
                    await asyncio.sleep(op[1])
                except asyncio.CancelledError:
                    log(tid, f"sleep {op[1]} -> Cancelled")
                    raise
                log(tid, f"sleep {op[1]} -> ok")
            elif kind == "sleep_catch":
                try:
                    await asyncio.sleep(op[1])
                    log(tid, f"sleep_catch {op[1]} -> ok")
                except asyncio.CancelledError:
                    if main_done:
                        log(tid, f"sleep_catch {op[1]} -> Cancelled")
                        raise
                    log(tid, f"sleep_catch {op[1]} -> Cancelled (caught)")
            elif kind == "spawn":
                counter[0] += 1
                cid = counter[0]
                tasks[cid] = asyncio.create_task(body(cid, op[1], list(kids)))
                kids.append(cid)
                log(tid, f"spawn task{cid}")
            elif kind == "join":
                cid = kids[op[1]]
                try:
                    await tasks[cid]
                except asyncio.CancelledError:
                    log(tid, f"join task{cid} -> Cancelled")
                    raise
                except Panic:
                    pass
                log(tid, f"join task{cid} -> {take(tasks[cid])}")
            elif kind == "cancel":
                cid = kids[op[1]]
                log(tid, f"cancel task{cid} -> {str(tasks[cid].cancel()).lower()}")
            elif kind == "gather":
                ids = [kids[k] for k in op[1]]
                ts = [tasks[c] for c in ids]
                label = ("gather_rx [" if op[2] else "gather [") + ", ".join(f"task{c}" for c in ids) + "]"
                try:
                    await asyncio.gather(*ts, return_exceptions=op[2])
                except asyncio.CancelledError:
                    log(tid, f"{label} -> Cancelled")
                    raise
                except Panic:
                    log(tid, f"{label} -> Panicked")
                    continue
                if op[2]:
                    log(tid, f"{label} -> [" + ", ".join(take(t) for t in ts) + "]")
                else:
                    values, failure = [], None
                    for t in ts:
                        r = take(t)
                        if not r.startswith("Ok("):
                            failure = r
                            break
                        values.append(r[3:-1])
                    log(tid, f"{label} -> " + (failure or "Ok([" + ", ".join(values) + "])"))
            elif kind == "panic":
                log(tid, "panic")
                raise Panic()
            elif kind == "log":
                log(tid, "log")
            elif kind == "return":
                log(tid, f"return {op[1]}")
                return op[1]
        log(tid, "end")
        return 100 + tid

    def outcome(t):
        if t is None or not t.done():
            return "Pending"
        if t.cancelled():
            return "Cancelled"
        e = t.exception()
        if isinstance(e, Panic):
            return "Panicked"
        if e is not None:
            return type(e).__name__
        return f"Ok({t.result()})"

    with asyncio.Runner(loop_factory=VirtualLoop) as runner:
        loop = runner.get_loop()
        try:
            runner.run(body(0, prog, []))
        except (Panic, asyncio.CancelledError):
            pass
    return trace, round(loop.time()), [outcome(tasks.get(i)) for i in range(counter[0] + 1)]

for prog in PROGRAMS:
    trace, time, outcomes = run_program(prog)
    print("BEGIN")
    for line in trace:
        print("T", line)
    print("TIME", time)
    for o in outcomes:
        print("O", o)
    print("END")
"#;

fn python_source(programs: &[&Script]) -> String {
    let list: Vec<String> = programs.iter().map(|p| format!("    {},", py_script(p))).collect();
    format!("PROGRAMS = [\n{}\n]\n{PY_PRELUDE}", list.join("\n"))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(Config { cases: 10000, failure_persistence: None, ..Config::default() })]

    /// gencoro's loop and the model agree on random task trees.
    #[test]
    fn loop_matches_model(program in program()) {
        let (model, main_phase) = Model::run(&program);
        let actual = run_gencoro(&program);
        compare(&program, &model, main_phase, &actual, "gencoro").map_err(TestCaseError::fail)?;
    }
}

/// A few fixed programs, so the basic shapes are always covered.
#[test]
fn fixed_programs_match_model() {
    use Op::*;
    let programs: Vec<Script> = vec![
        // Timers, yields and a join.
        vec![Spawn(vec![Sleep(2), Log, Return(7)]), Sleep(0), Sleep(1), Join(0)],
        // Cancelling a sleeping child, and one that never started.
        vec![
            Spawn(vec![Sleep(3)]),
            Spawn(vec![Log]),
            Sleep(1),
            Cancel(0),
            Cancel(1),
            Join(0),
            Join(1),
        ],
        // Gathers both ways with a panicking child, then a second retrieval.
        vec![
            Spawn(vec![Sleep(1), Panic]),
            Spawn(vec![Sleep(2), Return(5)]),
            Gather(vec![1, 0], true),
            Gather(vec![1], false),
            Join(1),
        ],
        // Cancelling a task that waits in a join and in a gather.
        vec![
            Spawn(vec![Spawn(vec![Sleep(4)]), Join(0)]),
            Spawn(vec![Spawn(vec![Sleep(4)]), Spawn(vec![Sleep(1)]), Gather(vec![0, 1], true)]),
            Sleep(2),
            Cancel(0),
            Cancel(1),
            Sleep(0),
            Sleep(0),
            Sleep(0),
        ],
        // Main returns while children are pending: shutdown.
        vec![
            Spawn(vec![Sleep(0), Log, Sleep(5)]),
            Spawn(vec![Spawn(vec![Sleep(3)]), Join(0)]),
            Sleep(0),
        ],
    ];
    for program in &programs {
        let (model, main_phase) = Model::run(program);
        let actual = run_gencoro(program);
        if let Err(msg) = compare(program, &model, main_phase, &actual, "gencoro") {
            panic!("{msg}");
        }
    }
}

/// Cancelling a task whose `gather` has already failed but which has not
/// resumed yet (its wake-up is queued). CPython's `_GatheringFuture.cancel`
/// returns False once the gather is done, so `Task.cancel` sets
/// `must_cancel`: the task gets a cancellation at its next step, and the
/// gather's other children are left alone (B5.1, B6.2).
#[test]
fn cancel_after_gather_failed() {
    use Op::*;
    let programs: Vec<Script> = vec![
        // Main cancels the waiter between the gather's failure and the
        // waiter's wake-up; the other child should run on and return 1.
        vec![
            Spawn(vec![Sleep(3), Return(1)]),
            Spawn(vec![Sleep(1), Panic]),
            Spawn(vec![Gather(vec![1, 0], false), Log]),
            Sleep(1),
            Sleep(0),
            Sleep(0),
            Cancel(2),
            Join(0),
            Join(2),
        ],
        // The same through `run`'s shutdown.
        vec![
            Spawn(vec![Spawn(vec![Panic]), Spawn(vec![Sleep(5)]), Gather(vec![0, 1], false), Log]),
            Sleep(0),
            Sleep(0),
        ],
    ];
    for program in &programs {
        let (model, main_phase) = Model::run(program);
        let actual = run_gencoro(program);
        if let Err(msg) = compare(program, &model, main_phase, &actual, "gencoro") {
            panic!("{msg}");
        }
    }
}

/// Checks the model itself against CPython on random programs. Opt-in, as
/// it needs `python3` 3.11 or later: `GENCORO_PY_CHECK=1`.
#[test]
fn model_agrees_with_cpython() {
    let Some(cases) = std::env::var_os("GENCORO_PY_CHECK") else {
        eprintln!("model_agrees_with_cpython: skipped; set GENCORO_PY_CHECK=<cases> to run it");
        return;
    };
    let cases: usize = cases.to_str().and_then(|s| s.parse().ok()).unwrap_or(300).max(1);
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let strategy = program();
    let programs: Vec<Script> =
        (0..cases).map(|_| strategy.new_tree(&mut runner).expect("a program").current()).collect();
    let source = python_source(&programs.iter().collect::<Vec<_>>());
    let mut child = Command::new("python3")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    child.stdin.take().expect("stdin").write_all(source.as_bytes()).expect("write to python3");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(output.status.success(), "python3 failed");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let mut results = Vec::new();
    let mut current = Observed { trace: Vec::new(), time_ms: 0, outcomes: Vec::new() };
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("T ") {
            current.trace.push(rest.to_owned());
        } else if let Some(rest) = line.strip_prefix("TIME ") {
            current.time_ms = rest.parse().expect("a time");
        } else if let Some(rest) = line.strip_prefix("O ") {
            current.outcomes.push(rest.to_owned());
        } else if line == "END" {
            results.push(std::mem::replace(
                &mut current,
                Observed { trace: Vec::new(), time_ms: 0, outcomes: Vec::new() },
            ));
        }
    }
    assert_eq!(results.len(), programs.len(), "one result per program");
    for (program, python) in programs.iter().zip(&results) {
        let (model, main_phase) = Model::run(program);
        if let Err(msg) = compare(program, &model, main_phase, python, "CPython") {
            panic!("{msg}");
        }
    }
}
