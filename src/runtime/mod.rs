//! An asyncio-style event loop on stackful tasks.
//!
//! Waiting is a plain function call, [`sleep`], [`Task::join`],
//! [`gather`]: no `async`, no `.await`, from any call depth. Underneath, a
//! task is a [`Generator`](crate::Generator) that yields what it waits for
//! and is resumed with the outcome; the loop drives it exactly the way
//! CPython 3.11's `asyncio` drives a coroutine.
//!
//! ```
//! use std::time::Duration;
//! use gencoro::runtime::{self, Builder, Clock};
//!
//! // Python:
//! //   async def crawl(url, secs): print('crawling', url); await asyncio.sleep(secs); print('OK', url)
//! //   async def main(): await asyncio.gather(*(asyncio.create_task(crawl(u, s)) for ...))
//! fn crawl(url: &'static str, secs: u64) -> Result<(), runtime::Error> {
//!     println!("crawling {url}");
//!     runtime::sleep(Duration::from_secs(secs))?;
//!     println!("OK {url}");
//!     Ok(())
//! }
//!
//! let clock = Clock::virtual_time();
//! Builder::new().clock(clock.clone()).run(|| {
//!     let tasks = [("url_1", 1), ("url_2", 2)].map(|(u, s)| runtime::spawn(move || crawl(u, s)));
//!     runtime::gather(tasks)?;
//!     Ok(())
//! }).unwrap();
//! assert_eq!(clock.now(), Duration::from_secs(2));
//! ```
//!
//! # How the loop decides the order (CPython's `_run_once`)
//!
//! * The ready queue is FIFO. Each iteration runs exactly the entries that
//!   were ready when it began; what they schedule runs in the next one.
//! * Due timers are appended *behind* what is already ready, in deadline
//!   order; equal deadlines fire first in, first out.
//! * A task's timer only completes its sleep; the task resumes one
//!   iteration later, through its wake-up.
//! * A new task starts only when its creator next waits.
//! * Done callbacks and waiting tasks' wake-ups are queued in registration
//!   order when a task finishes; a callback is never called inline.
//!
//! # Cancellation
//!
//! [`Task::cancel`] makes the wait the task is suspended in return an
//! [`Error`] of kind [`ErrorKind::Cancelled`], at that very point. The task
//! may clean up and propagate it with `?` (the task then ends cancelled), or
//! ignore it and go on. Every waiting function documents what cancelling it
//! does to the work it waits on.
//!
//! # Threads
//!
//! The loop and its tasks stay on the thread that called [`run`]. Other
//! threads reach it through a [`LoopHandle`]: callbacks
//! ([`call_soon_threadsafe`](LoopHandle::call_soon_threadsafe)) and tasks
//! ([`spawn_threadsafe`](LoopHandle::spawn_threadsafe)). Blocking work goes
//! to the loop's thread pool with [`offload`]; a task waits on any
//! [`std::future::Future`] with [`await_future`].

mod bridge;
mod cancel;
mod clock;
mod combinators;
mod core;
mod error;
pub(crate) mod explore;
mod future;
pub(crate) mod park;
mod promise;
pub(crate) mod record;
mod report;
mod schedule;
mod task;
mod task_group;
mod timeout;
mod timers;

use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

pub use crate::blocking::offload;
pub(crate) use bridge::delivery;
pub use bridge::{LoopClosed, RemoteTask, await_future};
pub use clock::Clock;
pub use combinators::{
    AsCompleted, GatherHandle, ReturnWhen, Waitable, Waited, as_completed, gather, gather_cloned,
    gather_handle, gather_outcomes, shield, wait, wait_for,
};
pub(crate) use core::{spin_until, spinning_pays};
pub use error::{Error, ErrorKind};
pub use promise::{AlreadyDone, CallbackId, Promise};
pub use report::ExceptionContext;
pub use task::{Task, TaskBuilder, TaskRef, all_tasks, current_task, spawn};
pub use task_group::{TaskGroup, task_group};
pub use timeout::{Timeout, timeout, timeout_at};

use self::cancel::cancel_all;
use self::core::{
    Core, Handle, Installed, Remote, TimerAction, TimerCall, current_core, is_running, loop_running,
};
use self::task::TaskCell;
use crate::stack::DEFAULT_STACK_SIZE;

/// Runs `main` as a task on a new event loop with a real clock and returns
/// its result. Python: `asyncio.run(main())`.
///
/// When `main` returns, every task still pending is cancelled and its
/// cleanup runs before `run` returns. See [`Builder`] for the clock and the
/// stack size. Called on the main thread, a Ctrl-C cancels `main`, as in
/// `asyncio.run`; see [`Builder::cancel_on_ctrl_c`].
///
/// # Errors
///
/// `main`'s own failure; [`ErrorKind::NestedRun`] if a loop is already
/// running on this thread (`main` is then dropped without running);
/// [`ErrorKind::Deadlock`] if `main` waits on something that can never
/// happen.
pub fn run<T, F>(main: F) -> Result<T, Error>
where
    T: 'static,
    F: FnOnce() -> Result<T, Error> + 'static,
{
    Builder::new().run(main)
}

/// In a schedule-driven run (`gencoro::testing`): how long an offloaded
/// closure may run; `None` in any other run.
pub(crate) fn explore_offload_timeout() -> Option<Duration> {
    current_core().ok().and_then(|core| core.explore().map(explore::Explore::offload_timeout))
}

/// In a schedule-driven run, queues blocking work where the schedule orders
/// it (see `blocking::offload`).
pub(crate) fn queue_offloaded(job: Box<dyn FnOnce()>) {
    if let Ok(core) = current_core() {
        core.push(Handle::Offloaded(job));
    }
}

/// In a schedule-driven run, notes what its deadlock report should say.
pub(crate) fn explore_note(note: String) {
    if let Ok(core) = current_core() {
        if let Some(explore) = core.explore() {
            explore.note(note);
        }
    }
}

/// Ends a schedule-driven run at once, as a deadlock, for `why`.
pub(crate) fn explore_abort(why: String) {
    if let Ok(core) = current_core() {
        if let Some(explore) = core.explore() {
            explore.abort(why);
        }
    }
}

/// Configures an event loop: its clock and its tasks' stack size.
///
/// ```
/// use gencoro::runtime::{Builder, Clock};
///
/// let answer = Builder::new()
///     .clock(Clock::virtual_time())
///     .stack_size(64 * 1024)
///     .run(|| Ok(42))
///     .unwrap();
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone)]
pub struct Builder {
    clock: Clock,
    stack_size: usize,
    exception_handler: Option<report::Handler>,
    blocking: crate::blocking::PoolConfig,
    /// Set by `gencoro::testing` for a schedule-driven run.
    explore: Option<Rc<explore::Explore>>,
    /// `cancel_on_ctrl_c`: `None` is CPython's condition.
    ctrl_c: Option<bool>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("clock", &self.clock)
            .field("stack_size", &self.stack_size)
            .field("exception_handler", &self.exception_handler.as_ref().map(|_| "custom"))
            .field("blocking_pool", &format_args!("{}", self.blocking))
            .field("schedule_driven", &self.explore.is_some())
            .field("cancel_on_ctrl_c", &self.ctrl_c)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A real clock and [`DEFAULT_STACK_SIZE`] stacks.
    pub fn new() -> Builder {
        Builder {
            clock: Clock::real_time(),
            stack_size: DEFAULT_STACK_SIZE,
            exception_handler: None,
            blocking: crate::blocking::PoolConfig::default(),
            explore: None,
            ctrl_c: None,
        }
    }

    /// Makes the loop schedule-driven (see `gencoro::testing`).
    pub(crate) fn explore(mut self, explore: Rc<explore::Explore>) -> Builder {
        self.explore = Some(explore);
        self
    }

    /// The clock to run on; see [`Clock`].
    pub fn clock(mut self, clock: Clock) -> Builder {
        self.clock = clock;
        self
    }

    /// Usable stack bytes of every task.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// The most threads the loop's pool for [`offload`] runs at once;
    /// closures beyond that queue. Default: Python's `min(32, cores + 4)`.
    ///
    /// # Panics
    ///
    /// If `threads` is 0 (Python: `ValueError`).
    pub fn blocking_threads(mut self, threads: usize) -> Builder {
        assert!(threads > 0, "Builder::blocking_threads: the pool needs at least one thread");
        self.blocking.max_threads = threads;
        self
    }

    /// How long a thread of the loop's [`offload`] pool waits for more work
    /// before it exits. Default: 10 s.
    pub fn blocking_idle_timeout(mut self, timeout: Duration) -> Builder {
        self.blocking.idle_timeout = timeout;
        self
    }

    /// What the loop calls with what it cannot raise to anyone: a task
    /// whose failure nobody retrieved (`Task exception was never
    /// retrieved`), a task dropped while pending when the loop closes
    /// (`Task was destroyed but it is pending!`), a callback that panicked
    /// (`Exception in callback`). Each is reported once. The default prints
    /// one line on stderr. Python: `loop.set_exception_handler`.
    ///
    /// A failure counts as retrieved once anything read it: `join`,
    /// `result`, `exception` or `failure` on the task, or `gather`,
    /// `shield`, `wait_for` or a task group waiting on it, as in CPython.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use gencoro::runtime::{self, Builder, Clock, Error};
    ///
    /// let reports = Rc::new(RefCell::new(Vec::new()));
    /// let r = reports.clone();
    /// Builder::new()
    ///     .clock(Clock::virtual_time())
    ///     .exception_handler(move |cx| r.borrow_mut().push(cx.message().to_owned()))
    ///     .run(|| {
    ///         runtime::spawn(|| -> Result<(), Error> { Err(Error::new("lost")) });
    ///         runtime::sleep(std::time::Duration::ZERO)
    ///     })
    ///     .unwrap();
    /// assert_eq!(*reports.borrow(), ["Task exception was never retrieved"]);
    /// ```
    pub fn exception_handler(mut self, handler: impl Fn(&ExceptionContext) + 'static) -> Builder {
        self.exception_handler = Some(Rc::new(handler));
        self
    }

    /// Whether a Ctrl-C (SIGINT) during [`run`](Self::run) cancels the
    /// main task, as in `asyncio.run` (CPython 3.11's `asyncio.Runner`).
    ///
    /// By default it does when CPython's does: if `run` is called on the
    /// process's main thread and SIGINT has its default disposition (not
    /// ignored, no other handler; gencoro's own hook, installed by an
    /// earlier run or wait, counts as the default). Then, while the main
    /// task runs, the first SIGINT that no task waits for
    /// ([`net::ctrl_c`](crate::net::ctrl_c)) cancels it: the task unwinds
    /// from its wait, its cleanup runs, the other pending tasks are
    /// cancelled as at any end of `run`, and `run` returns the
    /// cancellation (unless the task handled it and returned something
    /// else). As in CPython, whose handler cancels the main task inside the
    /// signal handler, a SIGINT that comes while the main task is busy (it
    /// has not suspended since) reaches it at its next suspension, before
    /// anything else runs, and if it returns without suspending again it
    /// still ends cancelled. The program can then exit as it
    /// likes. A second SIGINT kills the process (the signal's default
    /// action; with several runs armed at once on several threads, once
    /// each has been cancelled), as `asyncio.run`'s second Ctrl-C raises
    /// `KeyboardInterrupt`: that is the way out of a main task that does
    /// not stop. See [`gencoro::net::signal`](crate::net::signal)
    /// for how signals are handled.
    ///
    /// `true` arms it on any thread and whatever SIGINT's disposition
    /// (gencoro then hooks SIGINT for the life of the process; a SIGINT
    /// nobody waits for still does what it did before), `false` never. A
    /// schedule-driven run (`gencoro::testing`) is never armed by default.
    /// Only `run` is: [`EventLoop::run_until_complete`] never cancels on
    /// Ctrl-C (neither does CPython's `loop.run_until_complete`); a task
    /// there can wait in [`net::ctrl_c`](crate::net::ctrl_c) instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gencoro::runtime::{self, Builder, ErrorKind};
    ///
    /// let e = Builder::new()
    ///     .cancel_on_ctrl_c(true)
    ///     .run(|| {
    ///         // What Ctrl-C in the terminal does: the process gets SIGINT.
    ///         signal_hook::low_level::raise(signal_hook::consts::SIGINT).unwrap();
    ///         runtime::sleep(Duration::from_secs(3600))?; // cancelled here
    ///         Ok(())
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Cancelled);
    /// ```
    ///
    /// The default, on a doctest's main thread (SIGINT not ignored by
    /// whoever started the tests):
    ///
    /// ```
    /// use std::time::Duration;
    /// use gencoro::runtime::{self, ErrorKind};
    ///
    /// # // As a program started with SIGINT at its default action, whatever
    /// # // started the tests (a background job starts with it ignored).
    /// # // SAFETY: SIG_DFL installs no handler; nothing else runs yet.
    /// # unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    /// let e = runtime::run(|| {
    ///     signal_hook::low_level::raise(signal_hook::consts::SIGINT).unwrap();
    ///     runtime::sleep(Duration::from_secs(10))?;
    ///     Ok(())
    /// })
    /// .unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::Cancelled);
    /// ```
    pub fn cancel_on_ctrl_c(mut self, cancel: bool) -> Builder {
        self.ctrl_c = Some(cancel);
        self
    }

    /// Runs `main` to completion; see [`run`].
    ///
    /// # Errors
    ///
    /// As [`run`].
    pub fn run<T, F>(self, main: F) -> Result<T, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        if loop_running() {
            return Err(Error::kind_msg(
                ErrorKind::NestedRun,
                "asyncio.run() cannot be called from a running event loop",
            ));
        }
        let ctrl_c = match self.ctrl_c {
            Some(cancel) => cancel,
            None => {
                self.explore.is_none() && crate::net::signal::sigint_is_default_on_main_thread()
            }
        };
        let event_loop = self.build();
        let outcome = if ctrl_c {
            event_loop.run_until_complete(move || {
                // Disarmed when `main` returns (or unwinds): a SIGINT
                // during the shutdown below does the default.
                let armed = crate::net::signal::CancelOnCtrlC::arm();
                let outcome = main();
                if let Some(armed) = armed {
                    armed.disarm();
                }
                outcome
            })
        } else {
            event_loop.run_until_complete(main)
        };
        let shutdown = {
            // Not installed only on a thread whose thread-locals are gone,
            // where the run above failed before it spawned anything.
            let _installed = Installed::new(&event_loop.core).ok();
            let cancelled = cancel_pending(&event_loop.core);
            // `shutdown_asyncgens()` and `shutdown_default_executor()` each
            // run as a task under `run_until_complete`: two iterations each,
            // in which whatever is ready still runs.
            event_loop.core.settle(4);
            // `shutdown_default_executor()` waits for the closures still
            // queued or running on the pool, with the loop running, and
            // joins its threads. A loop that never offloaded skips this.
            let core = &event_loop.core;
            crate::blocking::finish_run(core.id, |idle| {
                // A deadlock report here only means the last closure has
                // posted its result and is leaving its thread.
                let _ = core.run_until(idle);
            });
            cancelled
        };
        drop(event_loop);
        let value = outcome?;
        shutdown?;
        Ok(value)
    }

    /// Makes an event loop that runs when asked to. Python:
    /// `asyncio.new_event_loop()`.
    pub fn build(self) -> EventLoop {
        let core = Core::new(self.clock, self.stack_size, self.exception_handler, self.explore);
        crate::blocking::configure(core.id, self.blocking);
        let id = core.id;
        core.on_close(Box::new(move || crate::blocking::loop_closed(id)));
        EventLoop { core, owned: true }
    }
}

/// An event loop that keeps its pending tasks between runs. Python: the
/// loop object, with `run_until_complete`. Most programs want [`run`].
///
/// Dropping the loop drops the tasks still pending on it, unwinding their
/// stacks so their destructors run.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
/// use std::time::Duration;
///
/// let event_loop = Builder::new().clock(Clock::virtual_time()).build();
/// let background = event_loop.run_until_complete(|| {
///     Ok(runtime::spawn(|| { runtime::sleep(Duration::from_secs(5))?; Ok("late") }))
/// }).unwrap();
/// assert!(!background.is_done());
/// // The next run picks the pending task up again.
/// let value = event_loop.run_until_complete(move || background.join()).unwrap();
/// assert_eq!(value, "late");
/// ```
pub struct EventLoop {
    core: Rc<Core>,
    /// False for a handle to a loop some other `EventLoop` owns.
    owned: bool,
}

impl EventLoop {
    /// The loop running on this thread. Python: `asyncio.get_running_loop()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] outside a running loop.
    pub fn running() -> Result<EventLoop, Error> {
        Ok(EventLoop { core: current_core()?, owned: false })
    }

    /// Runs `main` as a task until it is done and returns its result. Other
    /// tasks stay pending for the next run. Python:
    /// `loop.run_until_complete(main())`.
    ///
    /// # Errors
    ///
    /// `main`'s failure; [`ErrorKind::NestedRun`] if this loop is running
    /// (`This event loop is already running`) or another loop is running on
    /// this thread; [`ErrorKind::Misuse`] if the loop is closed (`Event loop
    /// is closed`: a handle from [`running`](Self::running) kept after the
    /// loop's owner was dropped); [`ErrorKind::Deadlock`].
    pub fn run_until_complete<T, F>(&self, main: F) -> Result<T, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        self.check_can_run()?;
        let outcome = {
            let _installed = Installed::new(&self.core)?;
            (|| {
                let main_task = TaskCell::spawn(&self.core, None, main)?;
                self.core.run_until(|| main_task.header().is_done())?;
                // The stop callback runs one iteration after `main`
                // completes.
                self.core.settle(1);
                main_task.take_result()
            })()
        };
        if self.core.is_orphaned() {
            // Its owner was dropped during this run: tear down now.
            self.core.teardown();
        }
        outcome
    }

    /// Runs the loop until [`stop`](Self::stop) is called, from a task or a
    /// callback (or before: then one iteration runs). Pending tasks stay
    /// pending. Python: `loop.run_forever()`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gencoro::runtime::{self, Builder, Clock, EventLoop};
    ///
    /// let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    /// event_loop.spawn(|| {
    ///     runtime::sleep(Duration::from_secs(2))?;
    ///     EventLoop::running()?.stop();
    ///     Ok(())
    /// })?;
    /// event_loop.run_forever()?;
    /// assert_eq!(event_loop.clock().now(), Duration::from_secs(2));
    /// event_loop.close()?;
    /// # Ok::<(), runtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`run_until_complete`](Self::run_until_complete), except that
    /// [`ErrorKind::Deadlock`] means nothing can ever stop the loop.
    pub fn run_forever(&self) -> Result<(), Error> {
        self.check_can_run()?;
        let outcome = {
            let _installed = Installed::new(&self.core)?;
            self.core.run_forever()
        };
        if self.core.is_orphaned() {
            self.core.teardown();
        }
        outcome
    }

    /// Every task of this loop that is not done, whether the loop is running
    /// or not. Python: `asyncio.all_tasks(loop)`.
    pub fn all_tasks(&self) -> Vec<TaskRef> {
        task::task_refs(task::pending_tasks(&self.core))
    }

    /// Stops the loop after the iteration under way: a
    /// [`run_forever`](Self::run_forever) returns then, and a
    /// [`run_until_complete`](Self::run_until_complete) whose `main` is not
    /// done fails (`Event loop stopped before Future completed.`). Called
    /// while the loop is not running, the next run stops after one
    /// iteration. Python: `loop.stop()`.
    pub fn stop(&self) {
        self.core.request_stop();
    }

    /// Closes the loop: drops every task still pending (unwinding its
    /// stack, so its destructors run) and everything queued. A closed loop
    /// cannot run again. Dropping the owning `EventLoop` does the same.
    /// Closing a closed loop does nothing. Python: `loop.close()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misuse`] if the loop is running (`Cannot close a running
    /// event loop`).
    pub fn close(&self) -> Result<(), Error> {
        if is_running(&self.core) {
            return Err(Error::kind_msg(ErrorKind::Misuse, "Cannot close a running event loop"));
        }
        if !self.core.is_closed() {
            self.core.teardown();
        }
        Ok(())
    }

    /// Refuses to run a loop that is running, closed, or while another loop
    /// runs on this thread.
    fn check_can_run(&self) -> Result<(), Error> {
        if is_running(&self.core) {
            return Err(Error::kind_msg(
                ErrorKind::NestedRun,
                "This event loop is already running",
            ));
        }
        if loop_running() {
            return Err(Error::kind_msg(
                ErrorKind::NestedRun,
                "Cannot run the event loop while another loop is running",
            ));
        }
        self.check_open()
    }

    /// Makes a task on this loop, running or not; it starts when the loop
    /// next runs. Python: `loop.create_task(coro)`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Misuse`] if the loop is closed, or for a stack size that
    /// cannot be had.
    pub fn spawn<T, F>(&self, body: F) -> Result<Task<T>, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        self.check_open()?;
        Ok(Task { cell: TaskCell::spawn(&self.core, None, body)? })
    }

    /// Whether the loop has been closed: its owner was dropped, so it can
    /// never run again. Only a handle from [`running`](Self::running) can
    /// outlive that. Python: `loop.is_closed()`.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.core.is_closed() {
            Err(Error::kind_msg(ErrorKind::Misuse, "Event loop is closed"))
        } else {
            Ok(())
        }
    }

    /// A process-wide unique id: two handles with the same id are the same
    /// loop (as `==` says too).
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// The loop's clock.
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        // A handle from `running()` must not tear down the loop it borrows.
        if !self.owned {
            return;
        }
        if is_running(&self.core) {
            // Dropped from inside its own run (through a handle that run
            // was started from): that run tears it down when it ends.
            self.core.set_orphaned();
        } else {
            self.core.teardown();
        }
    }
}

/// Two handles are equal when they are handles of the same loop (say, the
/// owner and a handle from [`EventLoop::running`]).
impl PartialEq for EventLoop {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.core, &other.core)
    }
}

impl Eq for EventLoop {}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop").field("core", &self.core).finish()
    }
}

/// Cancels every pending task and runs the loop until they are all done.
/// Python: `asyncio.runners._cancel_all_tasks`.
fn cancel_pending(core: &Rc<Core>) -> Result<(), Error> {
    let pending = task::pending_tasks(core);
    if pending.is_empty() {
        return Ok(());
    }
    cancel_all(&pending, core, None);
    // Done-ness never reverts, so a cursor over the tasks checks each one
    // once in all, not every task in every iteration.
    let cursor = std::cell::Cell::new(0);
    core.run_until(|| {
        let mut i = cursor.get();
        while pending.get(i).is_some_and(|t| t.header().is_done()) {
            i += 1;
        }
        cursor.set(i);
        i == pending.len()
    })?;
    // `run_until_complete(gather(*pending))`: the gather completes in the
    // last child's done callback, one iteration later, and the loop stops
    // one iteration after that.
    core.settle(2);
    for task in &pending {
        // Python: `task.exception()`, which marks it retrieved.
        task.header().mark_retrieved();
        if let Some(e) = task.failure().filter(|e| !e.is_cancelled()) {
            core.report(ExceptionContext::new(
                "unhandled exception during run() shutdown",
                Some(e),
                Some(task.header().name()),
            ));
        }
    }
    Ok(())
}

/// Suspends the current task for `delay`. `sleep(Duration::ZERO)` yields
/// to the back of the ready queue and returns in the next iteration.
/// Python: `asyncio.sleep(delay)`.
///
/// # Cancellation
///
/// Cancelling the task while it sleeps makes `sleep` return the
/// cancellation at once (in the next iteration); the timer is dropped.
///
/// # Errors
///
/// A cancellation, or [`ErrorKind::NoRunningLoop`] outside a task.
#[inline(always)]
pub fn sleep(delay: Duration) -> Result<(), Error> {
    if delay.is_zero() { task::yield_now() } else { task::sleep_timer(delay) }
}

/// The loop's time: how long its clock has run. Python: `loop.time()`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
pub fn time() -> Result<Duration, Error> {
    Ok(current_core()?.now())
}

/// The running loop's readiness driver (made on first use), for
/// `gencoro::net`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop; [`ErrorKind::Io`]
/// if the system refused a poll.
///
/// Returns the driver and the loop it belongs to (registrations remember
/// it, so a wait on a registered socket finds it without this call).
pub(crate) fn io_driver() -> Result<(Rc<crate::net::driver::Driver>, LoopRef), Error> {
    let core = current_core()?;
    Ok((core.io_driver()?, LoopRef(Rc::downgrade(&core))))
}

/// A loop, by identity, for code above the runtime that remembers which
/// loop it belongs to (a socket's registration). Keeps nothing alive but
/// the allocation, so the identity is never reused while it exists.
pub(crate) struct LoopRef(pub(crate) Weak<Core>);

/// A callback scheduled on the loop; cancel it before it runs with
/// [`cancel`](CallHandle::cancel). Python: `Handle` / `TimerHandle`.
pub struct CallHandle {
    call: Rc<TimerCall>,
}

impl CallHandle {
    /// Keeps the callback from running, if it has not run yet.
    pub fn cancel(&self) {
        self.call.cancel();
    }
}

impl fmt::Debug for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHandle").finish_non_exhaustive()
    }
}

/// Runs `callback` in the next loop iteration, after everything already
/// ready. Python: `loop.call_soon`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
pub fn call_soon(callback: impl FnOnce() + 'static) -> Result<CallHandle, Error> {
    let core = current_core()?;
    let call = TimerCall::new(Box::new(callback));
    core.push(Handle::Timer(TimerAction::Call(call.clone())));
    Ok(CallHandle { call })
}

/// Runs `callback` once `delay` has passed. Python: `loop.call_later`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
pub fn call_later(delay: Duration, callback: impl FnOnce() + 'static) -> Result<CallHandle, Error> {
    let core = current_core()?;
    let call = core.call_at(core.now().saturating_add(delay), Box::new(callback));
    Ok(CallHandle { call })
}

/// A handle other threads use to reach the loop: it is `Send` and `Sync`.
///
/// Work handed over with [`call_soon_threadsafe`](Self::call_soon_threadsafe)
/// runs on the loop's thread in a coming iteration, and wakes a loop that is
/// waiting for its next timer. While an [`InFlight`] guard lives, the loop
/// knows outside work is under way and does not report a deadlock.
#[derive(Clone)]
pub struct LoopHandle {
    remote: Arc<Remote>,
}

impl LoopHandle {
    /// The handle of the running loop. Python: `get_running_loop()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] outside a running loop.
    pub fn current() -> Result<LoopHandle, Error> {
        Ok(LoopHandle { remote: current_core()?.remote() })
    }

    /// Schedules `callback` on the loop's thread. Python:
    /// `loop.call_soon_threadsafe`. Returns false if the loop has ended.
    pub fn call_soon_threadsafe(&self, callback: impl FnOnce() + Send + 'static) -> bool {
        self.remote.post(Box::new(callback))
    }

    /// Runs `callback` on the loop's thread as soon as the loop takes it in
    /// (at its next iteration, or at once if it is waiting), before the
    /// handles already ready: what a Python signal handler does between
    /// two steps. Returns false if the loop has ended. For `net::signal`.
    pub(crate) fn interrupt_threadsafe(&self, callback: impl FnOnce() + Send + 'static) -> bool {
        self.remote.interrupt(Box::new(callback))
    }

    /// Submits `body` to become a task on the loop, from any thread, and
    /// returns a handle to its outcome that this thread can block on, poll
    /// or `.await`. Python: `asyncio.run_coroutine_threadsafe(coro, loop)`.
    ///
    /// The task is spawned on the loop's thread in a coming iteration (as
    /// [`spawn`] there would), runs like any task, and its outcome goes to
    /// the handle. Every accepted submission runs exactly once, or, if the
    /// loop closes before the task could start or finish, its handle
    /// reports that as a cancellation: nothing is lost silently.
    ///
    /// ```
    /// use gencoro::runtime::{self, LoopHandle};
    ///
    /// let v = runtime::run(|| {
    ///     let handle = LoopHandle::current()?;
    ///     let worker = std::thread::spawn(move || {
    ///         let task = handle.spawn_threadsafe(|| Ok(6 * 7)).expect("the loop runs");
    ///         task.wait() // blocks the worker thread, not the loop
    ///     });
    ///     runtime::offload(move || worker.join().unwrap())?
    /// });
    /// assert_eq!(v.unwrap(), 42);
    /// ```
    ///
    /// # Errors
    ///
    /// [`LoopClosed`], with `body` inside, unrun, if the loop has ended.
    pub fn spawn_threadsafe<T, F>(&self, body: F) -> Result<RemoteTask<T>, LoopClosed<F>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        bridge::spawn_threadsafe(&self.remote, body)
    }

    /// Declares outside work under way until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.remote.begin_work();
        InFlight { remote: self.remote.clone() }
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("in_flight", &self.remote.work_in_flight()).finish()
    }
}

/// Outside work the loop waits for; see [`LoopHandle::in_flight`].
pub struct InFlight {
    remote: Arc<Remote>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.remote.end_work();
    }
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight").finish_non_exhaustive()
    }
}
