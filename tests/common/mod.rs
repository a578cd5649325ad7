//! Helpers shared by the `runtime_*` tests: a trace log, a runner on the
//! virtual clock, Python-style rendering of values and errors, and a way to
//! run a scenario that may crash the process in a child process.
//!
//! Every scenario of those tests was first written in Python and run with
//! CPython 3.11; its output is the expected trace. The programs are under
//! `tests/cpython/` (`tests/cpython_programs.rs` runs them), and start with
//! `from prelude import *`: `tests/cpython/prelude.py`, which runs asyncio on
//! a virtual clock (time jumps to the next timer, as with
//! `Clock::virtual_time()`) and orders equal deadlines first in, first out
//! (the `(when, seq)` rule of `docs/semantics.md`; CPython's heap orders by
//! `when` only).
//!
//! The Rust side mirrors it: [`log`] is `log`, [`ex`] is `ex`, [`go`] is
//! `go`, [`Boom`] is `Boom`.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fmt;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, ErrorKind, Task, TaskBuilder, TaskRef};

thread_local! {
    /// The trace of the test running on this thread (each test has its own
    /// thread), like the output of the Python program.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Loop time as Python's `f"{loop.time():.1f}"`.
pub fn now() -> String {
    let t = runtime::time().expect("now() inside a running loop");
    format!("{:.1}", t.as_secs_f64())
}

/// Python: `log(s)`, a trace line stamped with the loop time.
pub fn log(s: impl fmt::Display) {
    let line = format!("{} {s}", now());
    TRACE.with(|t| t.borrow_mut().push(line));
}

/// Python: `print(s)`, a trace line without a time stamp.
pub fn print(s: impl fmt::Display) {
    let line = s.to_string();
    TRACE.with(|t| t.borrow_mut().push(line));
}

/// Takes the trace recorded so far on this thread.
pub fn take_trace() -> Vec<String> {
    TRACE.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// Seconds as a `Duration`; only whole and half seconds are used, so the
/// Python floats are exact.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Python: `await asyncio.sleep(s)`.
pub fn sleep(s: f64) -> Result<(), Error> {
    runtime::sleep(secs(s))
}

/// Python: `asyncio.create_task(coro, name=name)`.
pub fn spawn_named<T, F>(name: &str, body: F) -> Task<T>
where
    T: 'static,
    F: FnOnce() -> Result<T, Error> + 'static,
{
    TaskBuilder::new().name(name).spawn(body).expect("spawn inside a running loop")
}

/// Python: `asyncio.current_task()`, inside a task.
pub fn me() -> TaskRef {
    runtime::current_task().expect("a running loop").expect("inside a task")
}

/// Python: `asyncio.current_task().get_name()`.
pub fn current_name() -> String {
    runtime::current_task().expect("a running loop").expect("inside a task").name()
}

/// Python: `asyncio.current_task().set_name(name)`.
pub fn name_current(name: &str) {
    runtime::current_task().expect("a running loop").expect("inside a task").set_name(name);
}

/// Python: `class Boom(Exception)`, the user error of the scenarios.
#[derive(Debug)]
pub struct Boom(pub String);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Boom {}

/// Python: `raise Boom(msg)`.
pub fn boom(msg: &str) -> Error {
    Error::new(Boom(msg.to_owned()))
}

/// An error rendered as the Python prelude's `ex(e)` renders an exception.
pub fn ex(e: &Error) -> String {
    match e.kind() {
        ErrorKind::Cancelled => format!("CancelledError({})", e.message()),
        ErrorKind::Timeout => "TimeoutError".to_owned(),
        ErrorKind::Failed => match e.downcast_ref::<Boom>() {
            Some(b) => format!("Boom({b})"),
            None => format!("Failed({})", e.message()),
        },
        ErrorKind::Group => {
            let inner: Vec<String> = e.errors().iter().map(ex).collect();
            format!("ExceptionGroup[{}]", inner.join(", "))
        }
        ErrorKind::Panicked => format!("Panicked({})", e.message()),
        kind => format!("{kind:?}({})", e.message()),
    }
}

/// An outcome as Python prints a value, or `ex` of the exception.
pub fn outcome<T: Py>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => v.py(),
        Err(e) => ex(e),
    }
}

/// Values rendered as Python's `str()` (and `repr()` inside lists).
pub trait Py {
    /// Python's `str(v)`.
    fn py(&self) -> String;
    /// Python's `repr(v)`.
    fn py_repr(&self) -> String {
        self.py()
    }
}

impl Py for () {
    fn py(&self) -> String {
        "None".to_owned()
    }
}

impl Py for bool {
    fn py(&self) -> String {
        if *self { "True" } else { "False" }.to_owned()
    }
}

macro_rules! py_int {
    ($($t:ty),*) => {$(
        impl Py for $t {
            fn py(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
py_int!(i32, i64, u32, u64, usize);

impl Py for &str {
    fn py(&self) -> String {
        (*self).to_owned()
    }
    fn py_repr(&self) -> String {
        format!("'{self}'")
    }
}

impl Py for String {
    fn py(&self) -> String {
        self.clone()
    }
    fn py_repr(&self) -> String {
        format!("'{self}'")
    }
}

impl<T: Py> Py for Option<T> {
    fn py(&self) -> String {
        match self {
            Some(v) => v.py(),
            None => "None".to_owned(),
        }
    }
    fn py_repr(&self) -> String {
        match self {
            Some(v) => v.py_repr(),
            None => "None".to_owned(),
        }
    }
}

impl<T: Py> Py for Vec<T> {
    fn py(&self) -> String {
        let items: Vec<String> = self.iter().map(Py::py_repr).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Py> Py for Result<T, Error> {
    fn py(&self) -> String {
        outcome(self)
    }
    fn py_repr(&self) -> String {
        match self {
            Ok(v) => v.py_repr(),
            Err(e) => ex(e),
        }
    }
}

/// Python: `print(sorted(names))`.
pub fn sorted_names(mut names: Vec<String>) -> String {
    names.sort();
    names.py()
}

/// Runs `main` on a fresh virtual clock; returns its result, the trace it
/// logged and the clock's final time.
pub fn run_virtual<T, F>(main: F) -> (Result<T, Error>, Vec<String>, Duration)
where
    T: 'static,
    F: FnOnce() -> Result<T, Error> + 'static,
{
    take_trace();
    let clock = Clock::virtual_time();
    let result = Builder::new().clock(clock.clone()).run(main);
    (result, take_trace(), clock.now())
}

/// Python: `go(main)`: runs `main` on the virtual clock and returns the
/// trace, ending with `result <value>` or `raised <error>`, then `end <time>`.
pub fn go<T, F>(main: F) -> Vec<String>
where
    T: Py + 'static,
    F: FnOnce() -> Result<T, Error> + 'static,
{
    let (result, mut trace, end) = run_virtual(main);
    trace.push(match &result {
        Ok(v) => format!("result {}", v.py()),
        Err(e) => format!("raised {}", ex(e)),
    });
    trace.push(format!("end {:.1}", end.as_secs_f64()));
    trace
}

/// A shared cell to hand a task's handle to tasks spawned before it.
pub type Slot<T> = Rc<RefCell<Option<Task<T>>>>;

/// An empty [`Slot`].
pub fn slot<T>() -> Slot<T> {
    Rc::new(RefCell::new(None))
}

/// Counts how often each named sentinel was dropped.
#[derive(Clone, Default)]
pub struct Drops(Rc<RefCell<Vec<String>>>);

impl Drops {
    /// A sentinel whose drop is recorded under `name`.
    pub fn sentinel(&self, name: &str) -> Sentinel {
        Sentinel { name: name.to_owned(), drops: self.clone(), armed: Cell::new(true) }
    }

    /// How often the sentinel `name` was dropped.
    pub fn count(&self, name: &str) -> usize {
        self.0.borrow().iter().filter(|n| *n == name).count()
    }

    /// Every drop so far, in order.
    pub fn all(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Records its drop in its [`Drops`].
pub struct Sentinel {
    name: String,
    drops: Drops,
    armed: Cell<bool>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        assert!(self.armed.replace(false), "sentinel {} dropped twice", self.name);
        self.drops.0.borrow_mut().push(self.name.clone());
    }
}

/// Set in a child process to the name of the test it runs as the child.
const CHILD_ENV: &str = "GENCORO_RUNTIME_TEST_CHILD";

/// Whether this process is the child running test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Re-runs this test binary with only test `name`, as a child process that
/// runs the scenario (see [`is_child`]); a scenario that may abort the
/// process cannot take the other tests down with it. Returns whether the
/// child exited successfully, and its stdout and stderr.
pub fn run_in_child(name: &str) -> (bool, String, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("run the test binary as a child");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
