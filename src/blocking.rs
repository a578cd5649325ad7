//! Blocking work: the thread pool behind [`runtime::offload`], and the only
//! code in the crate that starts threads.
//!
//! Python: the default `ThreadPoolExecutor` of `loop.run_in_executor(None,
//! f)` and `asyncio.to_thread(f)`.
//!
//! Each event loop has a pool of its own, made the first time a task of that
//! loop offloads a closure. It starts threads lazily, one when a job is
//! queued and no thread is free to take it, up to the loop's limit
//! ([`Builder::blocking_threads`](crate::runtime::Builder::blocking_threads),
//! by default Python's `min(32, cores + 4)`); jobs beyond the limit queue,
//! first in, first out. A thread that has been idle for the idle timeout
//! ([`Builder::blocking_idle_timeout`](crate::runtime::Builder::blocking_idle_timeout),
//! 10 s by default) exits.
//!
//! [`runtime::run`] shuts the pool down before it
//! returns: it lets every queued and running closure finish (the loop keeps
//! running meanwhile, so a closure may still reach it through a
//! [`LoopHandle`](crate::runtime::LoopHandle)) and joins every thread, so no
//! pool thread outlives the run. Closing an [`EventLoop`]
//! by hand (or dropping it) does not wait, as Python's `loop.close()` does
//! not: the pool's threads finish the closures they run, drop their results
//! and exit.
//!
//! # How a result comes back
//!
//! The job holds an [`InFlight`](crate::runtime::InFlight) guard of its loop
//! from the moment it is queued, so the loop knows outside work is under
//! way: with nothing else to do it waits on its channel (no deadlock
//! report), and on the virtual clock time stands still until the job ends.
//! The closure's outcome (its value, or its panic's payload) goes back to
//! the loop's thread over the loop's crossbeam channel, which wakes the
//! loop; there it completes the waiting task's wait.
//!
//! # Spinning, briefly
//!
//! A wake-up through a futex costs a system call on each side and
//! rescheduling the woken thread: about 10 µs per direction on a VM, so a
//! closure offloaded and awaited one at a time would cost 20 µs of
//! hand-offs. On a machine with more than one core, both sides therefore
//! wait awake for a short while before they block:
//!
//! - the loop, with nothing else to do and an offloaded closure queued or
//!   running, spins for up to 50 µs for a message before it blocks on its
//!   channel (other outside work, such as an
//!   [`InFlight`](crate::runtime::InFlight) guard, may last any time: no
//!   spin for it). Each spin that comes to nothing halves the next, down to
//!   none, so a closure that runs long beside frequent timers costs a few
//!   spins in all; a result that arrives soon after the loop blocked
//!   restores the full spin;
//! - a pool thread that has just finished a job spins for up to 50 µs for
//!   the next one before it blocks on the pool's condition variable (one
//!   thread of a pool at a time; the others block at once), and a job
//!   queued while a thread spins needs no signal.
//!
//! A closure that returns at once then makes its round trip in about a
//! microsecond. A wait on a closure that runs for a second costs the loop's
//! thread at most 50 µs of CPU time, and an idle pool costs nothing: after
//! the spin, both block, as before. With one core, neither spins. Whether
//! a machine has more than one core is decided once per process, from the
//! CPUs the first thread to ask may run on (`available_parallelism`).
//!
//! A job queued while a pool thread spins is left to that thread, with no
//! signal to a sleeping one: if the spinning thread is preempted just then
//! (a loaded machine), the job waits for its next time slice.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::runtime::{self, Error, EventLoop, spinning_pays};

/// A queued closure.
type Job = Box<dyn FnOnce() + Send>;

/// How long a pool thread waits for work before it exits, by default.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Python's default: `min(32, (os.cpu_count() or 1) + 4)`. Worked out once
/// per process: `available_parallelism` reads the cgroup files (tens of
/// microseconds), and every `Builder` asks.
pub(crate) fn default_threads() -> usize {
    static DEFAULT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        (cores + 4).min(32)
    })
}

/// A loop's pool settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_threads: default_threads(), idle_timeout: DEFAULT_IDLE_TIMEOUT }
    }
}

/// What the pool's threads share, under one lock.
struct State {
    queue: VecDeque<Job>,
    /// Threads started and not yet exited (started ones may not have taken
    /// the lock yet: they count as free).
    threads: usize,
    /// Threads running a job now.
    busy: usize,
    /// Set when the pool shuts down: threads exit once the queue is empty.
    shutdown: bool,
    /// Handles of the threads started, to join them at shutdown. Those of
    /// threads that exited are reaped whenever a new thread starts.
    handles: Vec<JoinHandle<()>>,
    /// Numbers the threads' names.
    started: u64,
    /// Threads blocked on `work`: a job queued while none is needs no
    /// signal (a signal is a system call).
    sleeping: usize,
    /// A thread is spinning for the next job (at most one at a time); it
    /// looks at the queue under the lock before it stops, so a job queued
    /// before that needs no signal either.
    spinning: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is queued and at shutdown.
    work: Condvar,
    /// Jobs queued: `State::queue`'s length, readable without the lock by
    /// the spinning thread.
    queued: AtomicUsize,
    /// `State::shutdown`, readable without the lock by the spinning thread.
    closing: AtomicBool,
    config: PoolConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and catch their panics: a poisoned lock
        // can only come from a panic in this file's own short sections, and
        // the state stays consistent through them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One loop's thread pool.
struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    fn new(config: PoolConfig) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    busy: 0,
                    shutdown: false,
                    handles: Vec::new(),
                    started: 0,
                    sleeping: 0,
                    spinning: false,
                }),
                work: Condvar::new(),
                queued: AtomicUsize::new(0),
                closing: AtomicBool::new(false),
                config,
            }),
        }
    }

    /// Queues `job`, starting a thread if none is free to take it and the
    /// limit allows. If no thread can be started and none runs, the job
    /// comes back with the reason.
    fn submit(&self, job: Job) -> Result<(), (Job, Error)> {
        let mut state = self.shared.lock();
        state.queue.push_back(job);
        self.shared.queued.store(state.queue.len(), Ordering::Release);
        let free = state.threads - state.busy;
        if free < state.queue.len() && state.threads < self.shared.config.max_threads {
            state.handles.retain(|h| !h.is_finished());
            state.started += 1;
            let name = format!("gencoro-blocking-{}", state.started);
            let shared = self.shared.clone();
            match thread::Builder::new().name(name).spawn(move || worker(&shared)) {
                Ok(handle) => {
                    state.threads += 1;
                    state.handles.push(handle);
                }
                Err(e) if state.threads == 0 => {
                    let job = state.queue.pop_back().expect("queued above");
                    self.shared.queued.store(state.queue.len(), Ordering::Release);
                    let error = Error::new(e);
                    return Err((job, error));
                }
                // Threads are running: one of them will take the job.
                Err(_) => {}
            }
        }
        // Signalled after the lock is released, so the thread it wakes does
        // not block on the lock at once. A thread not waiting yet checks the
        // queue under the lock before it waits, and sees the job; so does a
        // spinning one before it stops spinning.
        let signal = state.sleeping > 0 && !(state.spinning && state.queue.len() == 1);
        drop(state);
        if signal {
            self.shared.work.notify_one();
        }
        Ok(())
    }

    /// Tells the threads to exit once the queue is empty; with `wait`,
    /// waits until every one has exited.
    fn shutdown(&self, wait: bool) {
        let handles = {
            let mut state = self.shared.lock();
            state.shutdown = true;
            self.shared.closing.store(true, Ordering::Release);
            std::mem::take(&mut state.handles)
        };
        self.shared.work.notify_all();
        if wait {
            for handle in handles {
                let _ = handle.join();
            }
        }
    }

    /// Jobs queued or running.
    fn outstanding(&self) -> usize {
        let state = self.shared.lock();
        state.queue.len() + state.busy
    }
}

/// A pool thread: takes jobs until it has been idle for the timeout, or
/// the pool shuts down with nothing queued.
fn worker(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if let Some(job) = state.queue.pop_front() {
            shared.queued.store(state.queue.len(), Ordering::Release);
            state.busy += 1;
            drop(state);
            // The job catches the closure's panic itself; this is for a
            // panicking destructor of what it captured.
            let _ = panic::catch_unwind(AssertUnwindSafe(job));
            state = shared.lock();
            state.busy -= 1;
            if state.queue.is_empty() && !state.shutdown && !state.spinning && spinning_pays() {
                // The loop that offloaded this job often offloads the next
                // one within microseconds: wait for it awake, for a while,
                // rather than be signalled (a system call on each side,
                // and a thread wake-up).
                state.spinning = true;
                drop(state);
                spin_for_job(shared);
                state = shared.lock();
                state.spinning = false;
            }
            continue;
        }
        if state.shutdown {
            break;
        }
        state.sleeping += 1;
        let (next, waited) = shared
            .work
            .wait_timeout(state, shared.config.idle_timeout)
            .unwrap_or_else(|p| p.into_inner());
        state = next;
        state.sleeping -= 1;
        if waited.timed_out() && state.queue.is_empty() {
            break;
        }
    }
    // Decided under the lock: a job queued after this sees one thread less.
    state.threads -= 1;
}

/// How long a pool thread that has just finished a job spins for the
/// next one before it blocks. A loop offloading closures one after another
/// queues the next within microseconds; a thread that blocks costs the
/// loop a signal and itself a wake-up (about 10 µs each on a VM). Only one
/// thread of a pool spins at a time.
const SPIN_FOR_JOB: Duration = Duration::from_micros(50);

/// Spins until a job is queued, the pool shuts down, or `SPIN_FOR_JOB` has
/// passed; the caller then looks under the lock.
fn spin_for_job(shared: &Shared) {
    runtime::spin_until(SPIN_FOR_JOB, || {
        shared.queued.load(Ordering::Acquire) != 0 || shared.closing.load(Ordering::Acquire)
    });
}

thread_local! {
    /// The pools of the loops of this thread, by loop id, and the settings
    /// of loops built with non-default ones. A loop and its tasks stay on
    /// one thread, so its pool is found here.
    static POOLS: std::cell::RefCell<HashMap<u64, PoolSlot>> =
        std::cell::RefCell::new(HashMap::new());
}

/// A loop's settings, and its pool once started.
struct PoolSlot {
    config: PoolConfig,
    pool: Option<Arc<Pool>>,
}

/// Records the pool settings of a loop just built (only non-default ones
/// are recorded).
pub(crate) fn configure(loop_id: u64, config: PoolConfig) {
    if config == PoolConfig::default() {
        return;
    }
    let _ = POOLS.try_with(|p| p.borrow_mut().insert(loop_id, PoolSlot { config, pool: None }));
}

/// The pool of `loop_id`, started now if it was not.
fn pool_of(loop_id: u64) -> Arc<Pool> {
    POOLS.with(|p| {
        let mut pools = p.borrow_mut();
        let slot = pools
            .entry(loop_id)
            .or_insert_with(|| PoolSlot { config: PoolConfig::default(), pool: None });
        slot.pool.get_or_insert_with(|| Arc::new(Pool::new(slot.config))).clone()
    })
}

/// The pool of `loop_id` if it was started.
fn started_pool(loop_id: u64) -> Option<Arc<Pool>> {
    POOLS.try_with(|p| p.borrow().get(&loop_id).and_then(|s| s.pool.clone())).ok().flatten()
}

/// The end of a run (`runtime::run`): waits until no closure is queued or
/// running, then joins the pool's threads. `run_loop` runs the loop until
/// its argument holds, so that results arrive and closures that call back
/// into the loop are served meanwhile.
pub(crate) fn finish_run(loop_id: u64, run_loop: impl FnOnce(&dyn Fn() -> bool)) {
    let Some(pool) = started_pool(loop_id) else { return };
    if pool.outstanding() > 0 {
        run_loop(&|| pool.outstanding() == 0);
    }
    pool.shutdown(true);
    let _ = POOLS.try_with(|p| p.borrow_mut().remove(&loop_id));
}

/// The loop was closed: its pool's threads exit once the queue is empty,
/// without being waited for.
pub(crate) fn loop_closed(loop_id: u64) {
    let slot = POOLS.try_with(|p| p.borrow_mut().remove(&loop_id)).ok().flatten();
    if let Some(pool) = slot.and_then(|s| s.pool) {
        pool.shutdown(false);
    }
}

/// Runs the blocking `f` on the loop's thread pool and suspends the calling
/// task, not the loop, until it has finished; returns what `f` returned.
/// Python: `await loop.run_in_executor(None, f)`, `await
/// asyncio.to_thread(f)`.
///
/// ```
/// use gencoro::runtime;
///
/// let v = runtime::run(|| {
///     // Blocking calls (file or socket I/O, a long computation) go here,
///     // while the loop runs other tasks.
///     let len = runtime::offload(|| std::fs::read_to_string("Cargo.toml").map(|s| s.len()))?;
///     Ok(len.map_err(runtime::Error::new)?)
/// });
/// assert!(v.unwrap() > 0);
/// ```
///
/// `f` runs on a pool thread, never on the loop's thread; see the
/// [`blocking`](crate::blocking) module for the pool. While it runs, the
/// loop runs the other tasks; with nothing else to do, it blocks until the
/// result arrives, and on the virtual clock time does not pass meanwhile.
///
/// # Cancellation
///
/// Cancelling the waiting task makes `offload` return the cancellation at
/// once, but does not stop `f`: a thread cannot be interrupted (Python's
/// executor does not either). `f` runs to its end; its result is dropped,
/// on the loop's thread, when it arrives (or on the pool thread if the loop
/// has been closed by then). [`run`](crate::runtime::run) still waits for
/// it before it returns.
///
/// # Errors
///
/// A cancellation; an error of kind [`ErrorKind::Panicked`](crate::runtime::ErrorKind::Panicked) if `f`
/// panicked, with the payload ([`Error::take_panic`]);
/// [`ErrorKind::NoRunningLoop`](crate::runtime::ErrorKind::NoRunningLoop) outside a task (then `f` does not run); the
/// reason, if the pool could start no thread at all.
pub fn offload<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (mut sender, receiver) = runtime::delivery::<Result<T, Error>>("offload")?;
    let loop_id = EventLoop::running()?.id();
    sender.expect_soon();
    let job: Job = Box::new(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(f)).map_err(Error::panicked);
        sender.send(outcome);
    });
    if let Some(timeout) = runtime::explore_offload_timeout() {
        runtime::queue_offloaded(Box::new(move || run_beside_the_loop(job, timeout)));
        return receiver.wait()?;
    }
    if let Err((job, error)) = pool_of(loop_id).submit(job) {
        // Dropping the job drops its sender, which would deliver a
        // "dropped" error: the reason is more useful.
        drop(job);
        drop(receiver);
        return Err(error);
    }
    receiver.wait()?
}

/// Starts a process-wide service thread of the library's own (the signal
/// dispatcher of `gencoro::net::signal`), detached: every thread the crate
/// starts is started in this file.
pub(crate) fn start_service_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    thread::Builder::new().name(name.to_owned()).spawn(body).map(drop)
}

/// A schedule-driven run's offloaded closure (see `gencoro::testing`): runs
/// `job` on a thread of its own while the loop's thread waits, so closures
/// run one at a time, in the order the schedule gives, and see the world a
/// pool thread sees. A closure still running after `timeout` (one that
/// waits for the loop, say, which cannot run meanwhile) is left to finish
/// on its own, and the run ends at once in a deadlock report that says
/// so.
fn run_beside_the_loop(job: Job, timeout: Duration) {
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let spawned = thread::Builder::new().name("gencoro-offload".to_owned()).spawn(move || {
        job();
        let _ = done_tx.send(());
    });
    let handle = match spawned {
        Ok(handle) => handle,
        Err(e) => {
            // The job is gone with the failed spawn; its sender reports
            // the closure as dropped to the waiting task.
            runtime::explore_note(format!("an offloaded closure could not start a thread: {e}"));
            return;
        }
    };
    match done_rx.recv_timeout(timeout) {
        Ok(()) => {
            let _ = handle.join();
        }
        Err(_) => runtime::explore_abort(format!(
            "an offloaded closure was still running after {timeout:?}: in a schedule-driven run \
             the loop waits while a closure runs, so a closure that waits for the loop never \
             ends"
        )),
    }
}

/// The settings of the pool, for [`Builder`](crate::runtime::Builder)'s
/// `Debug`.
impl fmt::Display for PoolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} threads, idle timeout {:?}", self.max_threads, self.idle_timeout)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::{Pool, PoolConfig};

    fn config(max_threads: usize, idle_ms: u64) -> PoolConfig {
        PoolConfig { max_threads, idle_timeout: Duration::from_millis(idle_ms) }
    }

    /// Jobs queued beyond the limit wait for a free thread; no more
    /// threads than the limit ever start, and all jobs run.
    #[test]
    fn the_pool_never_starts_more_threads_than_its_limit() {
        let pool = Pool::new(config(2, 10_000));
        let ran = Arc::new(AtomicUsize::new(0));
        let pair = Arc::new(Barrier::new(2));
        for _ in 0..6 {
            let (ran, pair) = (ran.clone(), pair.clone());
            pool.submit(Box::new(move || {
                // Two jobs at a time meet here: only possible with two
                // threads.
                pair.wait();
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap_or_else(|_| panic!("submitted"));
        }
        assert!(pool.shared.lock().threads <= 2);
        pool.shutdown(true);
        assert_eq!(ran.load(Ordering::SeqCst), 6);
        assert_eq!(pool.shared.lock().threads, 0);
    }

    /// An idle thread exits after the idle timeout.
    #[test]
    fn an_idle_pool_thread_exits_after_the_timeout() {
        let pool = Pool::new(config(4, 20));
        pool.submit(Box::new(|| {})).unwrap_or_else(|_| panic!("submitted"));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.shared.lock().threads > 0 {
            assert!(std::time::Instant::now() < deadline, "the idle thread did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A later job starts a thread again.
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.submit(Box::new(move || tx.send(7).unwrap())).unwrap_or_else(|_| panic!("submitted"));
        assert_eq!(rx.recv().unwrap(), 7);
        pool.shutdown(true);
    }
}
