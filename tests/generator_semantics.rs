//! Section A of `docs/semantics.md` (Python's generator protocol, PEP
//! 255/342/380, CPython 3.11) ported to tests at gencoro's public API.
//!
//! Every test that has a Python counterpart names its program in the comment
//! above it: `tests/cpython/generator_semantics/<test name>.py`, which builds
//! a trace and prints it. The Rust test builds the same trace and compares it,
//! rendered as Python's `repr` of a list of strings, with what the program
//! prints; `tests/cpython_programs.rs` runs every program with CPython 3.11
//! and checks that it prints exactly the string the test asserts.
//!
//! Python's exceptions map onto Rust as the crate documents: `StopIteration(v)`
//! is `Step::Returned(v)` (or a `Closed` error once the value was delivered),
//! an exception thrown in is `Err(e)` at the yield, an exception that escapes
//! the body is a panic (or an `Err` that the body returns with `?`), `finally:`
//! is a destructor, and `except GeneratorExit:` is `catch_unwind` with a
//! `GeneratorExit` payload.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::{Rc, Weak};

use gencoro::{
    CloseError, Generator, GeneratorExit, ResumeError, SendError, State, Step, ThrowError,
    YieldFromError, Yielder,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A shared trace, like the `trace = []` list of the Python programs.
type Log = Rc<RefCell<Vec<String>>>;

fn new_log() -> Log {
    Rc::default()
}

fn push(log: &Log, entry: impl Into<String>) {
    log.borrow_mut().push(entry.into());
}

/// Python's `repr` of a `str` (enough of it for these traces).
fn py_str_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// Python's `repr` of the trace, a list of strings: what `print(trace)` shows.
fn py_list(log: &Log) -> String {
    let items: Vec<String> = log.borrow().iter().map(|s| py_str_repr(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Asserts that the trace is exactly what the Python program printed.
#[track_caller]
fn assert_trace(log: &Log, python_prints: &str) {
    assert_eq!(py_list(log), python_prints);
}

/// `inspect.getgeneratorstate`.
fn py_state(state: State) -> &'static str {
    match state {
        State::Created => "GEN_CREATED",
        State::Running => "GEN_RUNNING",
        State::Suspended => "GEN_SUSPENDED",
        State::Closed => "GEN_CLOSED",
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

fn py_opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "None".to_string(),
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if payload.is::<GeneratorExit>() {
        "GeneratorExit".to_string()
    } else {
        "<unknown payload>".to_string()
    }
}

/// Runs `f`, which must panic, and returns the panic's message.
#[track_caller]
fn expect_panic<T>(f: impl FnOnce() -> T) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => panic_text(&*payload),
    }
}

/// A drop sentinel: pushes its name to the trace when dropped. Python's
/// `finally: trace.append(name)`.
struct Sentinel {
    log: Log,
    name: String,
}

fn sentinel(log: &Log, name: &str) -> Sentinel {
    Sentinel { log: log.clone(), name: name.to_string() }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        push(&self.log, self.name.clone());
    }
}

/// Runs a closure when dropped: a `finally:` block with code in it.
struct Finally<F: FnMut()>(F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// `except GeneratorExit:` around one yield. `Err(())` means the generator is
/// being closed and the yield unwound with `GeneratorExit`; any other panic
/// keeps propagating.
fn yield_catching_exit<Y, S>(co: &Yielder<Y, S>, value: Y) -> Result<S, ()> {
    match catch_unwind(AssertUnwindSafe(|| co.yield_(value))) {
        Ok(sent) => Ok(sent),
        Err(payload) if payload.is::<GeneratorExit>() => Err(()),
        Err(payload) => resume_unwind(payload),
    }
}

/// Runs `scenario` in a child process (this test binary again, with only
/// `test_name` selected), so that if the scenario aborts the process only
/// this test fails. Returns the trace the scenario built, as Python prints
/// it, or how the child process failed.
fn run_in_child_process(test_name: &str, scenario: fn(&Log)) -> Result<String, String> {
    const CHILD: &str = "GENCORO_SEMANTICS_CHILD";
    if std::env::var(CHILD).as_deref() == Ok(test_name) {
        let log = new_log();
        scenario(&log);
        println!("\nTRACE {}", py_list(&log));
        std::process::exit(0);
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD, test_name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|line| line.strip_prefix("TRACE ")) {
        Some(trace) if out.status.success() => Ok(trace.to_string()),
        _ => Err(format!(
            "the child process failed ({}); stdout: {}; stderr: {}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A destructor that yields: Python's `finally:` block containing a `yield`.
struct FinallyYields<'a> {
    co: &'a Yielder<i32>,
    log: Log,
}

impl Drop for FinallyYields<'_> {
    fn drop(&mut self) {
        push(&self.log, "finally start");
        self.co.yield_(2);
        push(&self.log, "finally end");
    }
}

fn finally_yields_generator(log: &Log) -> Generator<i32> {
    let log = log.clone();
    Generator::new(move |co: &Yielder<i32>| {
        let _finally = FinallyYields { co, log };
        co.yield_(1);
    })
}

/// A Python exception class thrown into generators in these tests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exc {
    ValueError(String),
    KeyError(String),
}

impl std::fmt::Display for Exc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exc::ValueError(m) | Exc::KeyError(m) => f.write_str(m),
        }
    }
}

fn value_error(m: &str) -> Exc {
    Exc::ValueError(m.to_string())
}

// ---------------------------------------------------------------------------
// A.1 Creation and states
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a1_1_new_generator_is_created_and_runs_no_body_code.py
#[test]
fn a1_1_new_generator_is_created_and_runs_no_body_code() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        push(&l, "body");
        co.yield_(1);
    });
    push(&log, py_state(g.state()));
    assert_trace(&log, "['GEN_CREATED']");
    assert!(!g.is_running() && !g.is_suspended() && !g.is_closed());
}

// Python: tests/cpython/generator_semantics/a1_2_four_states_and_running_is_seen_from_inside_the_body.py
#[test]
fn a1_2_four_states_and_running_is_seen_from_inside_the_body() {
    fn report(log: &Log, where_: &str, me: &Generator<i32>) {
        push(
            log,
            format!(
                "{where_} {} running={} suspended={}",
                py_state(me.state()),
                py_bool(me.is_running()),
                py_bool(me.is_suspended())
            ),
        );
        assert_eq!(me.is_closed(), me.state() == State::Closed);
    }
    let log = new_log();
    let me: Rc<Generator<i32>> = Rc::new_cyclic(|weak: &Weak<Generator<i32>>| {
        let (weak, l) = (weak.clone(), log.clone());
        Generator::new(move |co| {
            report(&l, "inside", &weak.upgrade().unwrap());
            co.yield_(1);
            report(&l, "inside", &weak.upgrade().unwrap());
        })
    });
    report(&log, "outside", &me);
    assert_eq!(me.resume(), Ok(Step::Yielded(1)));
    report(&log, "outside", &me);
    if me.resume() == Ok(Step::Returned(())) {
        push(&log, "stop");
    }
    report(&log, "outside", &me);
    assert_trace(
        &log,
        "['outside GEN_CREATED running=False suspended=False', 'inside GEN_RUNNING running=True suspended=False', 'outside GEN_SUSPENDED running=False suspended=True', 'inside GEN_RUNNING running=True suspended=False', 'stop', 'outside GEN_CLOSED running=False suspended=False']",
    );
}

// Python: tests/cpython/generator_semantics/a1_3_operations_on_a_closed_generator.py
#[test]
fn a1_3_operations_on_a_closed_generator() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<i32, Exc>>| -> Result<i32, Exc> {
        if co.yield_(1).is_err() {
            push(&l, "body caught");
        }
        Ok(5)
    });
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    if let Ok(Step::Returned(Ok(v))) = g.send(Ok(0)) {
        push(&log, format!("returned {v}"));
    }
    // Python's `next` on a started generator is `send(None)`; here `start`
    // (the first resume) reports `Closed` like any resume of a closed one.
    if let Err(ResumeError::Closed) = g.start() {
        push(&log, "next: StopIteration None");
    }
    match g.send(Ok(7)) {
        Err(e @ SendError::Closed(_)) => {
            assert_eq!(e.into_inner(), Ok(7), "the value is handed back");
            push(&log, "send: StopIteration None");
        }
        other => panic!("send to closed: {other:?}"),
    }
    match g.throw(value_error("x")) {
        Err(ThrowError::Closed(e)) => push(&log, format!("throw: re-raised {e}")),
        other => panic!("throw into closed: {other:?}"),
    }
    if g.close() == Ok(()) {
        push(&log, "close: None");
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['returned 5', 'next: StopIteration None', 'send: StopIteration None', 'throw: re-raised x', 'close: None', 'GEN_CLOSED']",
    );
}

#[test]
fn a1_3_start_on_a_started_generator_is_rejected_and_changes_nothing() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, i32>| {
        let x = co.yield_(1);
        push(&l, format!("got {x}"));
        x
    });
    assert_eq!(g.start(), Ok(Step::Yielded(1)));
    assert_eq!(g.start(), Err(ResumeError::Started));
    assert_eq!(g.state(), State::Suspended);
    assert_eq!(g.send(9), Ok(Step::Returned(9)));
    assert_eq!(g.start(), Err(ResumeError::Closed));
    assert_eq!(*log.borrow(), ["got 9"]);
}

// ---------------------------------------------------------------------------
// A.2 next() vs send()
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a2_1_next_is_send_none.py
#[test]
fn a2_1_next_is_send_none() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Option<i32>>| {
        let mut n = 0;
        loop {
            let x = co.yield_(n);
            push(&l, format!("got {}", py_opt(&x)));
            n += 1;
        }
    });
    let show = |step: Step<i32, ()>| format!("yielded {}", step.yielded().unwrap());
    push(&log, show(g.resume().unwrap()));
    push(&log, show(g.resume().unwrap()));
    push(&log, show(g.send(None).unwrap()));
    push(&log, show(g.send(Some(3)).unwrap()));
    assert_trace(
        &log,
        "['yielded 0', 'got None', 'yielded 1', 'got None', 'yielded 2', 'got 3', 'yielded 3']",
    );
}

// Python: tests/cpython/generator_semantics/a2_2_send_to_created_is_rejected_value_handed_back_still_startable.py
#[test]
fn a2_2_send_to_created_is_rejected_value_handed_back_still_startable() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, String>| {
        push(&l, "start");
        let x = co.yield_(1);
        push(&l, format!("got {x}"));
    });
    match g.send("v".to_string()) {
        Err(SendError::NotStarted(v)) => {
            assert_eq!(v, "v", "the value is handed back");
            push(&log, "TypeError");
        }
        other => panic!("send to created: {other:?}"),
    }
    push(&log, py_state(g.state()));
    push(&log, format!("yielded {}", g.start().unwrap().yielded().unwrap()));
    if g.send("w".to_string()) == Ok(Step::Returned(())) {
        push(&log, "stop");
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['TypeError', 'GEN_CREATED', 'start', 'yielded 1', 'got w', 'stop', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a2_3_bare_yield_and_yield_expressions.py
#[test]
fn a2_3_bare_yield_and_yield_expressions() {
    let log = new_log();
    let g = Generator::new(|co: &Yielder<Option<i32>, i32>| {
        co.yield_(None);
        let mut count = 0;
        loop {
            count += co.yield_(Some(count));
        }
    });
    let show =
        |step: Step<Option<i32>, ()>| format!("yielded {}", py_opt(&step.yielded().unwrap()));
    push(&log, show(g.start().unwrap()));
    push(&log, show(g.send(0).unwrap()));
    push(&log, show(g.send(2).unwrap()));
    push(&log, show(g.send(5).unwrap()));
    assert_trace(&log, "['yielded None', 'yielded 0', 'yielded 2', 'yielded 7']");
}

// ---------------------------------------------------------------------------
// A.3 Return values
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a3_1_return_value_comes_from_next_send_or_throw.py
#[test]
fn a3_1_return_value_comes_from_next_send_or_throw() {
    type G = Generator<(), Result<Option<&'static str>, Exc>, Result<Option<i32>, Exc>>;
    let log = new_log();
    let g = |r: Option<i32>| -> G {
        let l = log.clone();
        Generator::new(move |co| {
            push(&l, "g starting");
            match co.yield_(()) {
                Ok(Some(x)) => push(&l, format!("g received {x}")),
                Ok(None) => {}
                Err(e) => push(&l, format!("g caught {e}")),
            }
            push(&l, format!("g returning {}", py_opt(&r)));
            Ok(r)
        })
    };
    let f = |r: Option<i32>, how: &str| {
        let gi = g(r);
        gi.start().unwrap();
        let step = match how {
            "next" => {
                push(&log, "f resuming g");
                gi.send(Ok(None)).unwrap()
            }
            "send" => {
                push(&log, "f sending spam to g");
                gi.send(Ok(Some("spam"))).unwrap()
            }
            _ => {
                push(&log, "f throwing into g");
                gi.throw(value_error("boom")).unwrap()
            }
        };
        match step {
            Step::Returned(Ok(v)) => push(&log, format!("f caught StopIteration {}", py_opt(&v))),
            _ => push(&log, "f SHOULD NOT BE HERE"),
        }
    };
    f(None, "next");
    f(Some(1), "next");
    f(Some(2), "send");
    f(Some(3), "throw");
    assert_trace(
        &log,
        "['g starting', 'f resuming g', 'g returning None', 'f caught StopIteration None', 'g starting', 'f resuming g', 'g returning 1', 'f caught StopIteration 1', 'g starting', 'f sending spam to g', 'g received spam', 'g returning 2', 'f caught StopIteration 2', 'g starting', 'f throwing into g', 'g caught boom', 'g returning 3', 'f caught StopIteration 3']",
    );
}

// Python: tests/cpython/generator_semantics/a3_2_return_value_is_delivered_exactly_once.py
#[test]
fn a3_2_return_value_is_delivered_exactly_once() {
    let log = new_log();
    let g = Generator::new(|co: &Yielder<i32, Option<i32>>| {
        co.yield_(1);
        String::from("done")
    });
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    push(&log, format!("returned {}", g.resume().unwrap().returned().unwrap()));
    for _ in 0..2 {
        if g.resume() == Err(ResumeError::Closed) {
            push(&log, "StopIteration None");
        }
    }
    if let Err(SendError::Closed(None)) = g.send(None) {
        push(&log, "StopIteration None");
    }
    assert_trace(
        &log,
        "['yielded 1', 'returned done', 'StopIteration None', 'StopIteration None', 'StopIteration None']",
    );
}

// Python: tests/cpython/generator_semantics/a3_3_panic_in_body_propagates_to_resumer_closes_and_runs_destructors.py
#[test]
fn a3_3_panic_in_body_propagates_to_resumer_closes_and_runs_destructors() {
    fn helper(log: &Log) {
        let _f = sentinel(log, "inner finally");
        panic!("boom");
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        push(&l, "enter");
        co.yield_(1);
        helper(&l);
        co.yield_(2);
    });
    g.resume().unwrap();
    let msg = expect_panic(|| g.resume());
    push(&log, format!("caught {msg}"));
    push(&log, py_state(g.state()));
    if g.resume() == Err(ResumeError::Closed) {
        push(&log, "StopIteration");
    }
    drop(g);
    assert_trace(
        &log,
        "['enter', 'inner finally', 'finally', 'caught boom', 'GEN_CLOSED', 'StopIteration']",
    );
}

/// A3.3 on the first resume: the panic happens before any yield.
#[test]
fn a3_3_panic_on_first_resume_closes_and_drops_environment_once() {
    let log = new_log();
    let env = sentinel(&log, "env dropped");
    let l = log.clone();
    let g = Generator::new(move |_co: &Yielder<i32>| {
        let _env = env;
        push(&l, "enter");
        panic!("early");
    });
    assert_eq!(expect_panic(|| g.start()), "early");
    assert!(g.is_closed());
    drop(g);
    assert_eq!(*log.borrow(), ["enter", "env dropped"]);
}

/// A3.4 (PEP 479) has no counterpart: in Python, `next(inner)` on an
/// exhausted iterator inside a generator body raises `StopIteration`, which
/// becomes `RuntimeError`. Here a finished inner generator is a plain value
/// (`ResumeError::Closed`) and cannot end the outer generator by accident.
#[test]
fn a3_4_finished_inner_generator_is_a_value_not_an_exit() {
    let g = Generator::new(|co: &Yielder<&'static str>| {
        let inner: Generator<i32> = Generator::new(|_| {});
        assert_eq!(inner.resume(), Ok(Step::Returned(())));
        let again = inner.resume();
        co.yield_(if again == Err(ResumeError::Closed) { "inner closed" } else { "?" });
        "outer returns normally"
    });
    assert_eq!(g.resume(), Ok(Step::Yielded("inner closed")));
    assert_eq!(g.resume(), Ok(Step::Returned("outer returns normally")));
}

// Python: tests/cpython/generator_semantics/a3_5_a_destructor_may_yield_while_the_body_returns.py
#[test]
fn a3_5_a_destructor_may_yield_while_the_body_returns() {
    struct YieldOnDrop<'a>(&'a Yielder<i32>);
    impl Drop for YieldOnDrop<'_> {
        fn drop(&mut self) {
            self.0.yield_(1);
        }
    }
    let log = new_log();
    let g = Generator::new(|co: &Yielder<i32>| {
        let _finally = YieldOnDrop(co);
        "r"
    });
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    push(&log, format!("returned {}", g.resume().unwrap().returned().unwrap()));
    assert_trace(&log, "['yielded 1', 'returned r']");
}

// ---------------------------------------------------------------------------
// A.4 throw()
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a4_1_throw_handled_then_yields_or_returns.py
#[test]
fn a4_1_throw_handled_then_yields_or_returns() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<(), Exc>>| -> Result<&str, Exc> {
        let _f = sentinel(&l, "finally");
        push(&l, "enter");
        if let Err(e) = co.yield_(1) {
            push(&l, format!("handled {e}"));
        }
        if let Err(e) = co.yield_(2) {
            push(&l, format!("handled {e}, returning"));
            return Ok("ret");
        }
        co.yield_(3)?;
        Ok("end")
    });
    push(&log, format!("yielded {}", g.start().unwrap().yielded().unwrap()));
    push(&log, format!("yielded {}", g.throw(value_error("a")).unwrap().yielded().unwrap()));
    if let Step::Returned(Ok(v)) = g.throw(value_error("b")).unwrap() {
        push(&log, format!("returned {v}"));
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['enter', 'yielded 1', 'handled a', 'yielded 2', 'handled b, returning', 'finally', 'returned ret', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a4_1_unhandled_throw_propagates_with_question_mark_and_closes.py
#[test]
fn a4_1_unhandled_throw_propagates_with_question_mark_and_closes() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<(), Exc>>| -> Result<(), Exc> {
        let _f = sentinel(&l, "finally");
        push(&l, "enter");
        match co.yield_(1) {
            Err(Exc::ValueError(e)) => push(&l, format!("handled {e}")),
            other => other?,
        }
        co.yield_(2)?;
        Ok(())
    });
    push(&log, format!("yielded {}", g.start().unwrap().yielded().unwrap()));
    if let Step::Returned(Err(Exc::KeyError(k))) = g.throw(Exc::KeyError("k".into())).unwrap() {
        push(&log, format!("propagated KeyError {k}"));
    }
    push(&log, py_state(g.state()));
    if g.start() == Err(ResumeError::Closed) {
        push(&log, "StopIteration");
    }
    assert_trace(
        &log,
        "['enter', 'yielded 1', 'finally', 'propagated KeyError k', 'GEN_CLOSED', 'StopIteration']",
    );
}

// Python: tests/cpython/generator_semantics/a4_2_throw_into_created_runs_no_body_code_and_closes.py
#[test]
fn a4_2_throw_into_created_runs_no_body_code_and_closes() {
    let log = new_log();
    let env_drops = Rc::new(Cell::new(0));
    let env = Finally({
        let d = env_drops.clone();
        move || d.set(d.get() + 1)
    });
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<(), Exc>>| -> Result<(), Exc> {
        let _env = &env;
        let _f = sentinel(&l, "finally");
        push(&l, "body");
        if co.yield_(1).is_err() {
            push(&l, "caught in body");
        }
        Ok(())
    });
    match g.throw(value_error("early")) {
        Ok(Step::Returned(Err(e))) => push(&log, format!("raised {e}")),
        other => panic!("throw into created: {other:?}"),
    }
    assert_eq!(env_drops.get(), 1, "the closure environment is dropped by the throw");
    push(&log, py_state(g.state()));
    if g.start() == Err(ResumeError::Closed) {
        push(&log, "StopIteration");
    }
    drop(g);
    assert_eq!(env_drops.get(), 1, "and only once");
    assert_trace(&log, "['raised early', 'GEN_CLOSED', 'StopIteration']");
}

// Python: tests/cpython/generator_semantics/a4_3_throw_into_closed_hands_the_error_back_and_runs_nothing.py
#[test]
fn a4_3_throw_into_closed_hands_the_error_back_and_runs_nothing() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<(), Exc>>| -> Result<(), Exc> {
        let _f = sentinel(&l, "finally");
        if co.yield_(1).is_err() {
            push(&l, "body caught");
        }
        Ok(())
    });
    g.start().unwrap();
    g.close().unwrap();
    match g.throw(value_error("late")) {
        Err(ThrowError::Closed(e)) => push(&log, format!("raised {e}")),
        other => panic!("throw into closed: {other:?}"),
    }
    drop(g);
    assert_trace(&log, "['finally', 'raised late']");
}

// ---------------------------------------------------------------------------
// A.5 close()
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a5_2_close_created_runs_nothing_and_drops_the_environment_once.py
#[test]
fn a5_2_close_created_runs_nothing_and_drops_the_environment_once() {
    let log = new_log();
    let env = sentinel(&log, "drop env");
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _env = env;
        let _f = sentinel(&l, "finally");
        push(&l, "body");
        co.yield_(1);
    });
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    push(&log, py_state(g.state()));
    if g.close() == Ok(()) {
        push(&log, "close again returned None");
    }
    drop(g);
    push(&log, "after del");
    assert_trace(
        &log,
        "['drop env', 'close returned None', 'GEN_CLOSED', 'close again returned None', 'after del']",
    );
}

// Python: tests/cpython/generator_semantics/a5_2_drop_created_runs_nothing_and_drops_the_environment_once.py
#[test]
fn a5_2_drop_created_runs_nothing_and_drops_the_environment_once() {
    let log = new_log();
    let env = sentinel(&log, "drop env");
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _env = env;
        let _f = sentinel(&l, "finally");
        push(&l, "body");
        co.yield_(1);
    });
    drop(g);
    push(&log, "after del");
    assert_trace(&log, "['drop env', 'after del']");
}

// Python: tests/cpython/generator_semantics/a5_4a_close_suspended_unwinds_and_runs_every_destructor_once.py
#[test]
fn a5_4a_close_suspended_unwinds_and_runs_every_destructor_once() {
    // In Rust the helper is a plain function: the yield is two frames deep.
    fn helper(co: &Yielder<i32>, log: &Log) {
        let _f = sentinel(log, "leave helper");
        co.yield_(1);
        push(log, "not reached");
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        push(&l, "enter");
        helper(co, &l);
    });
    g.resume().unwrap();
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    push(&log, py_state(g.state()));
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    drop(g);
    assert_trace(
        &log,
        "['enter', 'leave helper', 'finally', 'close returned None', 'GEN_CLOSED', 'close returned None']",
    );
}

// Python: tests/cpython/generator_semantics/a5_4a_body_catching_generator_exit_and_returning_closes_ok.py
#[test]
fn a5_4a_body_catching_generator_exit_and_returning_closes_ok() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            push(&l, "caught GeneratorExit");
            return "ignored value";
        }
        "normal"
    });
    g.resume().unwrap();
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    push(&log, py_state(g.state()));
    assert_trace(&log, "['caught GeneratorExit', 'finally', 'close returned None', 'GEN_CLOSED']");
}

// Python: tests/cpython/generator_semantics/a5_4b_body_yielding_after_generator_exit_is_ignored_exit_and_stays_suspended.py
#[test]
fn a5_4b_body_yielding_after_generator_exit_is_ignored_exit_and_stays_suspended() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            push(&l, "caught");
        }
        co.yield_(2);
        push(&l, "not reached");
    });
    g.resume().unwrap();
    match g.close() {
        Err(e @ CloseError::IgnoredExit) => push(&log, format!("RuntimeError: {e}")),
        other => panic!("close of a body that ignores GeneratorExit: {other:?}"),
    }
    push(&log, py_state(g.state()));
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    push(&log, py_state(g.state()));
    drop(g);
    assert_trace(
        &log,
        "['caught', 'RuntimeError: generator ignored GeneratorExit', 'GEN_SUSPENDED', 'finally', 'close returned None', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a5_4b_after_ignored_exit_the_generator_can_be_resumed_from_the_new_yield.py
#[test]
fn a5_4b_after_ignored_exit_the_generator_can_be_resumed_from_the_new_yield() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            push(&l, "caught");
        }
        co.yield_(2);
    });
    g.resume().unwrap();
    if g.close() == Err(CloseError::IgnoredExit) {
        push(&log, "RuntimeError");
    }
    // Resuming continues after the yield that ignored GeneratorExit.
    if g.resume() == Ok(Step::Returned(())) {
        push(&log, "StopIteration");
    }
    assert_trace(&log, "['caught', 'RuntimeError', 'finally', 'StopIteration']");
}

// Python: tests/cpython/generator_semantics/a5_4c_other_panic_during_close_propagates_out_of_close_and_closes.py
#[test]
fn a5_4c_other_panic_during_close_propagates_out_of_close_and_closes() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            panic!("boom");
        }
    });
    g.resume().unwrap();
    let msg = expect_panic(|| g.close());
    push(&log, format!("close raised ValueError: {msg}"));
    push(&log, py_state(g.state()));
    if g.resume() == Err(ResumeError::Closed) {
        push(&log, "StopIteration");
    }
    drop(g);
    assert_trace(
        &log,
        "['finally', 'close raised ValueError: boom', 'GEN_CLOSED', 'StopIteration']",
    );
}

// Python: tests/cpython/generator_semantics/a5_5_close_is_not_delivered_as_a_thrown_error.py
#[test]
fn a5_5_close_is_not_delivered_as_a_thrown_error() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<(), Exc>>| -> Result<(), Exc> {
        let _f = sentinel(&l, "finally");
        if co.yield_(1).is_err() {
            push(&l, "except Exception caught it");
        }
        Ok(())
    });
    g.start().unwrap();
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    assert_trace(&log, "['finally', 'close returned None']");
}

// Python: tests/cpython/generator_semantics/a5_6_dropping_a_suspended_generator_closes_it_destructors_once.py
#[test]
fn a5_6_dropping_a_suspended_generator_closes_it_destructors_once() {
    fn helper(co: &Yielder<i32>, log: &Log) {
        let _f = sentinel(log, "leave helper");
        co.yield_(1);
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        push(&l, "enter");
        helper(co, &l);
    });
    g.resume().unwrap();
    drop(g);
    push(&log, "after del");
    assert_trace(&log, "['enter', 'leave helper', 'finally', 'after del']");
}

/// A5.6 while the thread is already panicking: the generator is dropped by
/// another destructor that runs during an unwind.
#[test]
fn a5_6_dropping_a_suspended_generator_while_panicking_runs_destructors_once() {
    struct DropsGenerator {
        generator: Option<Generator<i32>>,
        saw_panicking: Rc<Cell<bool>>,
    }
    impl Drop for DropsGenerator {
        fn drop(&mut self) {
            self.saw_panicking.set(std::thread::panicking());
            drop(self.generator.take());
        }
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _a = sentinel(&l, "outer frame");
        let helper = |co: &Yielder<i32>| {
            let _b = sentinel(&l, "inner frame");
            co.yield_(1);
            co.yield_(2);
        };
        helper(co);
    });
    assert_eq!(g.resume(), Ok(Step::Yielded(1)));
    let saw_panicking = Rc::new(Cell::new(false));
    let holder = DropsGenerator { generator: Some(g), saw_panicking: saw_panicking.clone() };
    let msg = expect_panic(move || {
        let _holder = holder;
        panic!("unrelated panic");
    });
    assert_eq!(msg, "unrelated panic");
    assert!(saw_panicking.get(), "the generator was dropped during the unwind");
    assert_eq!(*log.borrow(), ["inner frame", "outer frame"]);
}

/// A5.6: a body that panics while being closed by `drop`, when the thread is
/// already panicking, must neither abort nor propagate (Python reports it to
/// `sys.unraisablehook`); its destructors still run once.
#[test]
fn a5_6_panic_in_body_while_dropped_during_a_panic_is_swallowed() {
    struct DropsGenerator(Option<Generator<i32>>);
    impl Drop for DropsGenerator {
        fn drop(&mut self) {
            drop(self.0.take());
        }
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            panic!("boom in close");
        }
    });
    g.resume().unwrap();
    let holder = DropsGenerator(Some(g));
    let msg = expect_panic(move || {
        let _holder = holder;
        panic!("first panic");
    });
    assert_eq!(msg, "first panic", "the body's panic was swallowed, not raised instead");
    assert_eq!(*log.borrow(), ["finally"]);
}

/// A5.6 as documented for gencoro: when not already panicking, a panic the
/// body raises while `drop` closes it propagates out of `drop`.
#[test]
fn a5_6_panic_in_body_while_dropped_propagates_out_of_drop() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            panic!("boom in close");
        }
    });
    g.resume().unwrap();
    assert_eq!(expect_panic(move || drop(g)), "boom in close");
    assert_eq!(*log.borrow(), ["finally"]);
}

/// A5.6 as documented for gencoro: `drop` closes a body that ignores
/// `GeneratorExit` again, so its destructors still run exactly once.
/// (CPython instead reports the `RuntimeError` as unraisable and clears the
/// frame without running the remaining `finally` code.)
#[test]
fn a5_6_drop_closes_again_a_body_that_ignored_generator_exit_once() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "finally");
        if yield_catching_exit(co, 1).is_err() {
            push(&l, "caught");
        }
        co.yield_(2);
        push(&l, "not reached");
    });
    g.resume().unwrap();
    drop(g);
    assert_eq!(*log.borrow(), ["caught", "finally"]);
}

// Python: tests/cpython/generator_semantics/a5_4b_destructor_yielding_during_close_is_ignored_exit_and_resume_finishes_the_unwind.py
#[test]
fn a5_4b_destructor_yielding_during_close_is_ignored_exit_and_resume_finishes_the_unwind() {
    let log = new_log();
    let g = finally_yields_generator(&log);
    g.resume().unwrap();
    match g.close() {
        Err(e @ CloseError::IgnoredExit) => push(&log, format!("RuntimeError: {e}")),
        other => panic!("{other:?}"),
    }
    let payload = catch_unwind(AssertUnwindSafe(|| g.resume())).err();
    if payload.is_some_and(|p| p.is::<GeneratorExit>()) {
        push(&log, "next raised GeneratorExit");
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['finally start', 'RuntimeError: generator ignored GeneratorExit', 'finally end', 'next raised GeneratorExit', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a5_4b_destructor_yielding_during_close_then_a_second_close_finishes.py
#[test]
fn a5_4b_destructor_yielding_during_close_then_a_second_close_finishes() {
    // Run in a child process: gencoro 0.1.0 aborts the process here.
    let result = run_in_child_process(
        "a5_4b_destructor_yielding_during_close_then_a_second_close_finishes",
        |log| {
            let g = finally_yields_generator(log);
            g.resume().unwrap();
            match g.close() {
                Err(e @ CloseError::IgnoredExit) => push(log, format!("RuntimeError: {e}")),
                other => panic!("{other:?}"),
            }
            push(log, py_state(g.state()));
            if g.close() == Ok(()) {
                push(log, "second close returned None");
            }
            push(log, py_state(g.state()));
        },
    );
    assert_eq!(
        result.as_deref(),
        Ok(
            "['finally start', 'RuntimeError: generator ignored GeneratorExit', 'GEN_SUSPENDED', 'second close returned None', 'GEN_CLOSED']"
        )
    );
}

// Python: tests/cpython/generator_semantics/a5_6_dropping_a_generator_whose_destructor_yields_does_not_abort.py
#[test]
fn a5_6_dropping_a_generator_whose_destructor_yields_does_not_abort() {
    // Run in a child process: gencoro 0.1.0 aborts the process here.
    let result = run_in_child_process(
        "a5_6_dropping_a_generator_whose_destructor_yields_does_not_abort",
        |log| {
            let g = finally_yields_generator(log);
            g.resume().unwrap();
            drop(g);
            push(log, "after del");
        },
    );
    assert_eq!(result.as_deref(), Ok("['finally start', 'after del']"));
}

// ---------------------------------------------------------------------------
// A.6 Re-entrancy
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a6_1_start_send_throw_close_from_inside_are_running_errors.py
#[test]
fn a6_1_start_send_throw_close_from_inside_are_running_errors() {
    type G = Generator<i32, Result<i32, Exc>, Result<(), Exc>>;
    let log = new_log();
    let slot: Rc<RefCell<Option<Rc<G>>>> = Rc::default();
    let (l, s) = (log.clone(), slot.clone());
    let me: Rc<G> = Rc::new(Generator::new(move |co| {
        let me = s.borrow().clone().unwrap();
        match me.start() {
            Err(e @ ResumeError::Running) => push(&l, format!("next: {e}")),
            other => push(&l, format!("next: {other:?}")),
        }
        match me.send(Ok(1)) {
            Err(e @ SendError::Running(_)) => {
                push(&l, format!("send: {e}"));
                assert_eq!(e.into_inner(), Ok(1));
            }
            other => push(&l, format!("send: {other:?}")),
        }
        match me.throw(Exc::KeyError("k".into())) {
            Err(e @ ThrowError::Running(_)) => {
                push(&l, format!("throw: {e}"));
                assert_eq!(e.into_inner(), Exc::KeyError("k".into()));
            }
            other => push(&l, format!("throw: {other:?}")),
        }
        match me.close() {
            Err(e @ CloseError::Running) => push(&l, format!("close: {e}")),
            other => push(&l, format!("close: {other:?}")),
        }
        drop(me);
        let _ = co.yield_(1);
        push(&l, "resumed");
        Ok(())
    }));
    *slot.borrow_mut() = Some(me.clone());
    me.start().unwrap();
    push(&log, py_state(me.state()));
    me.send(Ok(0)).unwrap();
    push(&log, py_state(me.state()));
    let taken = slot.borrow_mut().take();
    drop(taken);
    assert_trace(
        &log,
        "['next: generator already executing', 'send: generator already executing', 'throw: generator already executing', 'close: generator already executing', 'GEN_SUSPENDED', 'resumed', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a6_1_resume_from_inside_is_running_error_and_escaping_it_closes.py
#[test]
fn a6_1_resume_from_inside_is_running_error_and_escaping_it_closes() {
    type G = Generator<i32, (), Result<(), ResumeError>>;
    let log = new_log();
    let me: Rc<G> = Rc::new_cyclic(|weak: &Weak<G>| {
        let weak = weak.clone();
        Generator::new(move |co| {
            let me = weak.upgrade().unwrap();
            let step = me.resume()?;
            drop(me);
            co.yield_(step.yielded().unwrap_or(0));
            Ok(())
        })
    });
    match me.resume() {
        Ok(Step::Returned(Err(e))) => push(&log, format!("ValueError: {e}")),
        other => panic!("{other:?}"),
    }
    push(&log, py_state(me.state()));
    assert_trace(&log, "['ValueError: generator already executing', 'GEN_CLOSED']");
}

// Python: tests/cpython/generator_semantics/a6_2_delegator_and_subgenerator_both_count_as_running.py
#[test]
fn a6_2_delegator_and_subgenerator_both_count_as_running() {
    type G = Generator<i32, Option<i32>, ()>;
    fn two(g1: Weak<G>, log: Log) -> G {
        Generator::new(move |co| {
            co.yield_(1);
            let me = g1.upgrade().unwrap();
            push(&log, format!("two sees g1 {}", py_state(me.state())));
            match me.resume() {
                Err(e) => push(&log, format!("next(g1): {e}")),
                Ok(step) => push(&log, format!("next(g1) resumed: {step:?}")),
            }
            match co.yield_from(&me) {
                Err(e) => push(&log, format!("yield from g1: {e}")),
                Ok(()) => push(&log, "yield from g1 delegated to itself"),
            }
            drop(me);
            co.yield_(2);
        })
    }
    fn one(log: &Log) -> Rc<G> {
        Rc::new_cyclic(|weak: &Weak<G>| {
            let (weak, log) = (weak.clone(), log.clone());
            Generator::new(move |co| {
                co.yield_(0);
                co.yield_from(&two(weak, log)).unwrap();
                co.yield_(3);
            })
        })
    }
    let log = new_log();
    let g1 = one(&log);
    while let Step::Yielded(v) = g1.resume().unwrap() {
        push(&log, format!("yielded {v}"));
    }
    push(&log, "stop");
    push(&log, "send:");
    let g1 = one(&log);
    push(&log, format!("yielded {}", g1.start().unwrap().yielded().unwrap()));
    while let Step::Yielded(v) = g1.send(Some(42)).unwrap() {
        push(&log, format!("yielded {v}"));
    }
    push(&log, "stop");
    assert_trace(
        &log,
        "['yielded 0', 'yielded 1', 'two sees g1 GEN_RUNNING', 'next(g1): generator already executing', 'yield from g1: generator already executing', 'yielded 2', 'yielded 3', 'stop', 'send:', 'yielded 0', 'yielded 1', 'two sees g1 GEN_RUNNING', 'next(g1): generator already executing', 'yield from g1: generator already executing', 'yielded 2', 'yielded 3', 'stop']",
    );
}

// Python: tests/cpython/generator_semantics/a6_2_delegators_claim_to_be_running_during_delegated_throw.py
#[test]
fn a6_2_delegators_claim_to_be_running_during_delegated_throw() {
    #[derive(Debug)]
    struct MyErr;
    type G = Generator<i32, Result<(), MyErr>, Result<(), MyErr>>;
    let log = new_log();
    let g1: Rc<G> = Rc::new_cyclic(|weak: &Weak<G>| {
        let (weak, log) = (weak.clone(), log.clone());
        Generator::new(move |co: &Yielder<i32, Result<(), MyErr>>| {
            if co.yield_(0).is_err() {
                push(&log, "one caught MyErr");
            }
            let l = log.clone();
            let two: G = Generator::new(move |co: &Yielder<i32, Result<(), MyErr>>| {
                if co.yield_(1).is_err() {
                    push(&l, "two caught MyErr");
                }
                let me = weak.upgrade().unwrap();
                if let Err(e) = co.yield_from(&me) {
                    push(&l, format!("two: {e}"));
                }
                drop(me);
                if co.yield_(2).is_err() {
                    push(&l, "two caught MyErr");
                }
                Ok(())
            });
            co.yield_from(&two).unwrap()?;
            if co.yield_(3).is_err() {
                push(&log, "one caught MyErr");
            }
            Ok(())
        })
    });
    push(&log, format!("yielded {}", g1.start().unwrap().yielded().unwrap()));
    loop {
        match g1.throw(MyErr).unwrap() {
            Step::Yielded(v) => push(&log, format!("yielded {v}")),
            Step::Returned(Ok(())) => break push(&log, "stop"),
            Step::Returned(Err(e)) => panic!("escaped: {e:?}"),
        }
    }
    assert_trace(
        &log,
        "['yielded 0', 'one caught MyErr', 'yielded 1', 'two caught MyErr', 'two: generator already executing', 'yielded 2', 'two caught MyErr', 'yielded 3', 'one caught MyErr', 'stop']",
    );
}

// Python: tests/cpython/generator_semantics/a6_2_delegator_counts_as_running_while_its_subgenerator_is_closed.py
#[test]
fn a6_2_delegator_counts_as_running_while_its_subgenerator_is_closed() {
    type G = Generator<i32>;
    let log = new_log();
    let g1: Rc<G> = Rc::new_cyclic(|weak: &Weak<G>| {
        let (weak, log) = (weak.clone(), log.clone());
        Generator::new(move |co| {
            let two: G = Generator::new(move |co| {
                let _finally = Finally(|| {
                    let me = weak.upgrade().unwrap();
                    push(&log, format!("two finally sees g1 {}", py_state(me.state())));
                    match me.resume() {
                        Err(e) => push(&log, format!("next(g1): {e}")),
                        Ok(step) => push(&log, format!("next(g1) resumed: {step:?}")),
                    }
                });
                co.yield_(1);
            });
            co.yield_from(&two).unwrap();
        })
    });
    g1.resume().unwrap();
    if g1.close() == Ok(()) {
        push(&log, "close returned None");
    }
    assert_trace(
        &log,
        "['two finally sees g1 GEN_RUNNING', 'next(g1): generator already executing', 'close returned None']",
    );
}

// Python: tests/cpython/generator_semantics/a6_2_yield_from_cycle_is_detected.py
#[test]
fn a6_2_yield_from_cycle_is_detected() {
    type G = Generator<&'static str, (), Result<(), YieldFromError<()>>>;
    let log = new_log();
    let gi: Rc<G> = Rc::new_cyclic(|weak: &Weak<G>| {
        let (weak, log) = (weak.clone(), log.clone());
        Generator::new(move |co| {
            push(&log, "g1: starting");
            co.yield_("y1");
            push(&log, "g1: about to yield from g2");
            let l = log.clone();
            let g2: G = Generator::new(move |co| {
                push(&l, "g2: starting");
                co.yield_("y2");
                push(&l, "g2: about to yield from g1");
                co.yield_from(&weak.upgrade().unwrap())??;
                push(&l, "g2 should not be here");
                Ok(())
            });
            co.yield_from(&g2)??;
            push(&log, "g1 should not be here");
            Ok(())
        })
    });
    loop {
        match gi.resume().unwrap() {
            Step::Yielded(y) => push(&log, format!("Yielded: {y}")),
            Step::Returned(Err(e)) => break push(&log, format!("ValueError: {e}")),
            Step::Returned(Ok(())) => break,
        }
    }
    assert!(gi.is_closed());
    assert_trace(
        &log,
        "['g1: starting', 'Yielded: y1', 'g1: about to yield from g2', 'g2: starting', 'Yielded: y2', 'g2: about to yield from g1', 'ValueError: generator already executing']",
    );
}

// ---------------------------------------------------------------------------
// A.7 yield from (PEP 380); ports of CPython's test_yield_from.py
// ---------------------------------------------------------------------------

// Python: tests/cpython/generator_semantics/a7_1_delegation_of_initial_next_to_subgenerator.py
#[test]
fn a7_1_delegation_of_initial_next_to_subgenerator() {
    let log = new_log();
    let l = log.clone();
    let g1 = Generator::new(move |co: &Yielder<i32>| {
        push(&l, "Starting g1");
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |co: &Yielder<i32>| {
            push(&l2, "Starting g2");
            co.yield_(42);
            push(&l2, "Finishing g2");
        }))
        .unwrap();
        push(&l, "Finishing g1");
    });
    for x in g1 {
        push(&log, format!("Yielded {x}"));
    }
    assert_trace(
        &log,
        "['Starting g1', 'Starting g2', 'Yielded 42', 'Finishing g2', 'Finishing g1']",
    );
}

// Python: tests/cpython/generator_semantics/a7_2_a7_9_delegation_of_next_call_to_subgenerator.py
#[test]
fn a7_2_a7_9_delegation_of_next_call_to_subgenerator() {
    let log = new_log();
    let l = log.clone();
    let g1 = Generator::new(move |co: &Yielder<&'static str>| {
        push(&l, "Starting g1");
        co.yield_("g1 ham");
        let l2 = l.clone();
        let g2 = Generator::new(move |co: &Yielder<&'static str>| {
            push(&l2, "Starting g2");
            co.yield_("g2 spam");
            co.yield_("g2 more spam");
            push(&l2, "Finishing g2");
        });
        co.yield_from(&g2).unwrap();
        co.yield_("g1 eggs");
        push(&l, "Finishing g1");
    });
    for x in g1 {
        push(&log, format!("Yielded {x}"));
    }
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Yielded g2 more spam', 'Finishing g2', 'Yielded g1 eggs', 'Finishing g1']",
    );
}

// Python: tests/cpython/generator_semantics/a7_3_delegation_of_send.py
#[test]
fn a7_3_delegation_of_send() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str, i32>| {
        push(&l, "Starting g1");
        let x = co.yield_("g1 ham");
        push(&l, format!("g1 received {x}"));
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |co: &Yielder<&'static str, i32>| {
            push(&l2, "Starting g2");
            let x = co.yield_("g2 spam");
            push(&l2, format!("g2 received {x}"));
            let x = co.yield_("g2 more spam");
            push(&l2, format!("g2 received {x}"));
            push(&l2, "Finishing g2");
        }))
        .unwrap();
        let x = co.yield_("g1 eggs");
        push(&l, format!("g1 received {x}"));
        push(&l, "Finishing g1");
    });
    g.start().unwrap();
    let mut x = 1;
    while let Step::Yielded(y) = g.send(x).unwrap() {
        push(&log, format!("Yielded {y}"));
        x += 1;
    }
    assert_trace(
        &log,
        "['Starting g1', 'g1 received 1', 'Starting g2', 'Yielded g2 spam', 'g2 received 2', 'Yielded g2 more spam', 'g2 received 3', 'Finishing g2', 'Yielded g1 eggs', 'g1 received 4', 'Finishing g1']",
    );
}

// Python: tests/cpython/generator_semantics/a7_3_a7_7_handling_panic_while_delegating_send.py
#[test]
fn a7_3_a7_7_handling_panic_while_delegating_send() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str, i32>| {
        push(&l, "Starting g1");
        let x = co.yield_("g1 ham");
        push(&l, format!("g1 received {x}"));
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |co: &Yielder<&'static str, i32>| {
            push(&l2, "Starting g2");
            let x = co.yield_("g2 spam");
            push(&l2, format!("g2 received {x}"));
            panic!("hovercraft is full of eels");
        }))
        .unwrap();
        let x = co.yield_("g1 eggs");
        push(&l, format!("g1 received {x}"));
        push(&l, "Finishing g1");
    });
    g.start().unwrap();
    let msg = expect_panic(|| {
        let mut x = 1;
        while let Step::Yielded(y) = g.send(x).unwrap() {
            push(&log, format!("Yielded {y}"));
            x += 1;
        }
    });
    push(&log, format!("caught {msg}"));
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['Starting g1', 'g1 received 1', 'Starting g2', 'Yielded g2 spam', 'g2 received 2', 'caught hovercraft is full of eels', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_4_delegating_throw_unhandled_propagates_innermost_first.py
#[test]
fn a7_4_delegating_throw_unhandled_propagates_innermost_first() {
    type S = Result<(), Exc>;
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str, S>| -> Result<(), Exc> {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        co.yield_("g1 ham")?;
        let l2 = l.clone();
        let g2 = Generator::new(move |co: &Yielder<&'static str, S>| -> Result<(), Exc> {
            let _f = sentinel(&l2, "Finishing g2");
            push(&l2, "Starting g2");
            co.yield_("g2 spam")?;
            co.yield_("g2 more spam")?;
            Ok(())
        });
        co.yield_from(&g2).unwrap()?;
        co.yield_("g1 eggs")?;
        Ok(())
    });
    push(&log, format!("Yielded {}", g.start().unwrap().yielded().unwrap()));
    push(&log, format!("Yielded {}", g.send(Ok(())).unwrap().yielded().unwrap()));
    match g.throw(value_error("tomato ejected")) {
        Ok(Step::Returned(Err(e))) => push(&log, format!("caught {e}")),
        other => panic!("{other:?}"),
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Finishing g2', 'Finishing g1', 'caught tomato ejected', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_4_throw_handled_by_subgenerator_which_yields_on.py
#[test]
fn a7_4_throw_handled_by_subgenerator_which_yields_on() {
    #[derive(Debug)]
    struct LunchError;
    type S = Result<(), LunchError>;
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str, S>| -> S {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        co.yield_("g1 ham")?;
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |co: &Yielder<&'static str, S>| -> S {
            push(&l2, "Starting g2");
            let caught = co.yield_("g2 spam").and_then(|()| co.yield_("g2 more spam"));
            if let Err(LunchError) = caught {
                push(&l2, "Caught LunchError in g2");
                co.yield_("g2 lunch saved")?;
                co.yield_("g2 yet more spam")?;
            }
            Ok(())
        }))
        .unwrap()?;
        co.yield_("g1 eggs")?;
        Ok(())
    });
    push(&log, format!("Yielded {}", g.start().unwrap().yielded().unwrap()));
    push(&log, format!("Yielded {}", g.send(Ok(())).unwrap().yielded().unwrap()));
    assert_eq!(g.throw(LunchError).unwrap().yielded(), Some("g2 lunch saved"));
    while let Step::Yielded(x) = g.send(Ok(())).unwrap() {
        push(&log, format!("Yielded {x}"));
    }
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Caught LunchError in g2', 'Yielded g2 yet more spam', 'Yielded g1 eggs', 'Finishing g1']",
    );
}

// Python: tests/cpython/generator_semantics/a7_4_catching_exception_from_subgen_and_returning.py
#[test]
fn a7_4_catching_exception_from_subgen_and_returning() {
    type S = Result<(), Exc>;
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, S>| -> S {
        let l2 = l.clone();
        let v = co
            .yield_from(&Generator::new(move |co: &Yielder<i32, S>| -> Result<i32, Exc> {
                if let Err(Exc::ValueError(_)) = co.yield_(1) {
                    push(&l2, "inner caught ValueError");
                }
                Ok(2)
            }))
            .unwrap()?;
        push(&l, format!("inner returned {v} to outer"));
        co.yield_(v)?;
        Ok(())
    });
    push(&log, g.start().unwrap().yielded().unwrap().to_string());
    push(&log, g.throw(value_error("")).unwrap().yielded().unwrap().to_string());
    assert_trace(&log, "['1', 'inner caught ValueError', 'inner returned 2 to outer', '2']");
}

// Python: tests/cpython/generator_semantics/a7_5_delegating_close_closes_innermost_first.py
#[test]
fn a7_5_delegating_close_closes_innermost_first() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str>| {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        co.yield_("g1 ham");
        let l2 = l.clone();
        let g2 = Generator::new(move |co: &Yielder<&'static str>| {
            let _f = sentinel(&l2, "Finishing g2");
            push(&l2, "Starting g2");
            co.yield_("g2 spam");
            co.yield_("g2 more spam");
        });
        co.yield_from(&g2).unwrap();
        co.yield_("g1 eggs");
    });
    for _ in 0..2 {
        push(&log, format!("Yielded {}", g.resume().unwrap().yielded().unwrap()));
    }
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    drop(g);
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Finishing g2', 'Finishing g1', 'close returned None']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_panic_while_delegating_close_propagates_through_the_delegator.py
#[test]
fn a7_5_panic_while_delegating_close_propagates_through_the_delegator() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<&'static str>| {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        co.yield_("g1 ham");
        let l2 = l.clone();
        let g2 = Generator::new(move |co: &Yielder<&'static str>| {
            push(&l2, "Starting g2");
            let closing = yield_catching_exit(co, "g2 spam").is_err()
                || yield_catching_exit(co, "g2 more spam").is_err();
            push(&l2, "Finishing g2");
            if closing {
                // A `finally:` that raises: a Drop cannot panic while
                // unwinding, so the body catches GeneratorExit and panics.
                panic!("nybbles have exploded with delight");
            }
        });
        co.yield_from(&g2).unwrap();
        co.yield_("g1 eggs");
    });
    for _ in 0..2 {
        push(&log, format!("Yielded {}", g.resume().unwrap().yielded().unwrap()));
    }
    let msg = expect_panic(|| g.close());
    push(&log, format!("close raised {msg}"));
    push(&log, py_state(g.state()));
    drop(g);
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Finishing g2', 'Finishing g1', 'close raised nybbles have exploded with delight', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_subgenerator_catching_exit_and_returning_does_not_resume_delegator.py
#[test]
fn a7_5_subgenerator_catching_exit_and_returning_does_not_resume_delegator() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<()>| {
        let _f = sentinel(&l, "g finally");
        push(&l, "Enter g");
        let l2 = l.clone();
        let f = Generator::new(move |co: &Yielder<()>| {
            push(&l2, "Enter f");
            if yield_catching_exit(co, ()).is_err() {
                push(&l2, "f caught GeneratorExit");
                return "f value";
            }
            push(&l2, "Exit f");
            "f done"
        });
        let v = co.yield_from(&f).unwrap();
        push(&l, format!("Exit g {v}"));
    });
    g.resume().unwrap();
    if g.close() == Ok(()) {
        push(&log, "close returned None");
    }
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['Enter g', 'Enter f', 'f caught GeneratorExit', 'g finally', 'close returned None', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_subgenerator_ignoring_exit_makes_delegator_close_report_ignored_exit.py
#[test]
fn a7_5_subgenerator_ignoring_exit_makes_delegator_close_report_ignored_exit() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<()>| {
        let _f = sentinel(&l, "g finally");
        push(&l, "Enter g");
        let l2 = l.clone();
        let f = Generator::new(move |co: &Yielder<()>| {
            let _f = sentinel(&l2, "f finally");
            push(&l2, "Enter f");
            if yield_catching_exit(co, ()).is_err() {
                push(&l2, "f caught GeneratorExit");
                co.yield_(());
            }
            push(&l2, "Exit f");
        });
        co.yield_from(&f).unwrap();
        push(&l, "Exit g");
    });
    g.resume().unwrap();
    match g.close() {
        Err(e @ CloseError::IgnoredExit) => push(&log, format!("RuntimeError: {e}")),
        other => panic!("{other:?}"),
    }
    push(&log, py_state(g.state()));
    drop(g);
    assert_trace(
        &log,
        "['Enter g', 'Enter f', 'f caught GeneratorExit', 'f finally', 'g finally', 'RuntimeError: generator ignored GeneratorExit', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_subgenerator_panicking_on_exit_propagates_through_delegator.py
#[test]
fn a7_5_subgenerator_panicking_on_exit_propagates_through_delegator() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<()>| {
        let _f = sentinel(&l, "g finally");
        push(&l, "Enter g");
        let l2 = l.clone();
        let f = Generator::new(move |co: &Yielder<()>| {
            push(&l2, "Enter f");
            if yield_catching_exit(co, ()).is_err() {
                panic!("Vorpal bunny encountered");
            }
            push(&l2, "Exit f");
        });
        co.yield_from(&f).unwrap();
        push(&l, "Exit g");
    });
    g.resume().unwrap();
    let msg = expect_panic(|| g.close());
    push(&log, format!("ValueError: {msg}"));
    push(&log, py_state(g.state()));
    assert_trace(
        &log,
        "['Enter g', 'Enter f', 'g finally', 'ValueError: Vorpal bunny encountered', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_dropping_a_suspended_delegation_chain_closes_each_frame_once.py
#[test]
fn a7_5_dropping_a_suspended_delegation_chain_closes_each_frame_once() {
    // Python needs a generator per level; gencoro needs one per chain:
    // `walk` is a plain recursive function.
    fn walk(co: &Yielder<u32>, log: &Log, depth: u32) {
        let _f = sentinel(log, &format!("leave {depth}"));
        if depth > 0 {
            walk(co, log, depth - 1);
            co.yield_(depth);
        }
    }
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<u32>| walk(co, &l, 4));
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    drop(g);
    push(&log, "after del");
    assert_trace(
        &log,
        "['leave 0', 'yielded 1', 'leave 1', 'yielded 2', 'leave 2', 'leave 3', 'leave 4', 'after del']",
    );
}

// Python: tests/cpython/generator_semantics/a7_5_dropping_a_suspended_yield_from_chain_of_generators_closes_each_once.py
#[test]
fn a7_5_dropping_a_suspended_yield_from_chain_of_generators_closes_each_once() {
    // The same program as above, with a real generator per level.
    fn walk(log: Log, depth: u32) -> Generator<u32> {
        Generator::new(move |co| {
            let _f = sentinel(&log, &format!("leave {depth}"));
            if depth > 0 {
                co.yield_from(&walk(log.clone(), depth - 1)).unwrap();
                co.yield_(depth);
            }
        })
    }
    let log = new_log();
    let g = walk(log.clone(), 4);
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    push(&log, format!("yielded {}", g.resume().unwrap().yielded().unwrap()));
    drop(g);
    push(&log, "after del");
    assert_trace(
        &log,
        "['leave 0', 'yielded 1', 'leave 1', 'yielded 2', 'leave 2', 'leave 3', 'leave 4', 'after del']",
    );
}

/// Dropping a generator suspended inside a `yield_from` chain while the
/// thread is already panicking closes the whole chain, innermost first, each
/// destructor once.
#[test]
fn a7_5_dropping_a_suspended_chain_while_panicking_closes_each_once() {
    struct DropsGenerator(Option<Generator<u32>>);
    impl Drop for DropsGenerator {
        fn drop(&mut self) {
            drop(self.0.take());
        }
    }
    fn walk(log: Log, depth: u32) -> Generator<u32> {
        Generator::new(move |co| {
            let _f = sentinel(&log, &format!("leave {depth}"));
            if depth > 0 {
                co.yield_from(&walk(log.clone(), depth - 1)).unwrap();
            }
            co.yield_(depth);
        })
    }
    let log = new_log();
    let g = walk(log.clone(), 3);
    assert_eq!(g.resume(), Ok(Step::Yielded(0)));
    let holder = DropsGenerator(Some(g));
    let msg = expect_panic(move || {
        let _holder = holder;
        panic!("unrelated panic");
    });
    assert_eq!(msg, "unrelated panic");
    assert_eq!(*log.borrow(), ["leave 0", "leave 1", "leave 2", "leave 3"]);
}

// Python: tests/cpython/generator_semantics/a7_6_value_of_yield_from_is_the_subgenerator_return_value.py
#[test]
fn a7_6_value_of_yield_from_is_the_subgenerator_return_value() {
    fn g2(log: &Log, v: Option<i32>) -> Generator<&'static str, (), Option<i32>> {
        let log = log.clone();
        Generator::new(move |co| {
            push(&log, "Starting g2");
            co.yield_("g2 spam");
            co.yield_("g2 more spam");
            push(&log, "Finishing g2");
            v
        })
    }
    let log = new_log();
    let l = log.clone();
    let g1 = Generator::new(move |co: &Yielder<&'static str>| {
        push(&l, "Starting g1");
        co.yield_("g1 ham");
        let ret = co.yield_from(&g2(&l, None)).unwrap();
        push(&l, format!("g2 returned {}", py_opt(&ret)));
        for v in [1, 2] {
            let ret = co.yield_from(&g2(&l, Some(v))).unwrap();
            push(&l, format!("g2 returned {}", py_opt(&ret)));
        }
        co.yield_("g1 eggs");
        push(&l, "Finishing g1");
    });
    for x in g1 {
        push(&log, format!("Yielded {x}"));
    }
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Yielded g2 more spam', 'Finishing g2', 'g2 returned None', 'Starting g2', 'Yielded g2 spam', 'Yielded g2 more spam', 'Finishing g2', 'g2 returned 1', 'Starting g2', 'Yielded g2 spam', 'Yielded g2 more spam', 'Finishing g2', 'g2 returned 2', 'Yielded g1 eggs', 'Finishing g1']",
    );
}

// Python: tests/cpython/generator_semantics/a7_7_panic_in_initial_next_call_propagates_and_runs_delegator_destructors.py
#[test]
fn a7_7_panic_in_initial_next_call_propagates_and_runs_delegator_destructors() {
    let log = new_log();
    let l = log.clone();
    let g1 = Generator::new(move |co: &Yielder<i32>| {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |_co: &Yielder<i32>| {
            let _f = sentinel(&l2, "Finishing g2");
            push(&l2, "Starting g2");
            panic!("spanish inquisition occurred");
        }))
        .unwrap();
    });
    let msg = expect_panic(|| {
        for x in g1 {
            push(&log, format!("Yielded {x}"));
        }
    });
    push(&log, format!("caught {msg}"));
    assert_trace(
        &log,
        "['Starting g1', 'Starting g2', 'Finishing g2', 'Finishing g1', 'caught spanish inquisition occurred']",
    );
}

// Python: tests/cpython/generator_semantics/a7_7_panic_in_delegated_next_call_propagates_and_runs_delegator_destructors.py
#[test]
fn a7_7_panic_in_delegated_next_call_propagates_and_runs_delegator_destructors() {
    let log = new_log();
    let l = log.clone();
    let g1 = Generator::new(move |co: &Yielder<&'static str>| {
        let _f = sentinel(&l, "Finishing g1");
        push(&l, "Starting g1");
        co.yield_("g1 ham");
        let l2 = l.clone();
        co.yield_from(&Generator::new(move |co: &Yielder<&'static str>| {
            let _f = sentinel(&l2, "Finishing g2");
            push(&l2, "Starting g2");
            co.yield_("g2 spam");
            panic!("hovercraft is full of eels");
        }))
        .unwrap();
        co.yield_("g1 eggs");
    });
    let msg = expect_panic(|| {
        while let Step::Yielded(x) = g1.resume().unwrap() {
            push(&log, format!("Yielded {x}"));
        }
    });
    push(&log, format!("caught {msg}"));
    push(&log, py_state(g1.state()));
    assert_trace(
        &log,
        "['Starting g1', 'Yielded g1 ham', 'Starting g2', 'Yielded g2 spam', 'Finishing g2', 'Finishing g1', 'caught hovercraft is full of eels', 'GEN_CLOSED']",
    );
}

// Python: tests/cpython/generator_semantics/a7_7_exception_in_initial_next_call.py
#[test]
fn a7_7_exception_in_initial_next_call() {
    let log = new_log();
    let l = log.clone();
    let gi = Generator::new(move |co: &Yielder<i32>| {
        push(&l, "g1 about to yield from g2");
        co.yield_from(&Generator::new(|co: &Yielder<i32>| {
            let zero = std::hint::black_box(0);
            co.yield_(1 / zero);
        }))
        .unwrap();
        push(&l, "g1 should not be here");
    });
    let msg = expect_panic(|| gi.resume());
    assert!(msg.contains("divide by zero"), "{msg}");
    push(&log, "caught ZeroDivisionError");
    assert_trace(&log, "['g1 about to yield from g2', 'caught ZeroDivisionError']");
}

// Python: tests/cpython/generator_semantics/a7_8_yield_from_a_finished_subgenerator_yields_nothing.py
#[test]
fn a7_8_yield_from_a_finished_subgenerator_yields_nothing() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32>| {
        // An empty generator: it returns None without yielding.
        let empty: Generator<i32, (), Option<i32>> = Generator::new(|_| None);
        let r = co.yield_from(&empty).unwrap();
        push(&l, format!("yield from empty: {}", py_opt(&r)));
        let mut s = Generator::new(|co: &Yielder<i32>| {
            co.yield_(1);
            "r"
        });
        for x in s.by_ref() {
            push(&l, format!("sub yielded {x}"));
        }
        assert_eq!(s.take_return(), Some("r"));
        match co.yield_from(&s) {
            Err(YieldFromError::Finished(None)) => push(&l, "yield from finished sub: None"),
            other => push(&l, format!("yield from finished sub: {other:?}")),
        }
    });
    if g.resume() == Ok(Step::Returned(())) {
        push(&log, "StopIteration");
    }
    assert_trace(
        &log,
        "['yield from empty: None', 'sub yielded 1', 'yield from finished sub: None', 'StopIteration']",
    );
}

/// A7.8, gencoro's documented restriction: delegating to a generator that
/// already started is refused with `YieldFromError::Started` and yields
/// nothing (Python would resume it with `None`).
#[test]
fn a7_8_yield_from_a_started_subgenerator_is_refused_and_yields_nothing() {
    let g = Generator::new(|co: &Yielder<i32>| {
        let s = Generator::new(|co: &Yielder<i32>| {
            co.yield_(1);
            co.yield_(2);
        });
        assert_eq!(s.resume(), Ok(Step::Yielded(1)));
        let refused = co.yield_from(&s);
        assert_eq!(s.state(), State::Suspended, "the refused sub is untouched");
        assert_eq!(s.resume(), Ok(Step::Yielded(2)));
        refused
    });
    assert_eq!(g.resume(), Ok(Step::Returned(Err(YieldFromError::Started))));
}

/// A yield from any call depth: a plain recursive function given the
/// `Yielder`, with sends going into the deepest frame.
#[test]
fn yields_from_any_call_depth_through_plain_functions() {
    fn tree(co: &Yielder<u32, u32>, depth: u32, acc: &mut u32) {
        if depth == 0 {
            *acc += co.yield_(*acc);
        } else {
            tree(co, depth - 1, acc);
            tree(co, depth - 1, acc);
        }
    }
    let g = Generator::new(|co: &Yielder<u32, u32>| {
        let mut acc = 0;
        tree(co, 5, &mut acc);
        acc
    });
    assert_eq!(g.start(), Ok(Step::Yielded(0)));
    let mut expected = 0;
    for i in 1..32 {
        expected += i;
        assert_eq!(g.send(i), Ok(Step::Yielded(expected)));
    }
    assert_eq!(g.send(32), Ok(Step::Returned(expected + 32)));
}

// Python: tests/cpython/generator_semantics/iterator_yields_items_and_keeps_the_return_value_for_take_return.py
#[test]
fn iterator_yields_items_and_keeps_the_return_value_for_take_return() {
    let log = new_log();
    let mut it = Generator::new(|co: &Yielder<i32>| {
        for i in (1..=3).rev() {
            co.yield_(i);
        }
        "liftoff"
    });
    for x in it.by_ref() {
        push(&log, x.to_string());
    }
    push(&log, format!("return value {}", it.take_return().unwrap()));
    push(&log, if it.next().is_none() { "exhausted" } else { "more" });
    assert_trace(&log, "['3', '2', '1', 'return value liftoff', 'exhausted']");
    assert_eq!(it.take_return(), None, "the return value is taken once");
    assert!(it.is_closed());
}

// Python: tests/cpython/generator_semantics/a7_4_throw_into_delegator_whose_sub_was_closed_is_not_lost.py
#[test]
fn a7_4_throw_into_delegator_whose_sub_was_closed_is_not_lost() {
    type S = Result<(), &'static str>;
    let sub: Rc<Generator<u32, S, Result<(), &'static str>>> = Rc::new(Generator::new(|co| {
        co.yield_(1)?;
        co.yield_(2)?;
        Ok(())
    }));
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (s2, l2) = (sub.clone(), log.clone());
    let outer: Generator<u32, S, Result<(), &'static str>> = Generator::new(move |co| {
        match co.yield_from(&s2) {
            Err(YieldFromError::Finished(Some(Err(e)))) => {
                l2.borrow_mut().push(format!("caught {e} at yield from"));
            }
            other => l2.borrow_mut().push(format!("unexpected: {other:?}")),
        }
        Ok(())
    });
    assert_eq!(outer.start(), Ok(Step::Yielded(1)));
    sub.close().unwrap();
    assert_eq!(outer.throw("ValueError").unwrap(), Step::Returned(Ok(())));
    assert_eq!(*log.borrow(), ["caught ValueError at yield from"]);
}

/// A.1: the errors say what CPython says where the same error exists.
#[test]
fn error_messages_are_cpythons() {
    use gencoro::{CloseError, Generator, ResumeError, SendError};
    let g: Generator<u32, u32> = Generator::new(|co| {
        co.yield_(1);
    });
    assert_eq!(
        g.send(5).unwrap_err().to_string(),
        "can't send non-None value to a just-started generator"
    );
    assert_eq!(ResumeError::Running.to_string(), "generator already executing");
    assert_eq!(SendError::Running(()).to_string(), "generator already executing");
    assert_eq!(CloseError::IgnoredExit.to_string(), "generator ignored GeneratorExit");
}

// A.2: `next(g)` is one call on a generator that accepts thrown errors too:
// `resume_ok` sends `Ok(T::default())`, Python's `None`.
//
// Python: tests/cpython/generator_semantics/a2_4_next_resumes_a_generator_that_accepts_thrown_errors.py
#[test]
fn a2_4_next_resumes_a_generator_that_accepts_thrown_errors() {
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Result<Option<i32>, String>>| {
        let body = || -> Result<(), String> {
            let got = co.yield_(1)?;
            push(&l, format!("got {}", got.map_or("None".to_owned(), |v| v.to_string())));
            co.yield_(2)?;
            Ok(())
        };
        match body() {
            Err(e) => {
                push(&l, format!("caught {e}"));
                let _ = co.yield_(3);
                Ok(())
            }
            ok => ok,
        }
    });
    let record = |step: Step<i32, Result<(), String>>| match step {
        Step::Yielded(y) => push(&log, format!("yielded {y}")),
        Step::Returned(r) => push(&log, format!("returned {r:?}")),
    };
    record(g.resume_ok().unwrap());
    record(g.resume_ok().unwrap());
    record(g.throw("v".to_owned()).unwrap());
    assert_trace(&log, "['yielded 1', 'got None', 'yielded 2', 'caught v', 'yielded 3']");
}

// A.7: `yield from` a generator that has already started delegates to it
// from its suspension, resuming it with `None` first (PEP 380's `next()`):
// `yield_from_resuming`.
//
// Python: tests/cpython/generator_semantics/a7_10_yield_from_a_started_generator_delegates_from_its_suspension.py
#[test]
fn a7_10_yield_from_a_started_generator_delegates_from_its_suspension() {
    let log = new_log();
    let l = log.clone();
    let inner = Generator::new(move |co: &Yielder<i32, Option<i32>>| {
        push(&l, "inner start");
        let x = co.yield_(1);
        push(&l, format!("inner got {}", x.map_or("None".to_owned(), |v| v.to_string())));
        co.yield_(2);
        "done"
    });
    match inner.start().unwrap() {
        Step::Yielded(y) => push(&log, format!("first {y}")),
        Step::Returned(_) => unreachable!(),
    }
    let l = log.clone();
    let outer = Generator::new(move |co: &Yielder<i32, Option<i32>>| {
        let r = co.yield_from_resuming(&inner).unwrap();
        push(&l, format!("outer got {r}"));
    });
    if let Step::Yielded(y) = outer.resume().unwrap() {
        push(&log, format!("yielded {y}"));
    }
    if let Step::Returned(()) = outer.resume().unwrap() {
        push(&log, "outer finished");
    }
    assert_trace(
        &log,
        "['inner start', 'first 1', 'inner got None', 'yielded 2', 'outer got done', 'outer finished']",
    );
}

// A.7: `yield from` a plain iterable yields its items and evaluates to
// `None`; sending a value to a plain iterator is an error at the delegation
// (Python: AttributeError, no `send`): `yield_from_iter`.
//
// Python: tests/cpython/generator_semantics/a7_11_yield_from_a_plain_iterable.py
#[test]
fn a7_11_yield_from_a_plain_iterable() {
    use gencoro::YieldFromError;
    let log = new_log();
    let l = log.clone();
    let g = Generator::new(move |co: &Yielder<i32, Option<i32>>| {
        let r = co.yield_from_iter(0..3);
        push(&l, format!("range gave {}", if r.is_ok() { "None" } else { "an error" }));
        co.yield_from_iter([]).unwrap();
        push(&l, "empty tuple gave nothing");
        if let Err(YieldFromError::CannotSend(_)) = co.yield_from_iter([7, 8]) {
            push(&l, "send to a plain iterator: AttributeError");
        }
        co.yield_(9);
    });
    for _ in 0..4 {
        if let Step::Yielded(y) = g.resume().unwrap() {
            push(&log, format!("yielded {y}"));
        }
    }
    if let Step::Yielded(y) = g.send(Some(5)).unwrap() {
        push(&log, format!("yielded {y}"));
    }
    assert_trace(
        &log,
        "['yielded 0', 'yielded 1', 'yielded 2', 'range gave None', 'empty tuple gave nothing', \
         'yielded 7', 'send to a plain iterator: AttributeError', 'yielded 9']",
    );
}
