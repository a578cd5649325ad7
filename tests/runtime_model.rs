//! Model-based test of the event loop.
//!
//! Random task trees run twice: on gencoro's loop with a virtual clock, and
//! on a reference model, a plain discrete-event interpreter of CPython 3.11's
//! scheduler written below without coroutines. Both must produce the same
//! trace (every completed operation logs `t=<ms> task<id> <what> -> <result>`,
//! a callback logs `t=<ms> cb<id> <what>`, so order and time are both
//! checked), the same final virtual time and the same outcome for every task
//! (value, cancelled, panicked, still pending, or never spawned).
//!
//! A program is a main task and up to eight more. Each task runs a script:
//! sleep (0 is a plain yield, with no timer), a sleep that catches a
//! cancellation, a sleep whose cancellation runs a cleanup script before it
//! propagates, spawn a child with its own script, join, cancel a child,
//! cancel itself (it is running), cancel its parent (which may be waiting on
//! it, so the cancellation comes back to the running task), schedule a
//! callback with `call_soon` or `call_later` (delays from 0: a zero-delay
//! timer is due at once, yet runs behind the work already ready) that logs,
//! cancels a child or cancels the task that scheduled it, cancel such a
//! callback, gather (`return_exceptions` both ways), panic, log, return a
//! value. Tasks and callbacks are numbered statically (depth first through
//! the program), so their names do not depend on the order things happen
//! in. A task holds the handles its parent held when it was spawned, then
//! those of its own children; handles only flow to tasks created later, so
//! joins never form a cycle and every program ends. A cleanup has handles of
//! its own (its children's), so what it does cannot depend on other tasks.
//! A cancellation that reaches a task through a wait is logged and
//! propagated (the task ends cancelled), except in a catching sleep before
//! `main` has finished, and after a cleanup; other failures are logged and
//! the task goes on.
//!
//! The model follows CPython 3.11 (`base_events._run_once`, `Task.__step`,
//! `Task.cancel`, `tasks.gather`, `runners.Runner`):
//!
//! * a FIFO ready queue; each iteration runs the entries present when it
//!   began; due timers, zero-delay ones included, are appended behind them
//!   in `(deadline, seq)` order (gencoro's documented tie rule,
//!   docs/semantics.md); a cancelled timer is skipped and no time passes for it;
//! * a sleep's timer only completes its future; the task resumes one
//!   iteration later through its wake-up;
//! * a finished task queues its callbacks in registration order; a joiner
//!   resumes in the next iteration; a gather's child callbacks are queued
//!   the same way, the outer future completes inside the last one (or the
//!   first failing one) and its waiter resumes one iteration after that;
//! * `Task.cancel`: done: false; waiting on a pending sleep: the wake-up is
//!   queued now with a cancellation; waiting on a task: that task is
//!   cancelled; waiting on a gather that is not done: its pending children
//!   are cancelled; otherwise (running, ready after a plain yield, not
//!   started) `must_cancel`, delivered at the next step, or when the step
//!   ends by waiting on something, by cancelling that; a task that returns
//!   with `must_cancel` set ends cancelled; before its first step, no body
//!   code runs;
//! * `asyncio.run`: the main task's first done callback stops the loop, so
//!   the iteration after the one in which `main` finished still runs; then
//!   every pending task is cancelled, the loop runs until they are done and
//!   two more iterations (`gather(*to_cancel)`), then four more
//!   (`shutdown_asyncgens`, `shutdown_default_executor`). Tasks spawned
//!   meanwhile (by cleanups) are not cancelled: they run in those
//!   iterations and are left pending. CPython cancels in `all_tasks()` set
//!   order, which is unspecified, so the lines written from the shutdown on
//!   are compared as a multiset (catching sleeps stop catching once `main`
//!   is done, and cleanups only touch their own handles, which makes that
//!   multiset independent of the order).
//!
//! gencoro moves a task's value out on retrieval: a second `join` (or a
//! gather after a join) reports `InvalidState`, logged as `Taken`; the model
//! does the same (the Python translation emulates it).
//!
//! Every failure message carries the equivalent asyncio program, runnable
//! with `python3` 3.11 on a virtual-time loop. `model_agrees_with_cpython`
//! runs the fixed programs below and random ones through CPython and checks
//! the model against it; it runs when `GENCORO_PY_CHECK=1` or `CI` is set
//! (and then needs `python3` 3.11), `GENCORO_PY_CASES=<n>` sets the number
//! of random programs.
//!
//! A few direct scenarios at the end check the orderings the model is most
//! likely to get wrong together with the loop, against CPython's output:
//! their programs are `tests/cpython/runtime_model/<test name>.py`, run by
//! `tests/cpython_programs.rs`.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use gencoro::runtime::{self, Builder, CallHandle, Clock, Error, ErrorKind, Task, TaskRef};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------

/// One operation of a task's script. Handle indices refer to the children
/// (or callbacks) this script handles so far, in the order it got them.
#[derive(Clone, Debug)]
enum Op {
    /// `sleep(ms)`; 0 is a plain yield.
    Sleep(u64),
    /// A sleep that catches a cancellation and goes on, until `main` has
    /// finished; from then on it propagates it like `Sleep`. (So the
    /// shutdown cancels every task for good, and what it shows does not
    /// depend on the order in which it cancels them.)
    SleepCatch(u64),
    /// A sleep that, when cancelled, runs the cleanup script (with handles
    /// of its own, none inherited) and then propagates the cancellation.
    /// A cleanup never returns, panics or catches.
    SleepCleanup(u64, Script),
    /// Spawn child task `.0` (its static number) running this script; keeps
    /// its handle.
    Spawn(usize, Script),
    Join(usize),
    Cancel(usize),
    /// `current_task().cancel()`: the running task cancels itself.
    CancelSelf,
    /// Cancel the task that spawned this one (not in `main`).
    CancelParent,
    /// Schedule callback `.0` (its static number): `call_soon` for `None`,
    /// else `call_later(ms)`; keeps its handle.
    Call(usize, Option<u64>, CbAction),
    /// Cancel a callback this script scheduled.
    CancelCall(usize),
    /// Gather distinct children; `true` is `return_exceptions=True`.
    Gather(Vec<usize>, bool),
    Panic,
    Log,
    Return(i64),
}

/// What a callback does when it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CbAction {
    Log,
    /// Cancel a child, by its index among the scheduling script's handles
    /// when it scheduled the callback.
    Cancel(usize),
    /// Cancel the task that scheduled it.
    CancelOwner,
}

type Script = Vec<Op>;

/// A program: `main`'s script, plus how many tasks (main included) and
/// callbacks it numbers.
#[derive(Clone, Debug)]
struct Program {
    main: Script,
    tasks: usize,
    calls: usize,
}

impl Program {
    /// Numbers the spawns and callbacks of `main` depth first (whatever
    /// numbers they carry) and wraps it.
    fn new(mut main: Script) -> Program {
        let mut next = (1, 0);
        number(&mut main, &mut next);
        Program { main, tasks: next.0, calls: next.1 }
    }
}

fn number(script: &mut Script, next: &mut (usize, usize)) {
    for op in script {
        match op {
            Op::Spawn(id, child) => {
                *id = next.0;
                next.0 += 1;
                number(child, next);
            }
            Op::SleepCleanup(_, cleanup) => number(cleanup, next),
            Op::Call(cb, ..) => {
                *cb = next.1;
                next.1 += 1;
            }
            _ => {}
        }
    }
}

/// Child tasks a program may spawn at most.
const MAX_CHILDREN: usize = 8;

/// What the generator produces before handle indices are resolved.
#[derive(Clone, Debug)]
enum RawOp {
    Sleep(u64),
    SleepCatch(u64),
    SleepCleanup(u64, Vec<RawOp>),
    Spawn(Vec<RawOp>),
    Join(usize),
    Cancel(usize),
    CancelSelf,
    CancelParent,
    Call(Option<u64>, RawCb),
    CancelCall(usize),
    Gather(Vec<usize>, bool),
    Panic,
    Log,
    Return(i64),
}

#[derive(Clone, Copy, Debug)]
enum RawCb {
    Log,
    Cancel(usize),
    CancelOwner,
}

/// Everything one op may need, drawn at once: the arm (which op, by
/// weight), a delay, a handle index, gather keys, a flag, a value, when a
/// callback runs and what it does. (Plain numbers are much cheaper to draw
/// than a union of many strategies, and still shrink towards simple ops.)
type Draw = (u32, u64, usize, Vec<usize>, bool, i64, u32, u32);

fn draw(weights: &'static [u32]) -> impl Strategy<Value = (usize, Draw)> {
    let total: u32 = weights.iter().sum();
    (
        0..total,
        0..=5u64,
        0..8usize,
        vec(0..8usize, 1..=3),
        any::<bool>(),
        0..10i64,
        0..5u32,
        0..5u32,
    )
        .prop_map(move |d| {
            let mut ends = weights.iter().scan(0, |end, &w| {
                *end += w;
                Some(*end)
            });
            (ends.position(|end| d.0 < end).expect("the arm is below the total"), d)
        })
}

/// 0 (a plain yield) one time in three, else 1 to 4 ms.
fn delay(d: u64) -> u64 {
    d.saturating_sub(1)
}

/// `call_soon`, or `call_later` with a delay from 0 (a zero-delay timer),
/// and what the callback does.
fn call_op(d: &Draw) -> RawOp {
    let when = match d.6 {
        0 => None,
        1 | 2 => Some(0),
        _ => Some(delay(d.1).max(1)),
    };
    let action = match d.7 {
        0 | 1 => RawCb::Log,
        2 | 3 => RawCb::Cancel(d.2),
        _ => RawCb::CancelOwner,
    };
    RawOp::Call(when, action)
}

/// Sleep, SleepCatch, Join, Cancel, Gather, Panic, Log, Return, CancelSelf,
/// CancelParent, Call, CancelCall.
const LEAF_WEIGHTS: &[u32] = &[6, 2, 3, 2, 3, 1, 1, 1, 1, 1, 3, 1];

fn leaf_op() -> impl Strategy<Value = RawOp> {
    draw(LEAF_WEIGHTS).prop_map(|(arm, d)| match arm {
        0 => RawOp::Sleep(delay(d.1)),
        1 => RawOp::SleepCatch(d.1.min(4)),
        2 => RawOp::Join(d.2),
        3 => RawOp::Cancel(d.2),
        4 => RawOp::Gather(d.3.clone(), d.4),
        5 => RawOp::Panic,
        6 => RawOp::Log,
        7 => RawOp::Return(d.5),
        8 => RawOp::CancelSelf,
        9 => RawOp::CancelParent,
        10 => call_op(&d),
        _ => RawOp::CancelCall(d.2),
    })
}

fn raw_op(depth: u32) -> BoxedStrategy<RawOp> {
    if depth == 0 {
        leaf_op().boxed()
    } else {
        prop_oneof![
            22 => leaf_op(),
            9 => vec(raw_op(depth - 1), 0..=6).prop_map(RawOp::Spawn),
            4 => (0..=5u64, vec(cleanup_op(depth - 1), 1..=3))
                .prop_map(|(d, cleanup)| RawOp::SleepCleanup(delay(d), cleanup)),
        ]
        .boxed()
    }
}

/// Sleep (0 to 2 ms), Log, CancelSelf, Call, Join, Cancel.
const CLEANUP_WEIGHTS: &[u32] = &[3, 2, 1, 2, 1, 1];

/// An op of a cleanup script: nothing that returns, panics or catches, and
/// children that mostly yield and log, so that those spawned during the
/// shutdown show how many iterations it runs.
fn cleanup_op(depth: u32) -> BoxedStrategy<RawOp> {
    let leaf = draw(CLEANUP_WEIGHTS).prop_map(|(arm, d)| match arm {
        0 => RawOp::Sleep(d.1 % 3),
        1 => RawOp::Log,
        2 => RawOp::CancelSelf,
        3 => call_op(&d),
        4 => RawOp::Join(d.2),
        _ => RawOp::Cancel(d.2),
    });
    let child_op =
        prop_oneof![3 => Just(RawOp::Sleep(0)), 1 => Just(RawOp::Log), 3 => raw_op(depth)];
    prop_oneof![4 => leaf, 3 => vec(child_op, 1..=8).prop_map(RawOp::Spawn)].boxed()
}

/// Resolves handle indices (modulo the handles the script holds at that
/// point; an op that needs one before there is any is dropped, a callback
/// that would cancel a child then only logs), drops dead ops after a
/// `Panic` or `Return` and `CancelParent` in `main`, and caps the number of
/// spawns, depth first. Spawn and callback numbers are set by
/// [`Program::new`].
fn normalize(raw: &[RawOp], inherited: usize, has_parent: bool, budget: &mut usize) -> Script {
    let mut out = Vec::new();
    let mut handles = inherited;
    let mut calls = 0;
    for op in raw {
        match op {
            RawOp::Sleep(ms) => out.push(Op::Sleep(*ms)),
            RawOp::SleepCatch(ms) => out.push(Op::SleepCatch(*ms)),
            RawOp::SleepCleanup(ms, cleanup) => {
                out.push(Op::SleepCleanup(*ms, normalize(cleanup, 0, has_parent, budget)));
            }
            RawOp::Spawn(child) => {
                if *budget > 0 {
                    *budget -= 1;
                    out.push(Op::Spawn(0, normalize(child, handles, true, budget)));
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
            RawOp::CancelSelf => out.push(Op::CancelSelf),
            RawOp::CancelParent if has_parent => out.push(Op::CancelParent),
            RawOp::CancelParent => {}
            RawOp::Call(when, cb) => {
                let action = match cb {
                    RawCb::Log => CbAction::Log,
                    RawCb::Cancel(k) if handles > 0 => CbAction::Cancel(k % handles),
                    RawCb::Cancel(_) => CbAction::Log,
                    RawCb::CancelOwner => CbAction::CancelOwner,
                };
                out.push(Op::Call(0, *when, action));
                calls += 1;
            }
            RawOp::CancelCall(k) if calls > 0 => out.push(Op::CancelCall(k % calls)),
            RawOp::CancelCall(_) => {}
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

fn program() -> impl Strategy<Value = Program> {
    vec(raw_op(3), 2..=10).prop_map(|raw| {
        let mut budget = MAX_CHILDREN;
        Program::new(normalize(&raw, 0, false, &mut budget))
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
/// task's outcome by number (main is 0).
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
    /// Every task but main, by number (slot 0 is unused).
    tasks: RefCell<Vec<Option<Task<i64>>>>,
    /// What each task's body returned.
    returned: RefCell<BTreeMap<usize, i64>>,
    /// `main`'s body has finished.
    main_done: Cell<bool>,
}

impl Rt {
    fn stamp(&self) -> u128 {
        runtime::time().expect("logging from inside the loop").as_millis()
    }

    fn log(&self, id: usize, msg: &str) {
        let line = format!("t={} task{id} {msg}", self.stamp());
        self.trace.borrow_mut().push(line);
    }

    fn log_cb(&self, cb: usize, msg: &str) {
        let line = format!("t={} cb{cb} {msg}", self.stamp());
        self.trace.borrow_mut().push(line);
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

/// The task running a script: its number and its parent's.
struct Me {
    id: usize,
    parent: Option<(usize, TaskRef)>,
}

/// The handles a script holds: children, then callbacks.
#[derive(Default)]
struct Scope {
    kids: Vec<(usize, Task<i64>)>,
    calls: Vec<(usize, CallHandle)>,
}

fn this_task() -> Result<TaskRef, Error> {
    Ok(runtime::current_task()?.expect("scripts run in tasks"))
}

fn body(
    rt: Rc<Rt>,
    me: Me,
    script: Script,
    inherited: Vec<(usize, Task<i64>)>,
) -> Result<i64, Error> {
    rt.log(me.id, "start");
    let mut scope = Scope { kids: inherited, calls: Vec::new() };
    let value = match exec(&rt, &me, &script, &mut scope)? {
        Some(v) => v,
        None => {
            rt.log(me.id, "end");
            end_value(me.id)
        }
    };
    rt.returned.borrow_mut().insert(me.id, value);
    Ok(value)
}

/// Runs a script; `Some(value)` if it returned.
fn exec(rt: &Rc<Rt>, me: &Me, script: &[Op], scope: &mut Scope) -> Result<Option<i64>, Error> {
    let id = me.id;
    for op in script {
        match op {
            Op::Sleep(ms) => {
                let r = runtime::sleep(Duration::from_millis(*ms));
                let shown = match &r {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => err_name(e),
                };
                rt.log(id, &format!("sleep {ms} -> {shown}"));
                r?;
            }
            Op::SleepCatch(ms) => match runtime::sleep(Duration::from_millis(*ms)) {
                Ok(()) => rt.log(id, &format!("sleep_catch {ms} -> ok")),
                Err(e) if rt.main_done.get() => {
                    rt.log(id, &format!("sleep_catch {ms} -> {}", err_name(&e)));
                    return Err(e);
                }
                Err(e) => rt.log(id, &format!("sleep_catch {ms} -> {} (caught)", err_name(&e))),
            },
            Op::SleepCleanup(ms, cleanup) => match runtime::sleep(Duration::from_millis(*ms)) {
                Ok(()) => rt.log(id, &format!("sleep_cleanup {ms} -> ok")),
                Err(e) => {
                    rt.log(id, &format!("sleep_cleanup {ms} -> {}", err_name(&e)));
                    // A cancellation in the cleanup replaces this one.
                    exec(rt, me, cleanup, &mut Scope::default())?;
                    return Err(e);
                }
            },
            Op::Spawn(cid, child) => {
                let cid = *cid;
                let parent = Some((id, this_task()?));
                let (rt2, child, handles) = (rt.clone(), child.clone(), scope.kids.clone());
                let task =
                    runtime::spawn(move || body(rt2, Me { id: cid, parent }, child, handles));
                rt.tasks.borrow_mut()[cid] = Some(task.clone());
                scope.kids.push((cid, task));
                rt.log(id, &format!("spawn task{cid}"));
            }
            Op::Join(k) => {
                let (cid, task) = &scope.kids[*k];
                let r = task.join();
                rt.log(id, &format!("join task{cid} -> {}", res_name(&r)));
                propagate_cancel(&r)?;
            }
            Op::Cancel(k) => {
                let (cid, task) = &scope.kids[*k];
                let r = task.cancel();
                rt.log(id, &format!("cancel task{cid} -> {r}"));
            }
            Op::CancelSelf => {
                let r = this_task()?.cancel();
                rt.log(id, &format!("cancel_self -> {r}"));
            }
            Op::CancelParent => {
                let (pid, parent) = me.parent.as_ref().expect("main has no CancelParent");
                let r = parent.cancel();
                rt.log(id, &format!("cancel_parent task{pid} -> {r}"));
            }
            Op::Call(cb, when, action) => {
                let cb = *cb;
                let target = match action {
                    CbAction::Log => None,
                    CbAction::Cancel(k) => Some((scope.kids[*k].0, scope.kids[*k].1.as_ref())),
                    CbAction::CancelOwner => Some((id, this_task()?)),
                };
                let rt2 = rt.clone();
                let fire = move || match &target {
                    None => rt2.log_cb(cb, "fire"),
                    Some((tid, task)) => {
                        let r = task.cancel();
                        rt2.log_cb(cb, &format!("cancel task{tid} -> {r}"));
                    }
                };
                let handle = match when {
                    None => runtime::call_soon(fire)?,
                    Some(ms) => runtime::call_later(Duration::from_millis(*ms), fire)?,
                };
                scope.calls.push((cb, handle));
                match when {
                    None => rt.log(id, &format!("call_soon cb{cb}")),
                    Some(ms) => rt.log(id, &format!("call_later cb{cb} {ms}")),
                }
            }
            Op::CancelCall(k) => {
                let (cb, handle) = &scope.calls[*k];
                handle.cancel();
                rt.log(id, &format!("cancel_call cb{cb}"));
            }
            Op::Gather(ks, false) => {
                let ids: Vec<usize> = ks.iter().map(|&k| scope.kids[k].0).collect();
                let r = runtime::gather(ks.iter().map(|&k| scope.kids[k].1.clone()));
                let shown = match &r {
                    Ok(vs) => format!("Ok({vs:?})"),
                    Err(e) => err_name(e),
                };
                rt.log(id, &format!("gather {} -> {shown}", task_list(&ids)));
                propagate_cancel(&r)?;
            }
            Op::Gather(ks, true) => {
                let ids: Vec<usize> = ks.iter().map(|&k| scope.kids[k].0).collect();
                let r = runtime::gather_outcomes(ks.iter().map(|&k| scope.kids[k].1.clone()));
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
                return Ok(Some(*v));
            }
        }
    }
    Ok(None)
}

fn run_gencoro(program: &Program) -> Observed {
    quiet_scripted_panics();
    let clock = Clock::virtual_time();
    let rt = Rc::new(Rt::default());
    rt.tasks.borrow_mut().resize(program.tasks, None);
    let (rt2, script) = (rt.clone(), program.main.clone());
    let result = Builder::new().clock(clock.clone()).run(move || {
        // Set however `main`'s body ends, even by unwinding.
        let _main_done = MainDone(rt2.clone());
        body(rt2, Me { id: 0, parent: None }, script, Vec::new())
    });
    let mut outcomes = vec![res_name(&result)];
    for (i, task) in rt.tasks.borrow().iter().enumerate().skip(1) {
        outcomes.push(match task {
            None => "Unspawned".to_owned(),
            Some(task) if !task.is_done() => "Pending".to_owned(),
            Some(task) if task.is_cancelled() => "Cancelled".to_owned(),
            Some(task) => match task.failure() {
                Some(e) => err_name(&e),
                None => format!("Ok({})", rt.returned.borrow()[&i]),
            },
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
    /// A scheduled callback (`Handle` or `TimerHandle`).
    Call(usize),
    GatherChild(usize, usize),
    StopLoop,
}

/// What an armed timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Completes the sleep of this task.
    Sleep(usize),
    /// Runs this callback.
    Call(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Fin {
    Value(i64),
    Cancelled,
    Panicked,
}

/// A script being run: the body, or a cleanup on top of it.
struct Frame {
    script: Script,
    /// The op running, or the one the task is suspended in.
    pc: usize,
    /// Handles: those inherited from its parent, then its children's.
    kids: Vec<usize>,
    /// Its callbacks' numbers.
    calls: Vec<usize>,
}

struct MTask {
    /// The body's frame, and a cleanup's while one runs.
    frames: Vec<Frame>,
    parent: Option<usize>,
    started: bool,
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

/// A scheduled callback.
struct MCall {
    /// The task it cancels; `None`: it logs.
    target: Option<usize>,
    cancelled: bool,
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
    /// `(deadline, seq, what)`; cancelled timers are removed.
    timers: Vec<(u64, u64, Timer)>,
    /// By number; `None` until spawned.
    tasks: Vec<Option<MTask>>,
    /// By number; `None` until scheduled.
    calls: Vec<Option<MCall>>,
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
    fn run(program: &Program) -> (Observed, usize) {
        let mut m = Model {
            now: 0,
            next_seq: 0,
            ready: VecDeque::new(),
            timers: Vec::new(),
            tasks: (0..program.tasks).map(|_| None).collect(),
            calls: (0..program.calls).map(|_| None).collect(),
            gathers: Vec::new(),
            trace: Vec::new(),
            main_done: false,
            stopping: false,
        };
        m.spawn(0, None, program.main.clone(), Vec::new());
        m.task(0).callbacks.push(Callback::StopLoop);
        // `run_until_complete(main)`: `run_forever` until stopped.
        while !m.stopping {
            m.run_once(true);
        }
        let main_phase = m.trace.len();
        // `_cancel_all_tasks`.
        let to_cancel: Vec<usize> = (0..m.tasks.len())
            .filter(|&t| m.tasks[t].as_ref().is_some_and(|t| t.fin.is_none()))
            .collect();
        for &t in &to_cancel {
            m.cancel(t);
        }
        if !to_cancel.is_empty() {
            while to_cancel.iter().any(|&t| m.task(t).fin.is_none()) {
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
            .map(|t| match t.as_ref().map(|t| &t.fin) {
                None => "Unspawned".to_owned(),
                Some(None) => "Pending".to_owned(),
                Some(Some(Fin::Value(v))) => format!("Ok({v})"),
                Some(Some(Fin::Cancelled)) => "Cancelled".to_owned(),
                Some(Some(Fin::Panicked)) => "Panicked".to_owned(),
            })
            .collect();
        (Observed { trace: m.trace, time_ms: m.now, outcomes }, main_phase)
    }

    fn task(&mut self, id: usize) -> &mut MTask {
        self.tasks[id].as_mut().expect("a spawned task")
    }

    /// The frame the task runs in.
    fn frame(&mut self, id: usize) -> &mut Frame {
        self.task(id).frames.last_mut().expect("a task has a frame")
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
            let (_, seq, timer) = self.timers.remove(0);
            self.ready.push_back(match timer {
                Timer::Sleep(task) => Entry::SleepTimer(task, seq),
                Timer::Call(cb) => Entry::Call(cb),
            });
        }
        let ntodo = self.ready.len();
        for _ in 0..ntodo {
            let entry = self.ready.pop_front().expect("ntodo entries are ready");
            match entry {
                Entry::Step(task, wake) => self.step(task, wake),
                Entry::SleepTimer(task, seq) => {
                    if self.task(task).sleep == Some(seq) {
                        self.task(task).sleep = None;
                        self.ready.push_back(Entry::Step(task, Wake::Go));
                    }
                }
                Entry::Call(cb) => self.fire(cb),
                Entry::GatherChild(g, child) => self.gather_child_done(g, child),
                Entry::StopLoop => self.stopping = true,
            }
        }
    }

    fn log(&mut self, id: usize, msg: &str) {
        let line = format!("t={} task{id} {msg}", self.now);
        self.trace.push(line);
    }

    fn log_cb(&mut self, cb: usize, msg: &str) {
        let line = format!("t={} cb{cb} {msg}", self.now);
        self.trace.push(line);
    }

    /// `loop.create_task`: the first step is queued.
    fn spawn(&mut self, id: usize, parent: Option<usize>, script: Script, inherited: Vec<usize>) {
        self.tasks[id] = Some(MTask {
            frames: vec![Frame { script, pc: 0, kids: inherited, calls: Vec::new() }],
            parent,
            started: false,
            fin: None,
            taken: false,
            must_cancel: false,
            waiter: Waiter::Nothing,
            sleep: None,
            gather: usize::MAX,
            callbacks: Vec::new(),
        });
        self.ready.push_back(Entry::Step(id, Wake::Go));
    }

    /// A callback runs, unless it was cancelled.
    fn fire(&mut self, cb: usize) {
        let call = self.calls[cb].as_mut().expect("a scheduled callback");
        if call.cancelled {
            return;
        }
        call.cancelled = true; // It runs once.
        match call.target {
            None => self.log_cb(cb, "fire"),
            Some(target) => {
                let r = self.cancel(target);
                self.log_cb(cb, &format!("cancel task{target} -> {r}"));
            }
        }
    }

    /// gencoro's `take_result`: the value moves out once.
    fn take(&mut self, id: usize) -> Took {
        let t = self.task(id);
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
        let t = self.task(id);
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
        let frame = self.frame(id);
        let op = frame.script[frame.pc].clone();
        frame.pc += 1;
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
            Op::SleepCleanup(ms, cleanup) => {
                if wake == Wake::Cancel {
                    self.log(id, &format!("sleep_cleanup {ms} -> Cancelled"));
                    let frame =
                        Frame { script: cleanup, pc: 0, kids: Vec::new(), calls: Vec::new() };
                    self.task(id).frames.push(frame);
                } else {
                    self.log(id, &format!("sleep_cleanup {ms} -> ok"));
                }
                false
            }
            Op::Join(k) => {
                let child = self.frame(id).kids[k];
                let r = if wake == Wake::Cancel { Err("Cancelled") } else { self.take(child) };
                self.log(id, &format!("join task{child} -> {}", show(&r)));
                r == Err("Cancelled")
            }
            Op::Gather(ks, return_exceptions) => {
                let g = self.task(id).gather;
                let ids: Vec<usize> = ks.iter().map(|&k| self.frame(id).kids[k]).collect();
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
            _ => unreachable!("a task only suspends in a sleep, a join or a gather"),
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
            let in_cleanup = self.task(id).frames.len() > 1;
            let frame = self.frame(id);
            let Some(op) = frame.script.get(frame.pc).cloned() else {
                if in_cleanup {
                    // The cleanup is over: the cancellation propagates.
                    self.finish(id, Fin::Cancelled);
                } else {
                    self.log(id, "end");
                    self.finish(id, Fin::Value(end_value(id)));
                }
                return;
            };
            match op {
                Op::Sleep(0) | Op::SleepCatch(0) | Op::SleepCleanup(0, _) => {
                    // A bare yield: `call_soon(self.__step)`, no waiter.
                    self.ready.push_back(Entry::Step(id, Wake::Go));
                    return;
                }
                Op::Sleep(ms) | Op::SleepCatch(ms) | Op::SleepCleanup(ms, _) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.timers.push((self.now + ms, seq, Timer::Sleep(id)));
                    self.task(id).sleep = Some(seq);
                    self.suspend(id, Waiter::Sleep);
                    return;
                }
                Op::Spawn(child, script) => {
                    let handles = self.frame(id).kids.clone();
                    self.spawn(child, Some(id), script, handles);
                    self.frame(id).kids.push(child);
                    self.log(id, &format!("spawn task{child}"));
                }
                Op::Join(k) => {
                    let child = self.frame(id).kids[k];
                    if self.task(child).fin.is_none() {
                        self.task(child).callbacks.push(Callback::Wakeup(id));
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
                    let child = self.frame(id).kids[k];
                    let r = self.cancel(child);
                    self.log(id, &format!("cancel task{child} -> {r}"));
                }
                Op::CancelSelf => {
                    let r = self.cancel(id);
                    self.log(id, &format!("cancel_self -> {r}"));
                }
                Op::CancelParent => {
                    let parent = self.task(id).parent.expect("main has no CancelParent");
                    let r = self.cancel(parent);
                    self.log(id, &format!("cancel_parent task{parent} -> {r}"));
                }
                Op::Call(cb, when, action) => {
                    let target = match action {
                        CbAction::Log => None,
                        CbAction::Cancel(k) => Some(self.frame(id).kids[k]),
                        CbAction::CancelOwner => Some(id),
                    };
                    self.calls[cb] = Some(MCall { target, cancelled: false });
                    self.frame(id).calls.push(cb);
                    match when {
                        None => {
                            self.ready.push_back(Entry::Call(cb));
                            self.log(id, &format!("call_soon cb{cb}"));
                        }
                        Some(ms) => {
                            let seq = self.next_seq;
                            self.next_seq += 1;
                            self.timers.push((self.now + ms, seq, Timer::Call(cb)));
                            self.log(id, &format!("call_later cb{cb} {ms}"));
                        }
                    }
                }
                Op::CancelCall(k) => {
                    let cb = self.frame(id).calls[k];
                    self.calls[cb].as_mut().expect("a scheduled callback").cancelled = true;
                    self.timers.retain(|t| t.2 != Timer::Call(cb));
                    self.log(id, &format!("cancel_call cb{cb}"));
                }
                Op::Gather(ks, return_exceptions) => {
                    let g = self.gathers.len();
                    let children: Vec<usize> = ks.iter().map(|&k| self.frame(id).kids[k]).collect();
                    for &c in &children {
                        // `add_done_callback`: queued at once if done.
                        if self.task(c).fin.is_some() {
                            self.ready.push_back(Entry::GatherChild(g, c));
                        } else {
                            self.task(c).callbacks.push(Callback::GatherChild(g, c));
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
                    self.task(id).gather = g;
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
            self.frame(id).pc += 1;
        }
    }

    /// The end of `__step` when the coroutine yielded a future.
    fn suspend(&mut self, id: usize, waiter: Waiter) {
        self.task(id).waiter = waiter;
        if self.task(id).must_cancel && self.cancel_waiter(id, waiter) {
            self.task(id).must_cancel = false;
        }
    }

    /// The task completes; its callbacks are queued in registration order.
    fn finish(&mut self, id: usize, fin: Fin) {
        let t = self.task(id);
        let fin = if matches!(fin, Fin::Value(_)) && t.must_cancel {
            // Cancelled while it ran, right before the coroutine returned.
            t.must_cancel = false;
            Fin::Cancelled
        } else {
            fin
        };
        let wake = if fin == Fin::Cancelled { Wake::Cancel } else { Wake::Go };
        t.fin = Some(fin);
        t.waiter = Waiter::Nothing;
        let callbacks = std::mem::take(&mut t.callbacks);
        self.main_done |= id == 0;
        for cb in callbacks {
            self.ready.push_back(match cb {
                Callback::Wakeup(w) => Entry::Step(w, wake),
                Callback::GatherChild(g, c) => Entry::GatherChild(g, c),
                Callback::StopLoop => Entry::StopLoop,
            });
        }
    }

    /// `Task.cancel`.
    fn cancel(&mut self, id: usize) -> bool {
        if self.task(id).fin.is_some() {
            return false;
        }
        let waiter = self.task(id).waiter;
        if self.cancel_waiter(id, waiter) {
            return true;
        }
        self.task(id).must_cancel = true;
        true
    }

    /// `self._fut_waiter.cancel()`.
    fn cancel_waiter(&mut self, id: usize, waiter: Waiter) -> bool {
        match waiter {
            Waiter::Nothing => false,
            Waiter::Sleep => match self.task(id).sleep.take() {
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
            match self.task(child).fin {
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
    program: &Program,
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
    let _ = writeln!(msg, "program (main's script): {}", py_script(&program.main));
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

fn py_script(script: &[Op]) -> String {
    let ops: Vec<String> = script
        .iter()
        .map(|op| match op {
            Op::Sleep(ms) => format!("('sleep', {ms})"),
            Op::SleepCatch(ms) => format!("('sleep_catch', {ms})"),
            Op::SleepCleanup(ms, cleanup) => {
                format!("('sleep_cleanup', {ms}, {})", py_script(cleanup))
            }
            Op::Spawn(id, child) => format!("('spawn', {id}, {})", py_script(child)),
            Op::Join(k) => format!("('join', {k})"),
            Op::Cancel(k) => format!("('cancel', {k})"),
            Op::CancelSelf => "('cancel_self',)".to_owned(),
            Op::CancelParent => "('cancel_parent',)".to_owned(),
            Op::Call(cb, when, action) => {
                let when = match when {
                    None => "None".to_owned(),
                    Some(ms) => ms.to_string(),
                };
                let action = match action {
                    CbAction::Log => "('log',)".to_owned(),
                    CbAction::Cancel(k) => format!("('cancel', {k})"),
                    CbAction::CancelOwner => "('cancel_owner',)".to_owned(),
                };
                format!("('call', {cb}, {when}, {action})")
            }
            Op::CancelCall(k) => format!("('cancel_call', {k})"),
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
import asyncio, heapq, itertools, logging, warnings
from asyncio import events

logging.getLogger("asyncio").setLevel(logging.CRITICAL)
# Tasks spawned during the shutdown may never start.
warnings.simplefilter("ignore")
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

def run_program(ntasks, prog):
    trace, tasks, taken = [], {}, set()
    main_done = False

    def stamp():
        return round(asyncio.get_running_loop().time())

    def log(tid, msg):
        trace.append(f"t={stamp()} task{tid} {msg}")

    def log_cb(cb, msg):
        trace.append(f"t={stamp()} cb{cb} {msg}")

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

    def callback(cb, target):
        def fire():
            if target is None:
                log_cb(cb, "fire")
            else:
                log_cb(cb, f"cancel task{target} -> {str(tasks[target].cancel()).lower()}")
        return fire

    async def body(tid, parent, script, inherited):
        nonlocal main_done
        if tid == 0:
            try:
                return await body_ops(tid, parent, script, inherited)
            finally:
                main_done = True
        return await body_ops(tid, parent, script, inherited)

    async def body_ops(tid, parent, script, inherited):
        tasks.setdefault(tid, asyncio.current_task())
        log(tid, "start")
        returned = await run_ops(tid, parent, script, inherited, [])
        if returned is None:
            log(tid, "end")
            return 100 + tid
        return returned[0]

    # Runs a script; `(value,)` if it returned.
    async def run_ops(tid, parent, script, kids, calls):
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
            elif kind == "sleep_cleanup":
                try:
                    await asyncio.sleep(op[1])
                except asyncio.CancelledError:
                    log(tid, f"sleep_cleanup {op[1]} -> Cancelled")
                    await run_ops(tid, parent, op[2], [], [])
                    raise
                log(tid, f"sleep_cleanup {op[1]} -> ok")
            elif kind == "spawn":
                cid = op[1]
                tasks[cid] = asyncio.create_task(body(cid, tid, op[2], list(kids)))
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
            elif kind == "cancel_self":
                log(tid, f"cancel_self -> {str(asyncio.current_task().cancel()).lower()}")
            elif kind == "cancel_parent":
                log(tid, f"cancel_parent task{parent} -> {str(tasks[parent].cancel()).lower()}")
            elif kind == "call":
                cb, when, action = op[1], op[2], op[3]
                if action[0] == "cancel":
                    target = kids[action[1]]
                elif action[0] == "cancel_owner":
                    target = tid
                else:
                    target = None
                loop = asyncio.get_running_loop()
                if when is None:
                    calls.append((cb, loop.call_soon(callback(cb, target))))
                    log(tid, f"call_soon cb{cb}")
                else:
                    calls.append((cb, loop.call_later(when, callback(cb, target))))
                    log(tid, f"call_later cb{cb} {when}")
            elif kind == "cancel_call":
                cb, handle = calls[op[1]]
                handle.cancel()
                log(tid, f"cancel_call cb{cb}")
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
                return (op[1],)
        return None

    def outcome(t):
        if t is None:
            return "Unspawned"
        if not t.done():
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
            runner.run(body(0, None, prog, []))
        except (Panic, asyncio.CancelledError):
            pass
    return trace, round(loop.time()), [outcome(tasks.get(i)) for i in range(ntasks)]

for ntasks, prog in PROGRAMS:
    trace, time, outcomes = run_program(ntasks, prog)
    print("BEGIN")
    for line in trace:
        print("T", line)
    print("TIME", time)
    for o in outcomes:
        print("O", o)
    print("END")
"#;

fn python_source(programs: &[&Program]) -> String {
    let list: Vec<String> =
        programs.iter().map(|p| format!("    ({}, {}),", p.tasks, py_script(&p.main))).collect();
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

fn check_against_model(programs: &[Program]) {
    for program in programs {
        let (model, main_phase) = Model::run(program);
        let actual = run_gencoro(program);
        if let Err(msg) = compare(program, &model, main_phase, &actual, "gencoro") {
            panic!("{msg}");
        }
    }
}

/// A spawn, numbered by [`Program::new`].
fn spawn(script: Script) -> Op {
    Op::Spawn(0, script)
}

/// A callback, numbered by [`Program::new`].
fn call(when: Option<u64>, action: CbAction) -> Op {
    Op::Call(0, when, action)
}

/// Fixed programs, so the basic shapes are always covered; the CPython
/// cross-check runs them too.
fn fixed_programs() -> Vec<Program> {
    use Op::*;
    let scripts: Vec<Script> = vec![
        // Timers, yields and a join.
        vec![spawn(vec![Sleep(2), Log, Return(7)]), Sleep(0), Sleep(1), Join(0)],
        // Cancelling a sleeping child, and one that never started.
        vec![
            spawn(vec![Sleep(3)]),
            spawn(vec![Log]),
            Sleep(1),
            Cancel(0),
            Cancel(1),
            Join(0),
            Join(1),
        ],
        // Gathers both ways with a panicking child, then a second retrieval.
        vec![
            spawn(vec![Sleep(1), Panic]),
            spawn(vec![Sleep(2), Return(5)]),
            Gather(vec![1, 0], true),
            Gather(vec![1], false),
            Join(1),
        ],
        // Cancelling a task that waits in a join and in a gather.
        vec![
            spawn(vec![spawn(vec![Sleep(4)]), Join(0)]),
            spawn(vec![spawn(vec![Sleep(4)]), spawn(vec![Sleep(1)]), Gather(vec![0, 1], true)]),
            Sleep(2),
            Cancel(0),
            Cancel(1),
            Sleep(0),
            Sleep(0),
            Sleep(0),
        ],
        // Main returns while children are pending: shutdown.
        vec![
            spawn(vec![Sleep(0), Log, Sleep(5)]),
            spawn(vec![spawn(vec![Sleep(3)]), Join(0)]),
            Sleep(0),
        ],
        // Zero-delay timers and `call_soon` against ready work: a due timer
        // runs behind what was ready when its iteration began.
        vec![
            call(Some(0), CbAction::Log),
            call(None, CbAction::Log),
            Sleep(0),
            Log,
            call(Some(0), CbAction::Log),
            Sleep(0),
            Log,
            Sleep(0),
            Log,
        ],
        // A callback armed after a sleep and due at the same time runs before
        // the sleeper resumes (B0.5); cancelled callbacks never run, and no
        // time passes for them.
        vec![
            spawn(vec![Sleep(2), Log]),
            call(Some(2), CbAction::Log),
            call(Some(1), CbAction::Log),
            call(Some(1), CbAction::Log),
            call(Some(9), CbAction::Log),
            CancelCall(1),
            CancelCall(3),
            Sleep(3),
            CancelCall(0),
        ],
        // A zero-delay timer cancels its owner's sleep; a later one too.
        vec![
            call(Some(0), CbAction::CancelOwner),
            SleepCatch(5),
            Log,
            call(Some(2), CbAction::CancelOwner),
            Sleep(0),
            SleepCatch(4),
            spawn(vec![Sleep(3)]),
            call(Some(0), CbAction::Cancel(0)),
            Join(0),
        ],
        // A task cancels itself while it runs: it returns (ends cancelled),
        // catches it in its next sleep, or gets it in a plain yield.
        vec![
            spawn(vec![CancelSelf, Return(3)]),
            spawn(vec![CancelSelf, Log, SleepCatch(1), Return(4)]),
            spawn(vec![CancelSelf, Sleep(0), Log]),
            spawn(vec![Sleep(0), CancelSelf]),
            Gather(vec![0, 1, 2, 3], true),
        ],
        // A child cancels its parent, which waits on it: the cancellation
        // comes back to the running child.
        vec![spawn(vec![Sleep(0), CancelParent, Log, Return(1)]), Join(0), Log],
        vec![
            spawn(vec![Sleep(3)]),
            spawn(vec![Sleep(0), CancelParent, Log]),
            Gather(vec![0, 1], true),
            Log,
        ],
        vec![spawn(vec![CancelParent, Log]), SleepCatch(2), Log, Sleep(1)],
        // Cleanups: one in the main phase, then tasks spawned by a cleanup
        // during the shutdown, which run in its last iterations.
        vec![
            spawn(vec![SleepCleanup(5, vec![spawn(vec![Log]), Log])]),
            Sleep(1),
            Cancel(0),
            Join(0),
            Sleep(0),
        ],
        vec![
            spawn(vec![SleepCleanup(
                5,
                vec![spawn(vec![Sleep(0), Log, Sleep(0), Log, Sleep(0), Log, Sleep(0), Log]), Log],
            )]),
            Sleep(0),
        ],
        vec![
            spawn(vec![SleepCleanup(
                5,
                vec![Sleep(1), spawn(vec![Sleep(0), Return(2)]), Join(0), Log],
            )]),
            spawn(vec![Sleep(9)]),
            Sleep(0),
        ],
    ];
    let mut programs: Vec<Program> = scripts.into_iter().map(Program::new).collect();
    programs.extend(gather_failed_programs());
    programs
}

#[test]
fn fixed_programs_match_model() {
    check_against_model(&fixed_programs());
}

/// Cancelling a task whose `gather` has already failed but which has not
/// resumed yet (its wake-up is queued).
fn gather_failed_programs() -> Vec<Program> {
    use Op::*;
    let scripts: Vec<Script> = vec![
        // Main cancels the waiter between the gather's failure and the
        // waiter's wake-up; the other child should run on and return 1.
        vec![
            spawn(vec![Sleep(3), Return(1)]),
            spawn(vec![Sleep(1), Panic]),
            spawn(vec![Gather(vec![1, 0], false), Log]),
            Sleep(1),
            Sleep(0),
            Sleep(0),
            Cancel(2),
            Join(0),
            Join(2),
        ],
        // The same through `run`'s shutdown.
        vec![
            spawn(vec![spawn(vec![Panic]), spawn(vec![Sleep(5)]), Gather(vec![0, 1], false), Log]),
            Sleep(0),
            Sleep(0),
        ],
    ];
    scripts.into_iter().map(Program::new).collect()
}

/// CPython's `_GatheringFuture.cancel` returns False once the gather is
/// done, so `Task.cancel` sets `must_cancel`: the task gets a cancellation
/// at its next step, and the gather's other children are left alone (B5.1,
/// B6.2).
#[test]
fn cancel_after_gather_failed() {
    check_against_model(&gather_failed_programs());
}

/// Random programs the CPython cross-check runs unless `GENCORO_PY_CASES`
/// says otherwise.
const PY_CASES: usize = 10000;

/// Whether an environment variable is set to something other than off.
fn env_on(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Checks the model itself against CPython, on the fixed programs and on
/// random ones. It runs when `GENCORO_PY_CHECK=1` or `CI` is set, and then
/// needs `python3` 3.11; otherwise it says why it is skipped.
#[test]
fn model_agrees_with_cpython() {
    let why = if env_on("GENCORO_PY_CHECK") {
        "GENCORO_PY_CHECK is set"
    } else if env_on("CI") {
        "CI is set"
    } else {
        eprintln!(
            "model_agrees_with_cpython: SKIPPED: neither GENCORO_PY_CHECK=1 nor CI is set \
             (the cross-check needs python3 3.11)"
        );
        return;
    };
    let version = Command::new("python3")
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output();
    let version = match version {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!("{why}, but python3 fails: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("{why}, but python3 cannot be run: {e}"),
    };
    assert_eq!(version, "3.11", "{why}: the model follows CPython 3.11, but python3 is {version}");
    let cases = match std::env::var("GENCORO_PY_CASES") {
        Ok(n) => n.parse().expect("GENCORO_PY_CASES is a number of programs"),
        Err(_) => PY_CASES,
    };
    let started = std::time::Instant::now();
    let mut programs = fixed_programs();
    let fixed = programs.len();
    let mut runner = TestRunner::new(Config { failure_persistence: None, ..Config::default() });
    let strategy = program();
    programs
        .extend((0..cases).map(|_| strategy.new_tree(&mut runner).expect("a program").current()));
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
    eprintln!(
        "model_agrees_with_cpython: {} programs ({fixed} fixed, {cases} random) agree with \
         CPython {version}, in {:.1} s",
        programs.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------
// Direct scenarios, independent of the model
// ---------------------------------------------------------------------------

/// Lines printed by a scenario.
#[derive(Clone, Default)]
struct Lines(Rc<RefCell<Vec<String>>>);

impl Lines {
    fn print(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    fn take(&self) -> Vec<String> {
        self.0.take()
    }
}

/// A bool as Python prints it.
fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

// Python: tests/cpython/runtime_model/zero_delay_timers_run_behind_ready_work.py
/// A zero-delay timer is due at the next iteration, but runs behind the
/// work that was ready when that iteration began (B0.3 step 4), while
/// `sleep(0)` is a plain yield with no timer.
#[test]
fn zero_delay_timers_run_behind_ready_work() {
    let lines = Lines::default();
    let out = lines.clone();
    Builder::new()
        .clock(Clock::virtual_time())
        .run(move || {
            let l = out.clone();
            runtime::call_later(Duration::ZERO, move || l.print("timer 0 (armed first)"))?;
            let l = out.clone();
            runtime::call_soon(move || l.print("call_soon"))?;
            let l = out.clone();
            runtime::spawn(move || {
                l.print("worker step 1");
                runtime::sleep(Duration::ZERO)?;
                l.print("worker step 2");
                Ok(())
            });
            runtime::sleep(Duration::ZERO)?;
            out.print("main after sleep(0)");
            let l = out.clone();
            runtime::call_later(Duration::ZERO, move || l.print("timer 0 (armed second)"))?;
            runtime::sleep(Duration::ZERO)?;
            out.print("main after 2nd sleep(0)");
            runtime::sleep(Duration::ZERO)?;
            out.print("main after 3rd sleep(0)");
            Ok(())
        })
        .expect("main succeeds");
    let trace = lines.take();
    assert_eq!(
        trace,
        [
            "call_soon",
            "worker step 1",
            "main after sleep(0)",
            "timer 0 (armed first)",
            "worker step 2",
            "main after 2nd sleep(0)",
            "timer 0 (armed second)",
            "main after 3rd sleep(0)",
        ]
    );
}

// Python: tests/cpython/runtime_model/cancel_while_running_then_return_ends_cancelled.py
/// A task cancelled while it runs (by itself, or by cancelling the parent
/// that waits on it) and that then returns a value ends cancelled: the
/// pending `must_cancel` wins over the value (`Task.__step`, StopIteration).
#[test]
fn cancel_while_running_then_return_ends_cancelled() {
    let lines = Lines::default();
    let out = lines.clone();
    let result = Builder::new().clock(Clock::virtual_time()).run(move || {
        let l = out.clone();
        let t = runtime::spawn(move || {
            l.print(format!("self: {}", py_bool(this_task()?.cancel())));
            Ok(7)
        });
        match t.join() {
            Ok(v) => out.print(format!("join: {v}")),
            Err(e) if e.is_cancelled() => out.print("join: cancelled"),
            Err(e) => return Err(e),
        }
        out.print(format!("cancelled: {}", py_bool(t.is_cancelled())));
        let (l, parent) = (out.clone(), this_task()?);
        let u = runtime::spawn(move || {
            runtime::sleep(Duration::ZERO)?;
            l.print(format!("parent: {}", py_bool(parent.cancel())));
            Ok(8)
        });
        match u.join() {
            Ok(v) => out.print(format!("join: {v}")),
            Err(e) if e.is_cancelled() => out.print("join: cancelled"),
            Err(e) => return Err(e),
        }
        out.print(format!("cancelled: {}", py_bool(u.is_cancelled())));
        Ok("main done")
    });
    lines.print(result.expect("main catches the cancellations"));
    let trace = lines.take();
    assert_eq!(
        trace,
        [
            "self: True",
            "join: cancelled",
            "cancelled: True",
            "parent: True",
            "join: cancelled",
            "cancelled: True",
            "main done",
        ]
    );
}
