//! Model-based test of the generator protocol.
//!
//! Random sequences of operations (`start`, `send`, `throw`, `close`, drop)
//! are applied both to a real generator that delegates with `yield_from` to
//! an inner generator, and to a reference model: a plain state machine over
//! the two bodies' program counters, written without coroutines. At every
//! step the two must agree on what the operation returned, on the
//! generator's state, and on the trace of body events and destructors
//! (drop sentinels push their name to the trace). At the end every sentinel
//! must have been dropped exactly once.
//!
//! The bodies depend on what is sent and thrown: sent values are summed and
//! yielded back, `Soft` errors are handled, `Stop` makes the inner generator
//! return early, `Hard` errors propagate (the outer one catches even ones
//! from the inner generator, and panics on `Hard(3)` after delegating), and
//! both bodies catch `GeneratorExit` at their last yield, then return or
//! ignore it depending on the parity of what they accumulated.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use gencoro::{
    CloseError, Generator, GeneratorExit, ResumeError, SendError, State, Step, ThrowError, Yielder,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// The error type thrown into the generators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exc {
    /// Handled where it lands; the body carries on.
    Soft(i32),
    /// Makes the inner generator return early; propagates from the outer.
    Stop(i32),
    /// Propagates; the outer body catches even ones coming from the inner
    /// generator, and panics on `Hard(3)` after the delegation.
    Hard(i32),
}

type S = Result<i32, Exc>;
type R = Result<i32, Exc>;
type G = Generator<i32, S, R>;
type Log = Rc<RefCell<Vec<String>>>;

#[derive(Debug, Clone, Copy)]
enum Op {
    /// `start()`: Python's `next` on a created generator. (`resume()` needs
    /// `S: Default`, which a throwable `S = Result<..>` is not.)
    Resume,
    Send(i32),
    Throw(Exc),
    Close,
    Drop,
}

/// What an operation produced.
#[derive(Debug, Clone, PartialEq)]
enum Obs {
    Step(Step<i32, R>),
    ResumeErr(ResumeError),
    SendRejected(&'static str, S),
    ThrowRejected(&'static str, Exc),
    Close(Result<(), CloseError>),
    Panicked(String),
    Dropped,
    /// The operation came after the generator was dropped: skipped.
    Gone,
}

// ---------------------------------------------------------------------------
// The real generator
// ---------------------------------------------------------------------------

/// Pushes its name to the trace when dropped.
struct Sentinel(Log, &'static str);

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.borrow_mut().push(self.1.to_string());
    }
}

fn push(log: &Log, entry: String) {
    log.borrow_mut().push(entry);
}

/// A yield that catches `GeneratorExit`: `Err(())` when being closed.
fn yield_catching_exit(co: &Yielder<i32, S>, value: i32) -> Result<S, ()> {
    match catch_unwind(AssertUnwindSafe(|| co.yield_(value))) {
        Ok(sent) => Ok(sent),
        Err(payload) if payload.is::<GeneratorExit>() => Err(()),
        Err(payload) => resume_unwind(payload),
    }
}

fn is_even(n: i32) -> bool {
    n.rem_euclid(2) == 0
}

fn make_inner(log: &Log) -> G {
    let env = Sentinel(log.clone(), "inner-env");
    let log = log.clone();
    Generator::new(move |co: &Yielder<i32, S>| -> R {
        let _env = env;
        let _fin = Sentinel(log.clone(), "inner-fin");
        push(&log, "inner:start".into());
        let mut acc = 0;
        for i in 0..3 {
            let value = 10 * (i + 1) + acc;
            let sent = if i < 2 { Ok(co.yield_(value)) } else { yield_catching_exit(co, value) };
            match sent {
                Ok(Ok(v)) => acc += v,
                Ok(Err(Exc::Soft(n))) => {
                    push(&log, format!("inner:soft{n}"));
                    acc -= n;
                }
                Ok(Err(Exc::Stop(n))) => {
                    push(&log, format!("inner:stop{n}"));
                    return Ok(acc + n);
                }
                Ok(Err(e)) => return Err(e),
                Err(()) => {
                    push(&log, "inner:exit".into());
                    if is_even(acc) {
                        return Ok(acc);
                    }
                    // Ignore GeneratorExit.
                    let _ = co.yield_(-1);
                    push(&log, "inner:after-ignore".into());
                    return Ok(acc);
                }
            }
        }
        push(&log, format!("inner:end{acc}"));
        Ok(acc)
    })
}

fn make_outer(log: &Log) -> G {
    let env = Sentinel(log.clone(), "outer-env");
    let log = log.clone();
    Generator::new(move |co: &Yielder<i32, S>| -> R {
        let _env = env;
        let _fin = Sentinel(log.clone(), "outer-fin");
        push(&log, "outer:start".into());
        let mut total = match co.yield_(1) {
            Ok(v) => v,
            Err(Exc::Soft(n)) => {
                push(&log, format!("outer:soft{n}"));
                -n
            }
            Err(e) => return Err(e),
        };
        let inner = make_inner(&log);
        match co.yield_from(&inner).expect("the inner generator is fresh") {
            Ok(r) => {
                push(&log, format!("outer:got{r}"));
                total += r;
            }
            Err(Exc::Hard(n)) if is_even(n) => {
                push(&log, format!("outer:caught-hard{n}"));
                total -= n;
            }
            Err(e) => return Err(e),
        }
        for k in 0..2 {
            let value = 1000 + total + k;
            let sent = if k == 0 { Ok(co.yield_(value)) } else { yield_catching_exit(co, value) };
            match sent {
                Ok(Ok(v)) => total += v,
                Ok(Err(Exc::Soft(n))) => push(&log, format!("outer:soft{n}")),
                Ok(Err(Exc::Hard(3))) => panic!("fatal {total}"),
                Ok(Err(e)) => return Err(e),
                Err(()) => {
                    push(&log, "outer:exit".into());
                    if is_even(total) {
                        return Ok(total);
                    }
                    // Ignore GeneratorExit once; finish on the next resume.
                    let sent = co.yield_(-7);
                    push(&log, "outer:after-exit".into());
                    return sent.map(|v| total + v);
                }
            }
        }
        push(&log, format!("outer:end{total}"));
        Ok(total)
    })
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<non-string payload>".to_string()
    }
}

struct Real {
    generator: Option<G>,
}

impl Real {
    fn apply(&mut self, op: Op) -> Obs {
        let Some(g) = &self.generator else { return Obs::Gone };
        let result = catch_unwind(AssertUnwindSafe(|| match op {
            Op::Resume => match g.start() {
                Ok(step) => Obs::Step(step),
                Err(e) => Obs::ResumeErr(e),
            },
            Op::Send(v) => match g.send(Ok(v)) {
                Ok(step) => Obs::Step(step),
                Err(e) => {
                    let kind = match e {
                        SendError::NotStarted(_) => "not started",
                        SendError::Running(_) => "running",
                        SendError::Closed(_) => "closed",
                    };
                    Obs::SendRejected(kind, e.into_inner())
                }
            },
            Op::Throw(exc) => match g.throw(exc) {
                Ok(step) => Obs::Step(step),
                Err(e) => {
                    let kind = match e {
                        ThrowError::Running(_) => "running",
                        ThrowError::Closed(_) => "closed",
                    };
                    Obs::ThrowRejected(kind, e.into_inner())
                }
            },
            Op::Close => Obs::Close(g.close()),
            Op::Drop => Obs::Dropped,
        }));
        let obs = result.unwrap_or_else(|payload| Obs::Panicked(panic_text(payload)));
        if let Op::Drop = op {
            let g = self.generator.take();
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(g))) {
                return Obs::Panicked(panic_text(payload));
            }
        }
        obs
    }

    fn state(&self) -> Option<State> {
        self.generator.as_ref().map(|g| g.state())
    }
}

// ---------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------

/// Where the two bodies are.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pc {
    Created,
    /// The outer body is at its first yield.
    OuterFirst,
    /// Delegating: the inner body is at its yield `i` (0..3).
    Inner {
        i: i32,
        acc: i32,
        total: i32,
    },
    /// The outer body is at its yield `k` (0..2) after the delegation.
    OuterAfter {
        k: i32,
        total: i32,
    },
    /// The outer body caught GeneratorExit and yielded again.
    OuterIgnoring {
        total: i32,
    },
    Closed,
    Dropped,
}

/// What running the bodies from a resume led to.
enum Flow {
    Yield(i32),
    Return(R),
    Panic(String),
}

impl Flow {
    fn obs(self) -> Obs {
        match self {
            Flow::Yield(y) => Obs::Step(Step::Yielded(y)),
            Flow::Return(r) => Obs::Step(Step::Returned(r)),
            Flow::Panic(m) => Obs::Panicked(m),
        }
    }
}

struct Model {
    pc: Pc,
    log: Vec<String>,
    /// Which branches of the bodies the model went through (for the
    /// coverage check).
    branches: BTreeSet<&'static str>,
}

impl Model {
    fn new() -> Self {
        Model { pc: Pc::Created, log: Vec::new(), branches: BTreeSet::new() }
    }

    fn note(&mut self, entry: impl Into<String>) {
        self.log.push(entry.into());
    }

    fn hit(&mut self, branch: &'static str) {
        self.branches.insert(branch);
    }

    fn state(&self) -> Option<State> {
        match self.pc {
            Pc::Created => Some(State::Created),
            Pc::Closed => Some(State::Closed),
            Pc::Dropped => None,
            _ => Some(State::Suspended),
        }
    }

    fn is_suspended(&self) -> bool {
        self.state() == Some(State::Suspended)
    }

    /// The outer body's frame goes away: its destructors run, locals in
    /// reverse order of declaration.
    fn outer_exits(&mut self) {
        self.note("outer-fin");
        self.note("outer-env");
        self.pc = Pc::Closed;
    }

    fn inner_exits(&mut self) {
        self.note("inner-fin");
        self.note("inner-env");
    }

    fn apply(&mut self, op: Op) -> Obs {
        match (op, self.pc) {
            (_, Pc::Dropped) => Obs::Gone,
            (Op::Resume, Pc::Created) => {
                self.hit("start");
                self.note("outer:start");
                self.pc = Pc::OuterFirst;
                Obs::Step(Step::Yielded(1))
            }
            (Op::Resume, Pc::Closed) => Obs::ResumeErr(ResumeError::Closed),
            (Op::Resume, _) => Obs::ResumeErr(ResumeError::Started),
            (Op::Send(v), Pc::Created) => {
                self.hit("send to created");
                Obs::SendRejected("not started", Ok(v))
            }
            (Op::Send(v), Pc::Closed) => Obs::SendRejected("closed", Ok(v)),
            (Op::Send(v), _) => self.resume_with(Ok(v)).obs(),
            (Op::Throw(e), Pc::Created) => {
                self.hit("throw into created");
                self.note("outer-env");
                self.pc = Pc::Closed;
                Obs::Step(Step::Returned(Err(e)))
            }
            (Op::Throw(e), Pc::Closed) => Obs::ThrowRejected("closed", e),
            (Op::Throw(e), _) => self.resume_with(Err(e)).obs(),
            (Op::Close, Pc::Created) => {
                self.hit("close created");
                self.note("outer-env");
                self.pc = Pc::Closed;
                Obs::Close(Ok(()))
            }
            (Op::Close, Pc::Closed) => Obs::Close(Ok(())),
            (Op::Close, _) => Obs::Close(self.close_suspended()),
            (Op::Drop, _) => {
                self.drop_generator();
                Obs::Dropped
            }
        }
    }

    fn drop_generator(&mut self) {
        match self.pc {
            Pc::Created => {
                self.hit("drop created");
                self.note("outer-env");
            }
            Pc::Closed | Pc::Dropped => {}
            _ => {
                self.hit("drop suspended");
                // Drop closes, and closes again a body that ignored
                // GeneratorExit (here at most once).
                while self.is_suspended() {
                    if self.close_suspended().is_err() && self.is_suspended() {
                        self.hit("drop closes again");
                    }
                }
            }
        }
        self.pc = Pc::Dropped;
    }

    /// `send`/`throw` on a suspended generator.
    fn resume_with(&mut self, input: S) -> Flow {
        match self.pc {
            Pc::OuterFirst => {
                let total = match input {
                    Ok(v) => v,
                    Err(Exc::Soft(n)) => {
                        self.hit("outer first: soft");
                        self.note(format!("outer:soft{n}"));
                        -n
                    }
                    Err(e) => {
                        self.hit("outer first: propagate");
                        self.outer_exits();
                        return Flow::Return(Err(e));
                    }
                };
                self.note("inner:start");
                self.pc = Pc::Inner { i: 0, acc: 0, total };
                Flow::Yield(10)
            }
            Pc::Inner { i, mut acc, total } => {
                match input {
                    Ok(v) => acc += v,
                    Err(Exc::Soft(n)) => {
                        self.hit("inner: soft");
                        self.note(format!("inner:soft{n}"));
                        acc -= n;
                    }
                    Err(Exc::Stop(n)) => {
                        self.hit("inner: stop");
                        self.note(format!("inner:stop{n}"));
                        self.inner_exits();
                        return self.after_inner(Ok(acc + n), total);
                    }
                    Err(e) => {
                        self.inner_exits();
                        return self.after_inner(Err(e), total);
                    }
                }
                if i < 2 {
                    self.pc = Pc::Inner { i: i + 1, acc, total };
                    Flow::Yield(10 * (i + 2) + acc)
                } else {
                    self.hit("inner: end");
                    self.note(format!("inner:end{acc}"));
                    self.inner_exits();
                    self.after_inner(Ok(acc), total)
                }
            }
            Pc::OuterAfter { k, mut total } => {
                match input {
                    Ok(v) => total += v,
                    Err(Exc::Soft(n)) => {
                        self.hit("outer after: soft");
                        self.note(format!("outer:soft{n}"));
                    }
                    Err(Exc::Hard(3)) => {
                        self.hit("outer after: panic");
                        self.outer_exits();
                        return Flow::Panic(format!("fatal {total}"));
                    }
                    Err(e) => {
                        self.hit("outer after: propagate");
                        self.outer_exits();
                        return Flow::Return(Err(e));
                    }
                }
                if k == 0 {
                    self.pc = Pc::OuterAfter { k: 1, total };
                    Flow::Yield(1000 + total + 1)
                } else {
                    self.hit("outer: end");
                    self.note(format!("outer:end{total}"));
                    self.outer_exits();
                    Flow::Return(Ok(total))
                }
            }
            Pc::OuterIgnoring { total } => {
                self.hit("resumed after ignoring exit");
                self.note("outer:after-exit");
                self.outer_exits();
                Flow::Return(input.map(|v| total + v))
            }
            Pc::Created | Pc::Closed | Pc::Dropped => unreachable!("not suspended"),
        }
    }

    /// The outer body resumes after `yield_from` with the inner result.
    fn after_inner(&mut self, result: R, mut total: i32) -> Flow {
        match result {
            Ok(r) => {
                self.note(format!("outer:got{r}"));
                total += r;
            }
            Err(Exc::Hard(n)) if is_even(n) => {
                self.hit("outer catches inner's hard error");
                self.note(format!("outer:caught-hard{n}"));
                total -= n;
            }
            Err(e) => {
                self.hit("inner's error propagates out of outer");
                self.outer_exits();
                return Flow::Return(Err(e));
            }
        }
        self.pc = Pc::OuterAfter { k: 0, total };
        Flow::Yield(1000 + total)
    }

    /// `close` on a suspended generator.
    fn close_suspended(&mut self) -> Result<(), CloseError> {
        match self.pc {
            Pc::OuterFirst | Pc::OuterAfter { k: 0, .. } | Pc::OuterIgnoring { .. } => {
                self.hit("close unwinds outer");
                self.outer_exits();
                Ok(())
            }
            Pc::Inner { i, acc, .. } => {
                // Innermost first: the inner generator is closed, then the
                // outer body unwinds from its yield_from.
                if i == 2 {
                    self.note("inner:exit");
                    if !is_even(acc) {
                        // The inner one ignores GeneratorExit: the outer body
                        // unwinds with that error, dropping (and so closing
                        // again) the inner generator on the way.
                        self.hit("close: inner ignores exit");
                        self.inner_exits();
                        self.outer_exits();
                        return Err(CloseError::IgnoredExit);
                    }
                    self.hit("close: inner catches exit and returns");
                } else {
                    self.hit("close unwinds inner");
                }
                self.inner_exits();
                self.outer_exits();
                Ok(())
            }
            Pc::OuterAfter { total, .. } => {
                self.note("outer:exit");
                if is_even(total) {
                    self.hit("close: outer catches exit and returns");
                    self.outer_exits();
                    Ok(())
                } else {
                    self.hit("close: outer ignores exit");
                    self.pc = Pc::OuterIgnoring { total };
                    Err(CloseError::IgnoredExit)
                }
            }
            Pc::Created | Pc::Closed | Pc::Dropped => unreachable!("not suspended"),
        }
    }
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

/// Runs `ops` on both, checking agreement after every step; returns the
/// branches the model went through.
fn check(ops: &[Op]) -> Result<BTreeSet<&'static str>, TestCaseError> {
    let log: Log = Rc::default();
    let mut real = Real { generator: Some(make_outer(&log)) };
    let mut model = Model::new();
    for (n, &op) in ops.iter().enumerate() {
        let got = real.apply(op);
        let want = model.apply(op);
        prop_assert_eq!(&got, &want, "step {} ({:?}) returned differently", n, op);
        prop_assert_eq!(real.state(), model.state(), "state after step {} ({:?})", n, op);
        prop_assert_eq!(&*log.borrow(), &model.log, "trace after step {} ({:?})", n, op);
        // Unwinding for close, caught or not, leaves no panic in flight.
        prop_assert!(!std::thread::panicking(), "still panicking after step {} ({:?})", n, op);
    }
    real.apply(Op::Drop);
    model.apply(Op::Drop);
    let trace = log.borrow().clone();
    prop_assert_eq!(&trace, &model.log, "trace after the final drop");

    // Independently of the model: every sentinel that was made was dropped
    // exactly once.
    let count = |name: &str| trace.iter().filter(|e| *e == name).count();
    let outer_started = count("outer:start") == 1;
    let inner_started = count("inner:start") == 1;
    prop_assert_eq!(count("outer-env"), 1);
    prop_assert_eq!(count("outer-fin"), usize::from(outer_started));
    prop_assert_eq!(count("inner-env"), usize::from(inner_started));
    prop_assert_eq!(count("inner-fin"), usize::from(inner_started));
    Ok(model.branches)
}

fn exc() -> impl Strategy<Value = Exc> {
    prop_oneof![
        3 => (0..4i32).prop_map(Exc::Soft),
        1 => (0..4i32).prop_map(Exc::Stop),
        1 => (0..4i32).prop_map(Exc::Hard),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Resume),
        8 => (-3..5i32).prop_map(Op::Send),
        4 => exc().prop_map(Op::Throw),
        2 => Just(Op::Close),
        1 => Just(Op::Drop),
    ]
}

/// An operation that neither closes nor drops.
fn running_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Resume),
        4 => (-3..5i32).prop_map(Op::Send),
        2 => exc().prop_map(Op::Throw),
    ]
}

/// Mostly a start, then a prefix that neither closes nor drops (so the deep
/// states are reached often), then anything.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    (
        prop::bool::weighted(0.875),
        prop::collection::vec(running_op(), 0..12),
        prop::collection::vec(op(), 0..24),
    )
        .prop_map(|(start, prefix, rest)| {
            let first = if start { Some(Op::Resume) } else { None };
            first.into_iter().chain(prefix).chain(rest).collect()
        })
}

fn config() -> Config {
    // No regression files: this test leaves nothing behind in the tree.
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generator_agrees_with_reference_model(ops in ops()) {
        check(&ops)?;
    }
}

/// The same property on a fixed seed and more cases, checking that the
/// generated sequences reach every branch of the bodies several times, so
/// the random test above is not vacuous.
#[test]
fn model_test_reaches_every_branch() {
    let all = [
        "start",
        "send to created",
        "throw into created",
        "close created",
        "drop created",
        "drop suspended",
        "drop closes again",
        "outer first: soft",
        "outer first: propagate",
        "inner: soft",
        "inner: stop",
        "inner: end",
        "outer catches inner's hard error",
        "inner's error propagates out of outer",
        "outer after: soft",
        "outer after: panic",
        "outer after: propagate",
        "outer: end",
        "resumed after ignoring exit",
        "close unwinds outer",
        "close unwinds inner",
        "close: inner ignores exit",
        "close: inner catches exit and returns",
        "close: outer catches exit and returns",
        "close: outer ignores exit",
    ];
    let hits = RefCell::new(BTreeMap::<&'static str, usize>::new());
    let config = Config { cases: 1024, ..config() };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    TestRunner::new_with_rng(config, rng)
        .run(&ops(), |ops| {
            for branch in check(&ops)? {
                *hits.borrow_mut().entry(branch).or_default() += 1;
            }
            Ok(())
        })
        .unwrap();
    let hits = hits.into_inner();
    let rare: Vec<_> = all.iter().filter(|b| hits.get(*b).copied().unwrap_or(0) < 3).collect();
    assert!(rare.is_empty(), "branches reached fewer than 3 times: {rare:?}; hits: {hits:#?}");
    assert!(hits.keys().all(|b| all.contains(b)), "unlisted branch: {hits:?}");
}
