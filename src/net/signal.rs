//! Waiting for SIGINT (Ctrl-C) and SIGTERM in a task, and what
//! [`runtime::run`] does on Ctrl-C. Python:
//! `loop.add_signal_handler`, and `asyncio.Runner`'s SIGINT handler.
//!
//! [`ctrl_c`] (or [`wait`] with a [`Signal`]) is a plain call that
//! suspends the task until the signal arrives; other tasks run meanwhile.
//!
//! ```
//! use gencoro::net::{self, signal};
//! use gencoro::runtime::{self, Builder, Clock};
//!
//! let got = Builder::new().clock(Clock::virtual_time()).run(|| {
//!     let waiter = runtime::spawn(|| net::ctrl_c());
//!     runtime::sleep(std::time::Duration::ZERO)?; // the waiter waits now
//!     // What a Ctrl-C in the terminal does: the process gets SIGINT.
//!     signal_hook::low_level::raise(signal::Signal::Interrupt.number()).unwrap();
//!     waiter.join()?;
//!     Ok("interrupted")
//! });
//! assert_eq!(got.unwrap(), "interrupted");
//! ```
//!
//! # Who gets a signal
//!
//! Each SIGINT or SIGTERM that gencoro handles goes to exactly one of, in
//! this order:
//!
//! 1. every task, of any loop in the process, waiting in [`wait`] for it
//!    at that moment (a broadcast, as every `loop.add_signal_handler`
//!    callback would run);
//! 2. for SIGINT, else: the main task of a [`run`](crate::runtime::run)
//!    that cancels on Ctrl-C (see
//!    [`Builder::cancel_on_ctrl_c`](crate::runtime::Builder::cancel_on_ctrl_c)),
//!    which it cancels, once (with several such runs at once, on several
//!    threads, the one armed last);
//! 3. else: the disposition the signal had before gencoro first handled
//!    it: the default action (SIGINT and SIGTERM terminate the process) if
//!    it was the default, nothing more if it was ignored or another
//!    handler (which was chained to and has run already).
//!
//! So a process in which nobody waits for a signal behaves as if gencoro
//! had never handled it, and a second Ctrl-C after the one that cancelled
//! `run`'s main task kills the process, as with `asyncio.run` (whose second
//! Ctrl-C raises `KeyboardInterrupt` wherever the program is). A signal
//! that arrives between two waits of a task, with nobody else waiting, is
//! not kept for the next wait: it takes its course by rule 2 or 3. Nor is
//! one that every task it woke gave up: if each of those waits was
//! cancelled after the signal woke it and before it returned, the signal
//! goes on to rule 2 or 3, as if nobody had waited.
//!
//! Two things follow from the signals being handled on a thread of their
//! own (see below), shortly after the process receives them, rather than
//! inside the signal handler:
//!
//! - The rules are applied when gencoro handles a signal, not at the
//!   instant it arrives: a wait that ends in between (cancelled in the same
//!   step that raised the signal, say) does not count as waiting, and the
//!   signal takes its course by rule 2 or 3.
//! - Signals of one kind that arrive before gencoro has handled the
//!   previous one may be handled as one, as POSIX merges a pending signal
//!   with a second of its kind: two Ctrl-C pressed at once may cancel
//!   `run`'s main task without the second one killing the process.

//! # How
//!
//! The first wait (or the first `run` that cancels on Ctrl-C) hooks the
//! signal with [`signal_hook`], process-wide, and starts one thread,
//! `gencoro-signals`, that receives the signals from the hook's self-pipe
//! and applies the rules above: a waiter is woken through its loop's
//! channel ([`await_future`](crate::runtime::await_future) underneath, so
//! a waiting task is outside work: the loop blocks for it rather than
//! report a deadlock, and on the virtual clock time goes on to the next
//! timer meanwhile), and `run`'s main task is cancelled by a call posted
//! to its loop. A loop's own wait step is untouched: a process that never
//! waits for a signal, and whose runs do not cancel on Ctrl-C, installs no
//! handler and starts no thread. The hook stays installed for the life of
//! the process (`signal_hook` never removes one); rule 3 is what keeps it
//! invisible while nobody waits.
//!
//! A schedule-driven run ([`gencoro::testing`](crate::testing)) never
//! waits for other threads, so a task waiting for a signal there is stuck
//! unless the signal was already delivered: the run reports a deadlock.
//! A scenario that raises a signal itself may therefore see it handled
//! after the run has ended and its waiter is gone, by rule 3: a real
//! SIGTERM or SIGINT raised in a property test can end the test process.
//!
//! Another handler installed for the same signal after gencoro's (with
//! `libc::sigaction` directly) replaces it, and gencoro's waits then never
//! return; one added through `signal_hook` runs beside it, but rule 3 may
//! still terminate the process when no gencoro task waits.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::runtime::{self, Error, ErrorKind, LoopHandle, TaskRef};

/// A signal a task can wait for.
///
/// ```
/// use gencoro::net::signal::Signal;
///
/// assert_eq!(Signal::Interrupt.number(), 2); // SIGINT on Linux
/// assert_eq!(Signal::Terminate.name(), "SIGTERM");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT: what Ctrl-C in a terminal sends. Python: `signal.SIGINT`,
    /// `KeyboardInterrupt`.
    Interrupt,
    /// SIGTERM: the polite request to end (`kill PID`, a service manager
    /// stopping the program). Python: `signal.SIGTERM`.
    Terminate,
}

impl Signal {
    const ALL: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

    /// The signal's number on this system.
    ///
    /// ```
    /// use gencoro::net::signal::Signal;
    ///
    /// assert_eq!(Signal::Terminate.number(), 15); // Linux
    /// ```
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => SIGINT,
            Signal::Terminate => SIGTERM,
        }
    }

    /// The signal's name, `SIGINT` or `SIGTERM`.
    ///
    /// ```
    /// use gencoro::net::signal::Signal;
    ///
    /// assert_eq!(Signal::Interrupt.name(), "SIGINT");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    fn index(self) -> usize {
        match self {
            Signal::Interrupt => 0,
            Signal::Terminate => 1,
        }
    }

    fn from_number(number: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == number)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Suspends the task until the process receives SIGINT (Ctrl-C). Python:
/// `loop.add_signal_handler(signal.SIGINT, fut.set_result, None); await
/// fut`. The same as [`wait`]`(Signal::Interrupt)`; see the
/// [module](self) for who gets a signal.
///
/// ```no_run
/// use gencoro::net;
/// use gencoro::runtime;
///
/// runtime::run(|| {
///     println!("press Ctrl-C to stop");
///     net::ctrl_c()?;
///     println!("stopping");
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As [`wait`].
pub fn ctrl_c() -> Result<(), Error> {
    wait(Signal::Interrupt)
}

/// Suspends the task until the process receives `signal`, sent after the
/// call began. Every task waiting for the same signal when it arrives
/// returns (see the [module](self)).
///
/// The first wait for a signal hooks it, process-wide, for good; while no
/// task waits, the signal does what it did before (for SIGINT and SIGTERM
/// by default: terminate the process).
///
/// Cancelled while it waits, it returns the cancellation and no longer
/// counts as waiting: a signal that comes later takes its course without
/// it. Cancelled after the signal woke it but before it returned, it
/// returns the cancellation too, and gives the signal up: if no other
/// task it woke returns it, the signal takes its course by rule 2 or 3 of
/// the [module](self) docs.
///
/// ```
/// use gencoro::net::signal::{self, Signal};
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let order = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let stop = runtime::spawn(|| {
///         signal::wait(Signal::Terminate)?;
///         Ok("SIGTERM")
///     });
///     runtime::sleep(std::time::Duration::ZERO)?;
///     signal_hook::low_level::raise(Signal::Terminate.number()).unwrap();
///     stop.join()
/// });
/// assert_eq!(order.unwrap(), "SIGTERM");
/// ```
///
/// # Errors
///
/// The cancellation of the wait;
/// [`ErrorKind::NoRunningLoop`] outside a task;
/// [`ErrorKind::Io`] if the signal could not be hooked (the system
/// refused the self-pipe or the thread).
pub fn wait(signal: Signal) -> Result<(), Error> {
    if runtime::current_task()?.is_none() {
        return Err(Error::kind_msg(
            ErrorKind::NoRunningLoop,
            "signal.wait() must be called from a task",
        ));
    }
    let slot = Arc::new(Slot {
        fired: AtomicBool::new(false),
        waker: Mutex::new(None),
        delivery: Mutex::new(None),
    });
    let id = with_dispatcher(|d| {
        d.hook(signal)?;
        let id = d.next_id();
        d.waiters.push(Waiter { id, signal, slot: slot.clone() });
        Ok(id)
    })?;
    // Registered before the task suspends: a signal that arrives from now
    // on is this call's. The future takes the entry out when it is dropped
    // (returned, cancelled, unwound).
    //
    // The signal is received when this call returns it, not when its
    // future completes: a task cancelled in between (its future done, the
    // task not resumed yet) gives it up, as one cancelled while it waited.
    let claim = Claim(slot.clone());
    runtime::await_future(SignalFuture { id, slot })?;
    claim.receive();
    Ok(())
}

/// A wait's share of the delivery that fired it: received when the wait
/// returns the signal, given up if the wait ends any other way.
struct Claim(Arc<Slot>);

impl Claim {
    fn receive(self) {
        if let Some(delivery) = lock(&self.0.delivery).take() {
            delivery.receive();
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Fired, but the wait ends without the signal (cancelled after it
        // was woken, or unwound): it gives its share of the delivery up.
        let unclaimed = lock(&self.0.delivery).take();
        if let Some(delivery) = unclaimed {
            delivery.give_up();
        }
    }
}

/// What a waiting call and the dispatcher share.
struct Slot {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// The delivery that fired the slot, until its wait returns it or
    /// gives it up.
    delivery: Mutex<Option<Arc<Delivery>>>,
}

impl Slot {
    fn fire(&self, delivery: Arc<Delivery>) {
        *lock(&self.delivery) = Some(delivery);
        self.fired.store(true, Ordering::SeqCst);
        if let Some(waker) = lock(&self.waker).take() {
            waker.wake();
        }
    }
}

/// One signal handed to the tasks that waited for it. If every one of
/// them gives it up (each wait cancelled after the signal woke it, before
/// it returned), the signal was not received by any: it takes its course
/// by rules 2 and 3, as if nobody had waited. Python: the handler of
/// `add_signal_handler` runs whatever happens to the tasks it would wake.
struct Delivery {
    signal: Signal,
    /// Woken waits that have neither returned the signal nor given it up.
    outstanding: AtomicUsize,
    /// A wait returned the signal.
    received: AtomicBool,
}

impl Delivery {
    /// A woken wait returned the signal.
    fn receive(&self) {
        self.received.store(true, Ordering::SeqCst);
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
    }

    /// A woken wait ended without returning the signal.
    fn give_up(&self) {
        if self.outstanding.fetch_sub(1, Ordering::SeqCst) == 1
            && !self.received.load(Ordering::SeqCst)
        {
            fall_through(lock(&DISPATCHER), self.signal);
        }
    }
}

/// The wait as a future, for `await_future`.
struct SignalFuture {
    id: u64,
    slot: Arc<Slot>,
}

impl Future for SignalFuture {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *lock(&self.slot.waker) = Some(cx.waker().clone());
        // Fired between the check and the store: the dispatcher found no
        // waker to wake.
        if self.slot.fired.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for SignalFuture {
    fn drop(&mut self) {
        let id = self.id;
        if let Some(d) = lock(&DISPATCHER).as_mut() {
            d.waiters.retain(|w| w.id != id);
        }
    }
}

struct Waiter {
    id: u64,
    signal: Signal,
    slot: Arc<Slot>,
}

/// A signal hooked by gencoro.
#[derive(Clone, Copy)]
struct Hook {
    /// The signal's disposition was the default before the hook (rule 3).
    was_default: bool,
    /// The handler the hook installed, to recognise it later.
    handler: Option<libc::sighandler_t>,
}

/// A `run` whose main task a SIGINT cancels.
struct ArmedRun {
    id: u64,
    handle: LoopHandle,
    interrupt: Arc<AtomicU8>,
}

/// Where an armed run's interruption stands (`ArmedRun::interrupt`).
const NOT_INTERRUPTED: u8 = 0;
/// A SIGINT chose this run: its cancellation is posted to the loop.
const INTERRUPTED: u8 = 1;
/// The posted cancellation reached the main task.
const CANCEL_DELIVERED: u8 = 2;

/// The process-wide state behind the `gencoro-signals` thread.
struct Dispatcher {
    handle: signal_hook::iterator::Handle,
    hooks: [Option<Hook>; 2],
    waiters: Vec<Waiter>,
    /// Most recent last.
    runs: Vec<ArmedRun>,
    next_id: u64,
}

impl Dispatcher {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Hooks `signal` if it is not yet.
    fn hook(&mut self, signal: Signal) -> io::Result<()> {
        if self.hooks[signal.index()].is_some() {
            return Ok(());
        }
        let was_default = current_handler(signal.number()) == Some(libc::SIG_DFL);
        self.handle.add_signal(signal.number())?;
        let handler = current_handler(signal.number());
        self.hooks[signal.index()] = Some(Hook { was_default, handler });
        Ok(())
    }
}

static DISPATCHER: Mutex<Option<Dispatcher>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the dispatcher, starting it (its pipe and its thread) first
/// if need be.
fn with_dispatcher<R>(f: impl FnOnce(&mut Dispatcher) -> io::Result<R>) -> Result<R, Error> {
    let mut guard = lock(&DISPATCHER);
    if guard.is_none() {
        let mut signals = signal_hook::iterator::Signals::new(std::iter::empty::<i32>())?;
        let handle = signals.handle();
        crate::blocking::start_service_thread("gencoro-signals", move || {
            for number in signals.forever() {
                if let Some(signal) = Signal::from_number(number) {
                    dispatch(signal);
                }
            }
        })?;
        *guard = Some(Dispatcher {
            handle,
            hooks: [None; 2],
            waiters: Vec::new(),
            runs: Vec::new(),
            next_id: 0,
        });
    }
    let dispatcher = guard.as_mut().expect("the dispatcher was just made");
    Ok(f(dispatcher)?)
}

/// Applies the rules of the module docs to one received signal.
fn dispatch(signal: Signal) {
    let mut guard = lock(&DISPATCHER);
    let Some(d) = guard.as_mut() else { return };
    let mut woken = Vec::new();
    d.waiters.retain(|w| {
        let take = w.signal == signal;
        if take {
            woken.push(w.slot.clone());
        }
        !take
    });
    if !woken.is_empty() {
        drop(guard);
        let delivery = Arc::new(Delivery {
            signal,
            outstanding: AtomicUsize::new(woken.len()),
            received: AtomicBool::new(false),
        });
        for slot in woken {
            slot.fire(delivery.clone());
        }
        return;
    }
    fall_through(guard, signal);
}

/// Rules 2 and 3 for a signal no waiting task received. Takes the lock's
/// guard, to release it before the default action.
fn fall_through(mut guard: MutexGuard<'_, Option<Dispatcher>>, signal: Signal) {
    let Some(d) = guard.as_mut() else { return };
    if signal == Signal::Interrupt {
        while let Some(run) = d.runs.pop() {
            let id = run.id;
            // Marked before it is posted: a main task that returns before
            // the call runs still ends cancelled (see `disarm`).
            run.interrupt.store(INTERRUPTED, Ordering::SeqCst);
            let interrupt = run.interrupt.clone();
            // Run before anything already ready, as `Runner._on_sigint`
            // cancels the main task inside the signal handler: a busy main
            // task gets the cancellation at its next suspension.
            let posted = run.handle.interrupt_threadsafe(move || {
                interrupt.store(CANCEL_DELIVERED, Ordering::SeqCst);
                cancel_main(id);
            });
            if posted {
                return;
            }
            // That loop has ended: the next armed run, if any.
        }
    }
    let was_default = d.hooks[signal.index()].is_some_and(|h| h.was_default);
    drop(guard);
    if was_default {
        // Resets the default disposition and raises the signal again:
        // SIGINT and SIGTERM end the process here.
        let _ = signal_hook::low_level::emulate_default_handler(signal.number());
    }
}

thread_local! {
    /// The main tasks of this thread's armed runs, for the cancellation
    /// the dispatcher posts.
    static MAIN_TASKS: std::cell::RefCell<Vec<(u64, TaskRef)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// On the loop's thread: cancels the main task of armed run `id`.
/// Python: `Runner._on_sigint`'s `main_task.cancel()`.
fn cancel_main(id: u64) {
    let task = MAIN_TASKS
        .try_with(|m| m.borrow().iter().find(|(i, _)| *i == id).map(|(_, t)| t.clone()))
        .ok()
        .flatten();
    if let Some(task) = task {
        task.cancel();
    }
}

/// While it lives, a SIGINT nobody waits for cancels the running task
/// (the main task of a `run`), once. Made inside that task.
pub(crate) struct CancelOnCtrlC {
    id: u64,
    interrupt: Arc<AtomicU8>,
}

impl CancelOnCtrlC {
    /// Arms the running task; `None` if it cannot be (no task, or the
    /// signal could not be hooked): the run then goes on without.
    pub(crate) fn arm() -> Option<CancelOnCtrlC> {
        let task = runtime::current_task().ok().flatten()?;
        let handle = LoopHandle::current().ok()?;
        let interrupt = Arc::new(AtomicU8::new(NOT_INTERRUPTED));
        let id = with_dispatcher(|d| {
            d.hook(Signal::Interrupt)?;
            let id = d.next_id();
            d.runs.push(ArmedRun { id, handle, interrupt: interrupt.clone() });
            Ok(id)
        })
        .ok()?;
        MAIN_TASKS.with(|m| m.borrow_mut().push((id, task)));
        Some(CancelOnCtrlC { id, interrupt })
    }

    /// Disarms, in the main task as its body returns; from then on a
    /// SIGINT does the default. If a SIGINT chose this run but its posted
    /// cancellation has not reached the task (the body never suspended
    /// since: a busy main task), the task cancels itself, so it ends
    /// cancelled unless it failed. Python: `Runner._on_sigint`'s
    /// `main_task.cancel()` runs in the signal handler, and a task
    /// cancelled right before its coroutine returns ends cancelled.
    pub(crate) fn disarm(self) {
        let interrupt = self.interrupt.clone();
        // Out of the dispatcher's list first: no SIGINT chooses the run
        // after the check below.
        drop(self);
        if interrupt.load(Ordering::SeqCst) == INTERRUPTED {
            if let Ok(Some(task)) = runtime::current_task() {
                task.cancel();
            }
        }
    }
}

impl Drop for CancelOnCtrlC {
    /// Takes the run out of the dispatcher's list: after this, no SIGINT
    /// chooses it.
    fn drop(&mut self) {
        let id = self.id;
        if let Some(d) = lock(&DISPATCHER).as_mut() {
            d.runs.retain(|r| r.id != id);
        }
        let _ = MAIN_TASKS.try_with(|m| m.borrow_mut().retain(|(i, _)| *i != id));
    }
}

impl fmt::Debug for CancelOnCtrlC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelOnCtrlC").field("id", &self.id).finish()
    }
}

/// CPython's condition for `asyncio.run` to handle SIGINT: on the main
/// thread, with SIGINT's handler the default one. Here the default is
/// `SIG_DFL`, or gencoro's own hook over it (a SIGINT nobody waits for
/// then does the default).
pub(crate) fn sigint_is_default_on_main_thread() -> bool {
    thread_local! {
        /// Asked once per thread: a thread does not become the main one.
        static MAIN: bool = is_main_thread();
    }
    if !MAIN.try_with(|m| *m).unwrap_or(false) {
        return false;
    }
    let current = current_handler(SIGINT);
    if current == Some(libc::SIG_DFL) {
        return true;
    }
    let hook = lock(&DISPATCHER).as_ref().and_then(|d| d.hooks[Signal::Interrupt.index()]);
    hook.is_some_and(|h| h.was_default && h.handler.is_some() && h.handler == current)
}

#[cfg(target_os = "linux")]
fn is_main_thread() -> bool {
    // The main thread's id is the process id. `/proc/thread-self` names
    // the calling thread as `<pid>/task/<tid>`.
    std::fs::read_link("/proc/thread-self").ok().is_some_and(|link| {
        link.file_name().and_then(|tid| tid.to_str()).and_then(|tid| tid.parse::<u32>().ok())
            == Some(std::process::id())
    })
}

#[cfg(not(target_os = "linux"))]
fn is_main_thread() -> bool {
    // The standard library names the main thread "main".
    std::thread::current().name() == Some("main")
}

/// The handler `signal` has now (`SIG_DFL`, `SIG_IGN`, or a function);
/// `None` if the system would not say.
fn current_handler(signal: i32) -> Option<libc::sighandler_t> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null `act`, `sigaction` changes nothing and only
    // writes the current disposition of `signal` into `old`, a valid,
    // writable `struct sigaction`; all-zero bytes are a valid value of that
    // plain C struct, so `old` is initialised whether or not the call
    // succeeded.
    let old = unsafe {
        if libc::sigaction(signal, std::ptr::null(), old.as_mut_ptr()) != 0 {
            return None;
        }
        old.assume_init()
    };
    Some(old.sa_sigaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_know_their_numbers_and_names() {
        for signal in Signal::ALL {
            assert_eq!(Signal::from_number(signal.number()), Some(signal));
            assert_eq!(signal.to_string(), signal.name());
        }
        assert_eq!(Signal::from_number(SIGTERM + 100), None);
    }

    #[test]
    fn a_test_thread_is_not_the_main_thread() {
        assert!(!is_main_thread());
        assert!(!sigint_is_default_on_main_thread());
    }

    #[test]
    fn a_wait_outside_a_task_is_refused_and_hooks_nothing() {
        let e = wait(Signal::Terminate).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoRunningLoop);
        // No other test of this binary waits for a signal.
        assert!(lock(&DISPATCHER).as_ref().is_none_or(|d| d.hooks.iter().all(Option::is_none)));
    }
}
