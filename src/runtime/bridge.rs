//! Rust futures both ways, and the loop's doors for other threads.
//!
//! * [`await_future`]: a task waits on any [`std::future::Future`] as a
//!   plain call. The task polls the future on its own stack; when it is
//!   pending, the task suspends until the future's [`Waker`] is woken.
//! * `impl Future for Task<T>`: async code (polled by `await_future`) can
//!   `.await` a gencoro task.
//! * [`LoopHandle::spawn_threadsafe`](super::LoopHandle::spawn_threadsafe)
//!   and its [`RemoteTask`]: a task submitted from another thread, with a
//!   result that thread can block on, poll or `.await`.
//! * `delivery`: the one-shot channel from a pool thread back to a waiting
//!   task, which `offload` uses.
//!
//! # Reaching a task from another thread
//!
//! A task is `!Send`; what other threads hold is a key. Work for a key is
//! posted over the loop's channel (`Remote::post`) and runs on the loop's
//! thread, where this thread's tables map the key to the waiting task's
//! wait. A key whose wait is over is not in the table any more, so a late
//! wake-up or delivery finds nothing and is dropped: waking after the task
//! has gone is harmless.
//!
//! # The waker
//!
//! The waker of an `await_future` call is an `Arc` with
//! [`std::task::Wake`] (no raw vtable), `Send + Sync`. Wake-ups are
//! coalesced by an atomic flag: the first wake-up after a poll posts one
//! message, the others until the next poll post nothing, so a million wakes
//! cost a handful of messages. A wake-up from the loop's own thread
//! completes the wait directly.
//!
//! While a waker of a pending `await_future` is alive somewhere (the future
//! keeps it to wake the task later), it counts as outside work in flight:
//! the loop blocks for a wake-up instead of reporting a deadlock. A future
//! that drops its waker without waking it (one that can never complete)
//! lets the loop report the deadlock. Those wakers do not stop virtual time:
//! see `outside_work`.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::core::{Remote, current_core};
use super::error::{Error, ErrorKind};
use super::future::FutureCell;
use super::record::{Record, unsize_record};
use super::task::{
    CallbackKind, Task, TaskContext, TaskObj, TaskRef, add_task_callback, check_same_loop,
};
use super::{EventLoop, InFlight};

/// Keys of waits reachable from other threads; never reused.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// The `await_future` calls of tasks on this thread, by key.
    static PARKED: RefCell<HashMap<u64, Rc<Parked>>> = RefCell::new(HashMap::new());
    /// The `delivery` receivers of tasks on this thread, by key: each an
    /// `Rc<Slot<T>>`.
    static DELIVERIES: RefCell<HashMap<u64, Rc<dyn Any>>> = RefCell::new(HashMap::new());
    /// Who to wake when a task is done, by task id, for tasks polled as
    /// futures.
    static TASK_WAITERS: RefCell<HashMap<u64, Vec<WakeTarget>>> = RefCell::new(HashMap::new());
    /// Tasks started by `spawn_threadsafe` and not done, by key, so a
    /// `RemoteTask::cancel` can find them.
    static REMOTE_TASKS: RefCell<HashMap<u64, TaskRef>> = RefCell::new(HashMap::new());
    /// The `await_future` call polling its future now, and the waker it
    /// passed: `Task`'s `poll` recognises it and wakes that call directly.
    static POLLING: RefCell<Option<(u64, Waker)>> = const { RefCell::new(None) };
}

// ---------------------------------------------------------------------------
// await_future

/// An `await_future` call: the wait it is suspended in, if any.
struct Parked {
    wait: RefCell<Option<Record<FutureCell>>>,
    shared: Arc<Shared>,
}

/// Wakes the `await_future` call `key`: ends the wait it is suspended in,
/// or, if it is not suspended there (it is polling, or waits inside its
/// poll), marks it woken so that it polls again. Runs on the loop's thread
/// (it looks in this thread's table); does nothing for a call that ended.
fn wake_parked(key: u64) {
    let Some(parked) = PARKED.try_with(|p| p.borrow().get(&key).cloned()).ok().flatten() else {
        return;
    };
    let wait = parked.wait.borrow_mut().take();
    match wait {
        Some(wait) => {
            wait.set_done();
        }
        None => parked.shared.notified.store(true, Ordering::SeqCst),
    }
}

/// Whether `key` is an `await_future` call of this thread.
fn parked_here(key: u64) -> bool {
    PARKED.try_with(|p| p.borrow().contains_key(&key)).unwrap_or(false)
}

/// What an `await_future` call shares with its wakers.
struct Shared {
    key: u64,
    remote: Arc<Remote>,
    /// Woken since the last poll began: later wake-ups post nothing.
    notified: AtomicBool,
    /// The call has returned: wake-ups do nothing.
    finished: AtomicBool,
}

impl Shared {
    fn wake(&self) {
        if self.finished.load(Ordering::Acquire) || self.notified.swap(true, Ordering::AcqRel) {
            return;
        }
        let key = self.key;
        if parked_here(key) {
            // On the loop's own thread: no message needed.
            wake_parked(key);
        } else {
            // False if the loop has ended: then there is nobody to wake.
            let _ = self.remote.post(Box::new(move || wake_parked(key)));
        }
    }
}

/// The waker of an `await_future` call. While it lives, and the call has
/// not returned, it counts as work in flight.
struct WakerHandle {
    shared: Arc<Shared>,
    guard: Mutex<Option<WakerGuard>>,
}

impl Wake for WakerHandle {
    fn wake(self: Arc<Self>) {
        self.shared.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.wake();
    }
}

/// One live waker's share of the work in flight.
/// Counted as untimed work in flight (`Remote::begin_untimed_work`): it
/// keeps deadlocks from being reported, but not virtual time from passing.
struct WakerGuard {
    remote: Arc<Remote>,
}

impl WakerGuard {
    fn new(remote: Arc<Remote>) -> WakerGuard {
        remote.begin_untimed_work();
        WakerGuard { remote }
    }
}

impl Drop for WakerGuard {
    fn drop(&mut self) {
        self.remote.end_untimed_work();
    }
}

/// Removes an `await_future` call from the table and silences its wakers
/// when the call ends, also when it unwinds.
struct ParkedGuard<'a> {
    shared: &'a Shared,
    handle: &'a RefCell<Weak<WakerHandle>>,
}

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.shared.finished.store(true, Ordering::Release);
        let parked = PARKED.try_with(|p| p.borrow_mut().remove(&self.shared.key)).ok().flatten();
        drop(parked);
        if let Some(handle) = self.handle.borrow().upgrade() {
            // Someone kept a waker: it stays harmless, but no longer keeps
            // the loop waiting.
            let guard = lock(&handle.guard).take();
            drop(guard);
        }
    }
}

/// Restores `POLLING` when a poll ends, also when it unwinds.
struct PollingGuard(Option<(u64, Waker)>);

impl Drop for PollingGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = POLLING.try_with(|p| p.replace(previous));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits, inside a task, until `future` is ready, and returns its output.
/// The task is suspended, not the loop: other tasks run meanwhile. Python:
/// `await fut` on a foreign awaitable (`asyncio.wrap_future`).
///
/// Named for what it is, `.await` as a plain call; not `block_on`, since
/// it never blocks the thread (a `block_on` of an executor called in a task
/// would block the whole loop).
///
/// ```
/// use gencoro::runtime;
///
/// let v = runtime::run(|| {
///     let (tx, rx) = futures::channel::oneshot::channel();
///     std::thread::spawn(move || tx.send(42).unwrap());
///     // A oneshot receiver is a `Future`: wait on it like on a task.
///     runtime::await_future(rx)?.map_err(|_| runtime::Error::new("the sender was dropped"))
/// });
/// assert_eq!(v.unwrap(), 42);
/// ```
///
/// The future is polled on the task's stack, first at once and then each
/// time its [`Waker`] is woken (from any thread: the waker is `Send +
/// Sync`, and reschedules the task on its loop). A future woken during its
/// own poll is polled again after the other ready tasks have run, as after
/// `sleep(0)`. Inside the future, `.await` on a gencoro [`Task`] works.
///
/// While the future holds its waker, the loop counts it as outside work:
/// with nothing else to do, the loop blocks until it is woken. A future
/// that drops its waker without waking it can never complete, and the loop
/// then reports a deadlock. Blocking the thread inside `poll` blocks the
/// loop; use [`offload`](super::offload) for blocking work.
///
/// # Cancellation
///
/// Cancelling the task while it waits here makes `await_future` return the
/// cancellation; the future is dropped then, at the suspension point, so
/// its destructor runs before the caller sees the error.
///
/// # Errors
///
/// A cancellation, or [`ErrorKind::NoRunningLoop`] outside a task (then the
/// future is dropped unpolled).
pub fn await_future<F: IntoFuture>(future: F) -> Result<F::Output, Error> {
    let cx = TaskContext::current("await_future")?;
    let mut future = pin!(future.into_future());
    let key = next_key();
    let shared = Arc::new(Shared {
        key,
        remote: cx.core.remote(),
        notified: false.into(),
        finished: false.into(),
    });
    let parked = Rc::new(Parked { wait: RefCell::new(None), shared: shared.clone() });
    PARKED.with(|p| p.borrow_mut().insert(key, parked.clone()));
    let handle = RefCell::new(Weak::<WakerHandle>::new());
    let _parked_guard = ParkedGuard { shared: &shared, handle: &handle };
    loop {
        shared.notified.store(false, Ordering::SeqCst);
        // One waker at a time: the one the future kept, if it kept one.
        let existing = handle.borrow().upgrade();
        let waker_handle = existing.unwrap_or_else(|| {
            let fresh = Arc::new(WakerHandle {
                shared: shared.clone(),
                guard: Mutex::new(Some(WakerGuard::new(cx.core.remote()))),
            });
            *handle.borrow_mut() = Arc::downgrade(&fresh);
            fresh
        });
        let waker = Waker::from(waker_handle);
        let polled = {
            let previous = POLLING.with(|p| p.replace(Some((key, waker.clone()))));
            let _restore = PollingGuard(previous);
            future.as_mut().poll(&mut Context::from_waker(&waker))
        };
        drop(waker);
        if let Poll::Ready(output) = polled {
            return Ok(output);
        }
        if shared.notified.load(Ordering::SeqCst) {
            // Woken while it polled: poll again after the others.
            super::sleep(Duration::ZERO)?;
            continue;
        }
        let wait = FutureCell::new("a Rust future", &cx.core);
        *parked.wait.borrow_mut() = Some(wait.clone());
        let woken = wait.wait(&cx);
        let stale = parked.wait.borrow_mut().take();
        drop(stale);
        woken?;
    }
}

// ---------------------------------------------------------------------------
// Task<T> as a Future

/// Who to wake when a task is done.
enum WakeTarget {
    /// An `await_future` call polling the task directly: woken on the
    /// loop's thread, with no waker kept (so nothing counts as in flight).
    Parked(u64),
    /// Any other waker.
    Waker(Waker),
}

impl WakeTarget {
    fn same(&self, other: &WakeTarget) -> bool {
        match (self, other) {
            (WakeTarget::Parked(a), WakeTarget::Parked(b)) => a == b,
            (WakeTarget::Waker(a), WakeTarget::Waker(b)) => a.will_wake(b),
            _ => false,
        }
    }

    fn wake(self) {
        match self {
            WakeTarget::Parked(key) => wake_parked(key),
            WakeTarget::Waker(waker) => waker.wake(),
        }
    }
}

/// Wakes those waiting on task `id` when dropped: when the task's done
/// callback runs, or when the callback is dropped unrun (the loop closed).
struct TaskWaitersGuard(u64);

impl Drop for TaskWaitersGuard {
    fn drop(&mut self) {
        let targets = TASK_WAITERS.try_with(|t| t.borrow_mut().remove(&self.0)).ok().flatten();
        for target in targets.into_iter().flatten() {
            target.wake();
        }
    }
}

/// A task is a future of its outcome, so async code polled by
/// [`await_future`] can `.await` it. Python: `await task` from a coroutine.
///
/// ```
/// use std::time::Duration;
/// use gencoro::runtime::{self, Builder, Clock};
///
/// let v = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let a = runtime::spawn(|| { runtime::sleep(Duration::from_secs(1))?; Ok(20) });
///     let b = runtime::spawn(|| { runtime::sleep(Duration::from_secs(2))?; Ok(22) });
///     let (x, y) = runtime::await_future(futures::future::join(a, b))?;
///     Ok(x? + y?)
/// });
/// assert_eq!(v.unwrap(), 42);
/// ```
///
/// Ready, it moves the value out as [`Task::result`] does. It must be
/// polled on the task's loop while that loop runs; polled elsewhere (or by
/// the task itself) it is ready at once with an [`ErrorKind::Misuse`]
/// error. Dropping the future does not cancel the task.
impl<T: 'static> Future for Task<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let header = self.cell.header();
        if header.is_done() {
            return Poll::Ready(self.cell.take_result());
        }
        let core = match current_core() {
            Ok(core) if check_same_loop(&core, header).is_ok() => core,
            _ => {
                return Poll::Ready(Err(Error::kind_msg(
                    ErrorKind::Misuse,
                    format!(
                        "task '{}' can only be awaited on its own loop, while that loop runs",
                        header.name()
                    ),
                )));
            }
        };
        if super::task::current_task_obj().is_some_and(|t| Record::ptr_eq(&t, &self.cell)) {
            return Poll::Ready(Err(Error::kind_msg(
                ErrorKind::Misuse,
                "Task cannot await on itself",
            )));
        }
        let direct = POLLING.with(|p| {
            p.borrow().as_ref().filter(|(_, w)| w.will_wake(cx.waker())).map(|(k, _)| *k)
        });
        let target = match direct {
            Some(key) => WakeTarget::Parked(key),
            None => WakeTarget::Waker(cx.waker().clone()),
        };
        let id = header.id;
        let first = TASK_WAITERS.with(|t| {
            let mut waiters = t.borrow_mut();
            match waiters.get_mut(&id) {
                Some(list) => {
                    if !list.iter().any(|known| known.same(&target)) {
                        list.push(target);
                    }
                    false
                }
                None => {
                    waiters.insert(id, vec![target]);
                    true
                }
            }
        });
        if first {
            let guard = TaskWaitersGuard(id);
            let erased = unsize_record!(self.cell.clone() => dyn TaskObj);
            add_task_callback(&erased, &core, CallbackKind::Call(Box::new(move || drop(guard))));
        }
        Poll::Pending
    }
}

// ---------------------------------------------------------------------------
// delivery: from a pool thread to a waiting task

/// The loop side of a delivery.
struct Slot<T> {
    value: RefCell<Option<T>>,
    /// The sender was dropped without sending.
    abandoned: Cell<bool>,
    wait: Record<FutureCell>,
}

/// Sends one value to a task waiting on the loop; `Send`. While it lives,
/// the loop counts outside work in flight. Dropped unsent, it tells the
/// receiver so.
pub(crate) struct DeliverySender<T: Send + 'static> {
    key: u64,
    remote: Arc<Remote>,
    /// Travels with the value and ends on the loop's thread once the value
    /// is delivered: the loop never sees the work end before the value is
    /// in its channel, and the last guard needs no wake-up message of its
    /// own (the loop is not blocked when it drops). `None` once sent.
    in_flight: Option<InFlight>,
    /// Counted in the loop's offloads until sent (see `expect_soon`).
    soon: bool,
    _value: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> DeliverySender<T> {
    /// Posts `value` to the loop, whose thread wakes for it.
    pub(crate) fn send(mut self, value: T) {
        self.post(Some(value));
    }

    /// Counts this delivery as an offloaded closure's, whose result the
    /// loop may spin for briefly rather than block at once.
    pub(crate) fn expect_soon(&mut self) {
        if !self.soon && self.in_flight.is_some() {
            self.soon = true;
            self.remote.begin_offload();
        }
    }

    fn post(&mut self, value: Option<T>) {
        let Some(in_flight) = self.in_flight.take() else { return };
        let key = self.key;
        // If the loop has ended, the value and the guard are dropped here.
        let _ = self.remote.post(Box::new(move || {
            deliver(key, value);
            drop(in_flight);
        }));
        // After the post: a loop spinning while this counts sees the
        // message in its channel first.
        if std::mem::take(&mut self.soon) {
            self.remote.end_offload();
        }
    }
}

impl<T: Send + 'static> Drop for DeliverySender<T> {
    fn drop(&mut self) {
        // Dropped unsent: the receiver learns it.
        self.post(None);
    }
}

/// The waiting side of a delivery, on the loop's thread.
pub(crate) struct DeliveryReceiver<T: 'static> {
    key: u64,
    slot: Rc<Slot<T>>,
    cx: TaskContext,
}

impl<T: 'static> DeliveryReceiver<T> {
    /// Suspends the task until the value arrives.
    ///
    /// # Errors
    ///
    /// A cancellation (a value arriving later is dropped), or a misuse
    /// error if the sender was dropped unsent.
    pub(crate) fn wait(self) -> Result<T, Error> {
        if self.slot.value.borrow().is_none() && !self.slot.abandoned.get() {
            self.slot.wait.wait(&self.cx)?;
        }
        let value = self.slot.value.borrow_mut().take();
        value.ok_or_else(|| {
            Error::kind_msg(ErrorKind::Misuse, "the work was dropped before it could run")
        })
    }
}

impl<T: 'static> Drop for DeliveryReceiver<T> {
    fn drop(&mut self) {
        let entry = DELIVERIES.try_with(|d| d.borrow_mut().remove(&self.key)).ok().flatten();
        drop(entry);
    }
}

/// A one-shot channel from any thread to the running task, which must be
/// the caller. Refused, with nothing registered, outside a task.
pub(crate) fn delivery<T: Send + 'static>(
    what: &str,
) -> Result<(DeliverySender<T>, DeliveryReceiver<T>), Error> {
    let cx = TaskContext::current(what)?;
    let key = next_key();
    let slot = Rc::new(Slot {
        value: RefCell::new(None),
        abandoned: Cell::new(false),
        wait: FutureCell::new("blocking work", &cx.core),
    });
    let erased: Rc<dyn Any> = slot.clone();
    DELIVERIES.with(|d| d.borrow_mut().insert(key, erased));
    let remote = cx.core.remote();
    remote.begin_work();
    let in_flight = InFlight { remote: remote.clone() };
    let sender = DeliverySender {
        key,
        remote,
        in_flight: Some(in_flight),
        soon: false,
        _value: std::marker::PhantomData,
    };
    Ok((sender, DeliveryReceiver { key, slot, cx }))
}

/// Hands a delivered value (or `None`: the sender was dropped) to its
/// receiver, on the loop's thread. A receiver that is gone, or whose wait
/// was cancelled, drops it.
fn deliver<T: 'static>(key: u64, value: Option<T>) {
    let entry = DELIVERIES.try_with(|d| d.borrow_mut().remove(&key)).ok().flatten();
    let Some(slot) = entry.and_then(|e| e.downcast::<Slot<T>>().ok()) else { return };
    if slot.wait.is_done() {
        return;
    }
    match value {
        Some(v) => *slot.value.borrow_mut() = Some(v),
        None => slot.abandoned.set(true),
    }
    slot.wait.set_done();
}

// ---------------------------------------------------------------------------
// spawn_threadsafe

/// Why [`LoopHandle::spawn_threadsafe`](super::LoopHandle::spawn_threadsafe)
/// refused: the loop has ended. The closure comes back inside, unrun.
pub struct LoopClosed<F>(pub F);

impl<F> fmt::Debug for LoopClosed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoopClosed(..)")
    }
}

impl<F> fmt::Display for LoopClosed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event loop has ended: the closure was not submitted")
    }
}

impl<F> std::error::Error for LoopClosed<F> {}

enum RemoteState<T> {
    Pending(Option<Waker>),
    Done(Result<T, Error>),
    Taken,
}

struct RemoteShared<T> {
    state: Mutex<RemoteState<T>>,
    done: Condvar,
    key: u64,
    remote: Arc<Remote>,
    cancel_requested: AtomicBool,
}

impl<T> RemoteShared<T> {
    fn complete(&self, outcome: Result<T, Error>) {
        let waker = {
            let mut state = lock(&self.state);
            match std::mem::replace(&mut *state, RemoteState::Taken) {
                RemoteState::Pending(waker) => {
                    *state = RemoteState::Done(outcome);
                    waker
                }
                // Completed once already: keep the first outcome.
                done => {
                    *state = done;
                    return;
                }
            }
        };
        self.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Completes a `RemoteTask`; dropped before it did, it reports that the
/// loop ended first.
struct Completer<T> {
    shared: Option<Arc<RemoteShared<T>>>,
    started: bool,
}

impl<T> Completer<T> {
    fn complete(mut self, outcome: Result<T, Error>) {
        if let Some(shared) = self.shared.take() {
            shared.complete(outcome);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let message = if self.started {
                "the event loop closed before the task finished"
            } else {
                "the event loop closed before the task started"
            };
            shared.complete(Err(Error::cancelled(Some(message))));
        }
    }
}

/// Finishes a started remote task: reports its outcome and forgets it,
/// when its done callback runs, or when the callback is dropped unrun (the
/// loop closed). Then the task may have finished all the same (its
/// callback was still queued): its outcome is reported, not lost.
struct RemoteFinish<T: 'static> {
    key: u64,
    task: Task<T>,
    completer: Option<Completer<T>>,
}

impl<T: 'static> Drop for RemoteFinish<T> {
    fn drop(&mut self) {
        let entry = REMOTE_TASKS.try_with(|r| r.borrow_mut().remove(&self.key)).ok().flatten();
        drop(entry);
        if let Some(completer) = self.completer.take() {
            if self.task.is_done() {
                completer.complete(self.task.result());
            }
            // Else dropping it reports that the loop closed first.
        }
    }
}

/// See [`LoopHandle::spawn_threadsafe`](super::LoopHandle::spawn_threadsafe).
pub(crate) fn spawn_threadsafe<T, F>(
    remote: &Arc<Remote>,
    body: F,
) -> Result<RemoteTask<T>, LoopClosed<F>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let key = next_key();
    let shared = Arc::new(RemoteShared {
        state: Mutex::new(RemoteState::Pending(None)),
        done: Condvar::new(),
        key,
        remote: remote.clone(),
        cancel_requested: AtomicBool::new(false),
    });
    let slot = Arc::new(Mutex::new(Some(body)));
    let completer = Completer { shared: Some(shared.clone()), started: false };
    let taken = slot.clone();
    let posted = remote.post(Box::new(move || start_remote(key, &taken, completer)));
    if !posted {
        // The call was dropped unrun: the closure is still in its slot.
        let body = lock(&slot).take().expect("a call that was not posted never ran");
        return Err(LoopClosed(body));
    }
    Ok(RemoteTask { shared })
}

/// On the loop's thread: turns a submitted closure into a task.
fn start_remote<T, F>(key: u64, slot: &Mutex<Option<F>>, mut completer: Completer<T>)
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    let Some(body) = lock(slot).take() else { return };
    let Some(shared) = completer.shared.clone() else { return };
    if shared.cancel_requested.load(Ordering::SeqCst) {
        // Cancelled before it started: as in Python, the body never runs.
        drop(body);
        completer.complete(Err(Error::cancelled(None)));
        return;
    }
    let task = match EventLoop::running().and_then(|l| l.spawn(body)) {
        Ok(task) => task,
        Err(e) => return completer.complete(Err(e)),
    };
    completer.started = true;
    REMOTE_TASKS.with(|r| r.borrow_mut().insert(key, task.as_ref()));
    let finish = RemoteFinish { key, task: task.clone(), completer: Some(completer) };
    // Cannot fail: the loop is running this very callback.
    let _ = task.add_done_callback(move |_| drop(finish));
}

/// The handle of a task submitted from another thread with
/// [`LoopHandle::spawn_threadsafe`](super::LoopHandle::spawn_threadsafe):
/// `Send`, so the submitting thread can block on its outcome
/// ([`wait`](Self::wait)), look at it ([`try_result`](Self::try_result)),
/// `.await` it (it is a [`Future`]), or cancel the task. Python: the
/// `concurrent.futures.Future` of `asyncio.run_coroutine_threadsafe`.
///
/// Its outcome is the task's: its value, its failure, or its cancellation.
/// If the loop closes before the task could start or finish, the outcome is
/// a cancellation whose message says so: a submission is never lost.
pub struct RemoteTask<T> {
    shared: Arc<RemoteShared<T>>,
}

impl<T: Send + 'static> RemoteTask<T> {
    /// Blocks this thread until the task is done and returns its outcome.
    /// Python: `future.result()`.
    ///
    /// # Errors
    ///
    /// The task's failure or cancellation; [`ErrorKind::Misuse`] if called
    /// on the loop's own thread (it would wait for itself forever) or if
    /// the outcome was taken already.
    pub fn wait(self) -> Result<T, Error> {
        self.check_not_loop_thread()?;
        let mut state = lock(&self.shared.state);
        while matches!(*state, RemoteState::Pending(_)) {
            state = self.shared.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        take_outcome(&mut state).expect("done")
    }

    /// [`wait`](Self::wait) for at most `timeout`: `None` if the task is
    /// still pending then. Python: `future.result(timeout)`.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<T, Error>> {
        if let Err(e) = self.check_not_loop_thread() {
            return Some(Err(e));
        }
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        while matches!(*state, RemoteState::Pending(_)) {
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self.shared.done.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        take_outcome(&mut state)
    }

    /// The outcome, moved out, if the task is done; `None` while it is
    /// pending.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait), except that it never blocks.
    pub fn try_result(&self) -> Option<Result<T, Error>> {
        take_outcome(&mut lock(&self.shared.state))
    }

    /// Whether the outcome is in (or was taken). Python: `future.done()`.
    pub fn is_done(&self) -> bool {
        !matches!(*lock(&self.shared.state), RemoteState::Pending(_))
    }

    /// Requests the task's cancellation, on the loop's thread: a task that
    /// has not started never runs its body; a running one gets the
    /// cancellation at its suspension point and may suppress it, as with
    /// [`Task::cancel`]. The outcome is then the task's. False if it is
    /// done already, or the loop has ended. Python: `future.cancel()`.
    pub fn cancel(&self) -> bool {
        if self.is_done() {
            return false;
        }
        self.shared.cancel_requested.store(true, Ordering::SeqCst);
        let key = self.shared.key;
        self.shared.remote.post(Box::new(move || {
            let task = REMOTE_TASKS.try_with(|r| r.borrow().get(&key).cloned()).ok().flatten();
            if let Some(task) = task {
                task.cancel();
            }
        }))
    }

    fn check_not_loop_thread(&self) -> Result<(), Error> {
        match current_core() {
            Ok(core) if Arc::ptr_eq(&core.remote(), &self.shared.remote) => Err(Error::kind_msg(
                ErrorKind::Misuse,
                "a RemoteTask cannot be waited on from its own loop's thread: it would block \
                 the loop it waits for; join it as a task, or await_future it",
            )),
            _ => Ok(()),
        }
    }
}

fn take_outcome<T>(state: &mut RemoteState<T>) -> Option<Result<T, Error>> {
    match state {
        RemoteState::Pending(_) => None,
        RemoteState::Taken => Some(Err(Error::kind_msg(
            ErrorKind::Misuse,
            "the remote task's outcome was already taken",
        ))),
        RemoteState::Done(_) => match std::mem::replace(state, RemoteState::Taken) {
            RemoteState::Done(outcome) => Some(outcome),
            _ => unreachable!("matched Done above"),
        },
    }
}

/// Ready with the outcome (moved out) once the task is done; pollable from
/// any thread and any executor, the task's own loop included.
impl<T: Send + 'static> Future for RemoteTask<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.shared.state);
        if let RemoteState::Pending(waker) = &mut *state {
            match waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        Poll::Ready(take_outcome(&mut state).expect("done"))
    }
}

impl<T> fmt::Debug for RemoteTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = !matches!(*lock(&self.shared.state), RemoteState::Pending(_));
        f.debug_struct("RemoteTask").field("done", &done).finish()
    }
}

#[cfg(test)]
mod tests {
    /// What crosses threads is `Send` (and `Sync` where shared).
    #[test]
    fn the_handles_other_threads_hold_are_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<super::RemoteTask<u32>>();
        send_sync::<super::WakerHandle>();
        send::<super::DeliverySender<u32>>();
    }
}
