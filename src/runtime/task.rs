//! Tasks: a generator driven by the loop, plus the future it completes.
//!
//! # The task state machine
//!
//! A task is a [`Generator`] that yields what it waits for ([`Suspend`]) and
//! is resumed with the outcome ([`Wake`]), the way asyncio began on
//! `yield from`. Its record mirrors CPython's `Task`:
//!
//! | field               | CPython                   | meaning                                  |
//! |---------------------|---------------------------|------------------------------------------|
//! | `state`             | `_state`                  | pending, cancelled or finished           |
//! | `must_cancel`       | `_must_cancel`            | deliver a cancellation at the next step  |
//! | `cancel_msg`        | `_cancel_message`         | its message                              |
//! | `cancels_requested` | `_num_cancels_requested`  | `cancelling()` / `uncancel()`            |
//! | `waiter`            | `_fut_waiter`             | what the suspended task waits on         |
//! | `callbacks`         | `_callbacks`              | done callbacks and waiters' wake-ups     |
//!
//! ```text
//!   spawn ──▶ Pending ──step──▶ (running) ──yield Wait──▶ Pending, waiter set
//!                ▲                  │   └──yield Yield──▶ Pending, step queued
//!                └──wake-up─────────┘
//!   return Ok ──▶ Finished(value)   return Err(cancelled) / must_cancel ──▶ Cancelled
//!   return Err / panic ──▶ Finished(error)
//! ```
//!
//! Every wake-up carries a `token`, bumped at each suspension, so a stale
//! wake-up (one that lost a race with a cancellation) is ignored.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use super::cancel::cancel_task;
use super::cancel::{CancelReply, cancel_waiter};
use super::core::{Core, Handle, Notify, TimerAction, current_core, drop_each, loop_running};
use super::error::{Error, ErrorKind};
use super::explore::{Ending, Explore, TraceEventKind};
use super::park::ParkState;
use super::record::{Record, RecordBox, unsize_record, unsize_weak_record};
use super::schedule::Runnable;
use crate::generator::{
    Generator, GeneratorBuilder, GeneratorExit, RawYielder, ResumeError, State, Step, Yielder,
    unwinding,
};

/// What a task hands the loop when it suspends. One byte, so the switch
/// back to the loop carries it in a register.
#[derive(Clone, Copy)]
pub(crate) enum Suspend {
    /// Go to the back of the ready queue (`sleep(0)`, a bare `yield`).
    Yield,
    /// Wait on the header's `waiter`, which the task set right before it
    /// suspended; a wake-up has been registered with it already.
    Wait,
    /// Sleep for the delay in [`SLEEP_DELAY`]: the loop arms the timer
    /// when the task has switched back to it. The task's own stack then
    /// holds no timer code, so a sleeping task keeps fewer lines of it in
    /// use (with many sleeping, each is a cache miss at its wake-up).
    Sleep,
}

pub(crate) use super::schedule::Wake;

/// What a suspended task waits on. Python: `Task._fut_waiter`.
#[derive(Clone)]
pub(crate) enum Waiter {
    /// Its own sleep timer. Holds the task itself: while it sleeps, only
    /// this keeps it alive (its timer's handle is weak), so a cancelled
    /// sleep's timer keeps nothing once the sleep ends.
    Sleep { _task: Record<dyn Runnable<Core>> },
    /// A future-like object: a task, or an internal future.
    Future(Record<dyn Awaitable>),
    /// Parked ([`super::park`]): woken by whoever holds its entry, with
    /// no future in between; cancelling it wakes it with the
    /// cancellation. Names what it waits for (`Queue.get`), for reports.
    Parked(&'static str),
}

/// Something a task can wait on and that can be cancelled.
pub(crate) trait Awaitable {
    /// Python: `fut.cancel(msg)`, one level: cancels what it can itself and
    /// names the tasks the request goes on to (see [`super::cancel`]).
    /// `this` is the handle `self` was reached through.
    fn cancel_reply(
        &self,
        this: &Record<dyn Awaitable>,
        core: &Core,
        msg: Option<&str>,
    ) -> CancelReply;
    /// The tasks a cancellation of this would go on to, with no effect.
    fn cancel_edges(&self, this: &Record<dyn Awaitable>) -> Vec<Record<dyn TaskObj>>;
    /// For deadlock reports: what this is.
    fn describe(&self) -> String;
}

/// A done callback or a waiting task's wake-up. Python: `fut._callbacks`.
pub(crate) struct Callback {
    pub(crate) id: u64,
    pub(crate) kind: CallbackKind,
}

pub(crate) enum CallbackKind {
    /// Wake the task if it still waits with this token.
    Wakeup(Record<dyn TaskObj>, u64),
    /// Run a closure through the loop.
    Call(Box<dyn FnOnce()>),
    /// Tell a watcher of many futures that the one at this index is done.
    Notify(Rc<dyn Notify>, usize),
}

/// A future's callback list, in registration order. Most futures get one
/// callback (their waiter), which is kept inline, with no allocation; the
/// rest are boxed, so a record with at most one callback carries one word
/// for them.
#[derive(Default)]
pub(crate) struct Callbacks {
    first: Option<Callback>,
    /// Boxed on purpose: one word in every record instead of a `Vec`'s
    /// three, for the few futures with more than one callback.
    #[allow(clippy::box_collection)]
    rest: Option<Box<Vec<Callback>>>,
}

impl Callbacks {
    pub(crate) fn push(&mut self, callback: Callback) {
        match &mut self.rest {
            None if self.first.is_none() => self.first = Some(callback),
            Some(rest) if self.first.is_none() && rest.is_empty() => self.first = Some(callback),
            rest => rest.get_or_insert_with(Box::default).push(callback),
        }
    }

    /// Takes out the callback with this id, for the caller to drop once
    /// the list is no longer borrowed (a callback may own user values).
    pub(crate) fn remove(&mut self, id: u64) -> Option<Callback> {
        if self.first.as_ref().is_some_and(|cb| cb.id == id) {
            return self.first.take();
        }
        let rest = self.rest.as_mut()?;
        let index = rest.iter().position(|cb| cb.id == id)?;
        Some(rest.remove(index))
    }

    /// Empties the list: the first callback and the later ones, in
    /// registration order.
    #[inline]
    fn take(&mut self) -> (Option<Callback>, Vec<Callback>) {
        (self.first.take(), self.rest.take().map(|rest| *rest).unwrap_or_default())
    }

    /// Empties the list, in registration order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Callback> + use<> {
        let (first, rest) = self.take();
        first.into_iter().chain(rest)
    }
}

impl Callback {
    /// Queues the callback. `wake` is what a waiting task receives.
    pub(crate) fn schedule(self, core: &Core, wake: &Wake) {
        match self.kind {
            CallbackKind::Wakeup(task, token) => {
                core.push(Handle::wakeup(runnable(task), token, wake.clone()))
            }
            CallbackKind::Call(f) => core.push(Handle::Call(f)),
            CallbackKind::Notify(n, index) => core.push(Handle::Notify(n, index)),
        }
    }
}

/// Python's future states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutState {
    Pending,
    Cancelled,
    Finished,
}

/// The part of a task record that does not depend on its result type.
///
/// Laid out by hand (`repr(C)`), hottest first: what every step and
/// wake-up reads sits in the record's first cache lines, next to the
/// record's counts, so a task woken after its record left the caches
/// (thousands of sleeping tasks, woken in any order) costs as few misses
/// as possible.
#[repr(C)]
pub(crate) struct Header {
    /// Bumped at every suspension. 64 bits: it cannot wrap around in the
    /// life of a program, so a stale wake-up never matches again.
    token: Cell<u64>,
    /// The token of the suspension whose sleep timer is pending, or
    /// [`NO_SLEEP`]. (Tokens start at 1: the first suspension's.)
    sleep: Cell<u64>,
    yielder: Cell<Option<RawYielder<Suspend, Wake>>>,
    waiter: Cell<Option<Waiter>>,
    state: Cell<FutState>,
    must_cancel: Cell<bool>,
    /// Where its latest park ([`super::park`]) stands; meaningful while
    /// the token is that park's.
    park: Cell<ParkState>,
    /// Its failure has been read. Python: `not fut._log_traceback`.
    retrieved: Cell<bool>,
    /// A plain future ([`Promise`](super::Promise)): no body, never stepped,
    /// completed from outside, cancelled at once.
    plain_future: bool,
    /// Set while `cancel_task` runs for this task, so cancelling a cycle of
    /// tasks waiting on each other ends instead of recursing forever.
    cancel_in_progress: Cell<bool>,
    /// Set while a combinator checks its arguments for repeats
    /// ([`mark`](Self::mark)); clear at every other time.
    marked: Cell<bool>,
    cancels_requested: Cell<u32>,
    /// Its slot in the loop's registry of live tasks (`u32::MAX`: none).
    slot: Cell<u32>,
    callbacks: RefCell<Callbacks>,
    /// The loop the task belongs to, for calls made from outside it.
    core: Weak<Core>,
    pub(crate) id: u64,
    /// Rarely set: kept out of the hot record. Read and written through
    /// [`with_cold`](Self::with_cold).
    cold: Cell<Option<Box<Cold>>>,
}

/// The fields of a task record that are rarely set.
#[derive(Default)]
struct Cold {
    name: Option<String>,
    cancel_msg: Option<String>,
}

/// [`Header::sleep`] when no sleep timer is pending.
const NO_SLEEP: u64 = 0;

static NEXT_TASK_ID: AtomicU64 = AtomicU64::new(1);

/// Task ids are handed to threads in blocks of this many, so making a task
/// costs no atomic operation: ids stay unique in the process, and increase
/// in creation order on each thread.
const TASK_ID_BLOCK: u64 = 1 << 16;

thread_local! {
    /// The next id this thread hands out, and the end of its block.
    static TASK_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A process-wide unique task id.
#[inline]
fn next_task_id() -> u64 {
    TASK_IDS
        .try_with(|ids| {
            let (next, end) = ids.get();
            let (next, end) = if next < end {
                (next, end)
            } else {
                let start = NEXT_TASK_ID.fetch_add(TASK_ID_BLOCK, Ordering::Relaxed);
                (start, start + TASK_ID_BLOCK)
            };
            ids.set((next + 1, end));
            next
        })
        // While the thread's locals are being destroyed: one id of its own.
        .unwrap_or_else(|_| NEXT_TASK_ID.fetch_add(1, Ordering::Relaxed))
}

thread_local! {
    /// The yielder of the task whose step is running: set by the step right
    /// before it resumes the task (or by the task's body on its first
    /// start) and restored right after. `None` between steps.
    static CURRENT_YIELDER: Cell<Option<RawYielder<Suspend, Wake>>> = const { Cell::new(None) };
}

thread_local! {
    /// The task whose step is running: set by the step's guard and cleared
    /// when the step ends. Python: `current_task()` (of the running loop:
    /// one loop runs on a thread at a time, and steps never nest).
    ///
    /// Kept as the record's address, without a count: the step that sets
    /// it borrows a handle to the task for as long as it is set, and
    /// [`current_task_obj`] makes a handle of its own from it.
    static CURRENT_TASK: Cell<Option<NonNull<RecordBox<dyn TaskObj>>>> = const { Cell::new(None) };
}

thread_local! {
    /// The delay of a [`Suspend::Sleep`]: set by the task right before it
    /// suspends, read by its step right after (steps never nest, and
    /// nothing runs between the two).
    static SLEEP_DELAY: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

thread_local! {
    /// Set while the loop closes a task's generator (`abandon`): only then
    /// may a `GeneratorExit` unwind leave the task's body.
    static CLOSING_TASK: Cell<bool> = const { Cell::new(false) };
}

/// The running task's yielder, if the caller may wait: it runs inside a
/// task, on that task's own stack (not in a generator nested in it), and is
/// not unwinding from a panic. A wait that cannot suspend is refused here,
/// before it registers anything.
#[inline(always)]
pub(super) fn waitable_yielder(what: &str) -> Result<RawYielder<Suspend, Wake>, Error> {
    match CURRENT_YIELDER.get() {
        Some(yielder) if yielder.on_own_stack() && !unwinding() => Ok(yielder),
        other => Err(wait_refused(other.is_some(), what)),
    }
}

/// Why a wait was refused; kept out of line, off the fast path.
#[cold]
#[inline(never)]
fn wait_refused(in_task: bool, what: &str) -> Error {
    if !in_task {
        let message = if loop_running() {
            format!("{what} must be called from inside a task")
        } else {
            "no running event loop".to_owned()
        };
        Error::kind_msg(ErrorKind::NoRunningLoop, message)
    } else if unwinding() {
        Error::kind_msg(ErrorKind::Misuse, "a task cannot wait while it unwinds from a panic")
    } else {
        not_on_task_stack()
    }
}

/// Suspends the task whose step is running.
#[inline(always)]
fn suspend(yielder: RawYielder<Suspend, Wake>, what: Suspend) -> Result<Wake, Error> {
    // SAFETY: CURRENT_YIELDER holds a task's yielder only while the loop is
    // inside that task's step (set before the resume and restored after it,
    // by a guard, also on unwind), so its generator has not finished and is
    // the one running on this thread. The raw yielder checks that we are on
    // its stack.
    unsafe { yielder.suspend(what) }.map_err(|_| not_on_task_stack())
}

/// Goes to the back of the ready queue: `sleep(0)`.
#[inline(always)]
pub(crate) fn yield_now() -> Result<(), Error> {
    match suspend(waitable_yielder("sleep")?, Suspend::Yield)? {
        Wake::Go => Ok(()),
        Wake::Cancel(e) => Err(e),
    }
}

/// Sleeps for `delay` (not zero): the task suspends with
/// [`Suspend::Sleep`], and its step arms the timer. Python: `sleep(delay)`,
/// whose `finally: h.cancel()` the cancellation does here: a cancelled
/// sleep's timer is dropped by whoever cancels it (see
/// [`Header::cancel_sleep`]).
///
/// Out of line, so the `sleep(0)` path inlines into the caller and its
/// return after the stack switch stays cheap.
#[inline(never)]
pub(crate) fn sleep_timer(delay: Duration) -> Result<(), Error> {
    let yielder = waitable_yielder("sleep")?;
    SLEEP_DELAY.set(delay);
    match suspend(yielder, Suspend::Sleep)? {
        Wake::Go => Ok(()),
        Wake::Cancel(e) => Err(e),
    }
}

/// The step of a task that suspended with [`Suspend::Sleep`] arms its
/// timer. The timer gets the insertion number it would have got from the
/// task itself: nothing ran in between.
#[inline(never)]
fn arm_sleep(h: &Header, this: &Record<dyn Runnable<Core>>, core: &Core) {
    let token = h.next_token();
    h.start_sleep(token);
    let when = core.now().saturating_add(SLEEP_DELAY.get());
    core.push_timer(when, TimerAction::Sleep(Record::downgrade(this), token));
    h.waiter.set(Some(Waiter::Sleep { _task: this.clone() }));
}

/// Clears the loop's notion of the current task when a step ends, also if
/// it unwinds.
///
/// Steps never nest: a step runs only from a running loop's iteration, and
/// no loop can run inside a running one on the same thread. So there is no
/// previous task or yielder to restore, only `None` (checked in debug
/// builds). Were that ever broken, the outer task's waits would be refused
/// with an error, nothing worse: a missing yielder is never used.
///
/// The guard borrows the handle the step runs through (`'a`), so the task
/// outlives the guard, and with it the address kept in `CURRENT_TASK`.
struct StepGuard<'a>(std::marker::PhantomData<&'a Record<dyn Runnable<Core>>>);

impl<'a> StepGuard<'a> {
    /// Makes `task`'s record (the value of `this`) the current task.
    #[inline(always)]
    fn enter<T: 'static>(
        this: &'a Record<dyn Runnable<Core>>,
        task: &TaskCell<T>,
        yielder: Option<RawYielder<Suspend, Wake>>,
    ) -> Self {
        assert!(Record::value_is_at(this, task), "a task's own handle");
        // `this`'s value is `task`, a `TaskCell<T>` (see `TaskCell::own`).
        let own: NonNull<RecordBox<TaskCell<T>>> = Record::box_ptr(this).cast();
        let own: NonNull<RecordBox<dyn TaskObj>> = own;
        let previous = CURRENT_TASK.replace(Some(own));
        debug_assert!(previous.is_none(), "steps never nest");
        CURRENT_YIELDER.set(yielder);
        StepGuard(std::marker::PhantomData)
    }
}

impl Drop for StepGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        CURRENT_YIELDER.set(None);
        CURRENT_TASK.set(None);
    }
}

/// The task whose step is running on this thread, if any.
#[inline]
pub(crate) fn current_task_obj() -> Option<Record<dyn TaskObj>> {
    let ptr = CURRENT_TASK.try_with(Cell::get).ok().flatten()?;
    // SAFETY: `CURRENT_TASK` holds an address only while a `StepGuard`
    // lives (set by `enter`, cleared by its drop, also on unwind), and the
    // guard borrows the handle its step runs through, whose value is the
    // `TaskCell` the address was cast to: a live handle to that record
    // exists.
    Some(unsafe { Record::clone_from_box_ptr(ptr) })
}

impl Header {
    #[inline(always)]
    fn new(core: &Rc<Core>, name: Option<String>, plain_future: bool) -> Header {
        Header {
            id: next_task_id(),
            core: Rc::downgrade(core),
            cold: Cell::new(name.map(|name| Box::new(Cold { name: Some(name), cancel_msg: None }))),
            state: Cell::new(FutState::Pending),
            must_cancel: Cell::new(false),
            cancels_requested: Cell::new(0),
            cancel_in_progress: Cell::new(false),
            marked: Cell::new(false),
            retrieved: Cell::new(false),
            waiter: Cell::new(None),
            park: Cell::new(ParkState::Cancelled),
            token: Cell::new(0),
            sleep: Cell::new(NO_SLEEP),
            callbacks: RefCell::new(Callbacks::default()),
            yielder: Cell::new(None),
            slot: Cell::new(u32::MAX),
            plain_future,
        }
    }

    pub(crate) fn name(&self) -> String {
        let name = self.with_cold(|c| c.as_ref().and_then(|c| c.name.clone()));
        name.unwrap_or_else(|| format!("Task-{}", self.id))
    }

    fn cancel_msg(&self) -> Option<String> {
        self.with_cold(|c| c.as_ref().and_then(|c| c.cancel_msg.clone()))
    }

    pub(crate) fn set_name(&self, name: String) {
        if let Some(core) = self.core.upgrade() {
            if let Some(explore) = core.explore() {
                explore.relabel(self.id, name.clone());
            }
        }
        self.with_cold(|c| c.get_or_insert_with(Box::default).name = Some(name));
    }

    /// Runs `f` on the rarely set fields, taken out of their cell meanwhile
    /// (`f` only reads and writes them: no user code runs).
    #[inline]
    fn with_cold<R>(&self, f: impl FnOnce(&mut Option<Box<Cold>>) -> R) -> R {
        let mut cold = self.cold.take();
        let result = f(&mut cold);
        self.cold.set(cold);
        result
    }

    pub(crate) fn state(&self) -> FutState {
        self.state.get()
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.get() != FutState::Pending
    }

    pub(crate) fn token(&self) -> u64 {
        self.token.get()
    }

    /// Starts a new suspension; wake-ups for older ones are now stale.
    pub(crate) fn next_token(&self) -> u64 {
        let token = self.token.get().wrapping_add(1);
        self.token.set(token);
        token
    }

    pub(crate) fn start_sleep(&self, token: u64) {
        debug_assert_ne!(token, NO_SLEEP, "tokens start at 1");
        self.sleep.set(token);
    }

    #[inline]
    pub(crate) fn sleep_pending(&self, token: u64) -> bool {
        self.sleep.get() == token
    }

    /// The sleep timer fired: true if the sleep was still pending.
    pub(crate) fn finish_sleep(&self, token: u64) -> bool {
        let pending = self.sleep_pending(token);
        if pending {
            self.sleep.set(NO_SLEEP);
        }
        pending
    }

    pub(crate) fn cancelling(&self) -> u32 {
        self.cancels_requested.get()
    }

    pub(crate) fn uncancel(&self) -> u32 {
        let n = self.cancels_requested.get().saturating_sub(1);
        self.cancels_requested.set(n);
        n
    }

    pub(crate) fn add_callback(&self, core: &Core, kind: CallbackKind) -> u64 {
        let id = core.next_callback_id();
        self.callbacks.borrow_mut().push(Callback { id, kind });
        id
    }

    pub(crate) fn remove_callback(&self, id: u64) {
        let removed = self.callbacks.borrow_mut().remove(id);
        drop(removed);
    }

    /// What the task waits on now, if it is suspended on something.
    pub(crate) fn waiter(&self) -> Option<Waiter> {
        // Taken out and put back: a `Cell` is never borrowed.
        let waiter = self.waiter.take();
        let copy = waiter.clone();
        self.waiter.set(waiter);
        copy
    }

    /// Where the task's latest park stands (see [`super::park`]).
    #[inline]
    pub(crate) fn park_state(&self) -> ParkState {
        self.park.get()
    }

    #[inline]
    pub(crate) fn set_park_state(&self, state: ParkState) {
        self.park.set(state);
    }

    /// The tasks a cancellation of this task would go on to.
    pub(crate) fn waits_on(&self) -> Vec<Record<dyn TaskObj>> {
        match self.waiter() {
            Some(Waiter::Future(f)) => f.cancel_edges(&f),
            _ => Vec::new(),
        }
    }

    /// Its failure, if any, has been read (Python: `exception()` or
    /// `result()` was called), so it is not reported as never retrieved.
    pub(crate) fn mark_retrieved(&self) {
        self.retrieved.set(true);
    }

    /// The task's loop, without keeping it alive.
    #[inline]
    pub(crate) fn core_weak(&self) -> &Weak<Core> {
        &self.core
    }

    /// The task's loop, if it still exists.
    #[inline]
    pub(crate) fn core_alive(&self) -> Option<Rc<Core>> {
        self.core.upgrade()
    }

    /// Whether this is a plain future rather than a task.
    pub(crate) fn is_plain_future(&self) -> bool {
        self.plain_future
    }

    /// Takes out the callback with this id; whether it was there.
    pub(crate) fn remove_callback_counted(&self, id: u64) -> bool {
        let removed = self.callbacks.borrow_mut().remove(id);
        let found = removed.is_some();
        drop(removed);
        found
    }

    /// Marks the task; false if it was marked already. A combinator marks
    /// each of its arguments to find repeats, then unmarks them all.
    pub(crate) fn mark(&self) -> bool {
        !self.marked.replace(true)
    }

    pub(crate) fn unmark(&self) {
        self.marked.set(false);
    }

    /// Whether a cancellation walk is inside this task now.
    pub(crate) fn cancel_in_progress(&self) -> bool {
        self.cancel_in_progress.get()
    }

    pub(crate) fn set_cancel_in_progress(&self, on: bool) {
        self.cancel_in_progress.set(on);
    }

    /// Counts one cancellation request. Python: `_num_cancels_requested += 1`.
    pub(crate) fn note_cancel_request(&self) {
        self.add_cancel_requests(1);
    }

    pub(crate) fn add_cancel_requests(&self, n: u32) {
        self.cancels_requested.set(self.cancels_requested.get().saturating_add(n));
    }

    /// Python: `self._must_cancel = True; self._cancel_message = msg`.
    pub(crate) fn set_must_cancel(&self, msg: Option<&str>) {
        self.must_cancel.set(true);
        self.with_cold(|c| {
            if msg.is_some() || c.is_some() {
                c.get_or_insert_with(Box::default).cancel_msg = msg.map(str::to_owned);
            }
        });
    }

    /// Cancels the task's pending sleep, if any: its wait returns the
    /// cancellation in the next iteration. `task` is this header's task.
    pub(crate) fn cancel_sleep(
        &self,
        core: &Core,
        task: &Record<dyn TaskObj>,
        msg: Option<&str>,
    ) -> bool {
        match self.sleep.get() {
            NO_SLEEP => false,
            token => {
                self.sleep.set(NO_SLEEP);
                core.timer_cancelled();
                core.push(Handle::wakeup(
                    runnable(task.clone()),
                    token,
                    Wake::Cancel(Error::cancelled(msg)),
                ));
                true
            }
        }
    }

    fn make_cancelled_error(&self) -> Error {
        Error::cancelled(self.cancel_msg().as_deref())
    }

    pub(crate) fn waiting_on(&self) -> String {
        match self.waiter() {
            None => "nothing (it is ready to run)".to_owned(),
            Some(Waiter::Sleep { .. }) => "a sleep".to_owned(),
            Some(Waiter::Future(f)) => f.describe(),
            Some(Waiter::Parked(what)) => format!("{what}()"),
        }
    }
}

/// A task as the loop core sees it.
#[inline(always)]
pub(crate) fn runnable(task: Record<dyn TaskObj>) -> Record<dyn Runnable<Core>> {
    unsize_record!(task => dyn Runnable<Core>)
}

/// The type-erased view of a task the loop works with.
///
/// [`TaskCell`] is its only implementation, and must stay so: the header
/// is read through [`header`](<dyn TaskObj>::header) without a virtual
/// call, from the start of the value, where `TaskCell` (`repr(C)`) keeps
/// it.
pub(crate) trait TaskObj: Runnable<Core> {
    /// The header, through the vtable: only to check, in debug builds, that
    /// the direct read finds the same one.
    fn header_virtual(&self) -> &Header;
    /// The failure the task finished with, if it failed or was cancelled.
    fn failure(&self) -> Option<Error>;
    /// Cancels a plain future at once: it ends cancelled and its callbacks
    /// are queued. Python: `Future.cancel`. False if it was done.
    fn cancel_future(&self, core: &Core, msg: Option<&str>) -> bool;
}

impl dyn TaskObj {
    /// The task's header, read without a virtual call.
    #[inline(always)]
    pub(crate) fn header(&self) -> &Header {
        let value = (self as *const dyn TaskObj).cast::<Header>();
        // SAFETY: `TaskCell` is the only type that implements `TaskObj`
        // (a crate-private trait with one impl, see its docs), and it is
        // `repr(C)` with `header` as its first field: the value this
        // trait object points at starts with a live `Header`, borrowed for
        // as long as `self` is.
        let header = unsafe { &*value };
        debug_assert!(std::ptr::eq(header, self.header_virtual()), "a task's header is first");
        header
    }
}

/// Python: `task.add_done_callback(cb)`: appended while the task is
/// pending, queued at once (never called inline) if it is done.
pub(crate) fn add_task_callback(
    task: &Record<dyn TaskObj>,
    core: &Core,
    kind: CallbackKind,
) -> u64 {
    let h = task.header();
    if h.is_done() {
        let id = core.next_callback_id();
        let wake = match h.state() {
            FutState::Cancelled => {
                Wake::Cancel(task.failure().unwrap_or_else(|| Error::cancelled(None)))
            }
            _ => Wake::Go,
        };
        Callback { id, kind }.schedule(core, &wake);
        id
    } else {
        h.add_callback(core, kind)
    }
}

/// Task bodies up to this size travel by value; larger ones are boxed.
const INLINE_TASK_BODY: usize = 128;

/// The generator a task runs: `body`, with its panics caught (they fail the
/// task) unless the loop itself is closing the task.
#[inline(always)]
fn task_generator<T: 'static, B>(
    stack_size: usize,
    body: B,
) -> Result<Generator<Suspend, Wake, Result<T, Error>>, crate::stack::StackError>
where
    B: FnOnce() -> Result<T, Error> + 'static,
{
    let usable = crate::stack::usable_size(stack_size);
    GeneratorBuilder::new().stack_size(stack_size).build(move |co: &Yielder<Suspend, Wake>| {
        // The step that starts the task records this in its header once the
        // task first suspends.
        CURRENT_YIELDER.set(Some(co.raw(usable)));
        match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(result) => result,
            // The loop closing the task must unwind all the way.
            Err(payload) if payload.is::<GeneratorExit>() && CLOSING_TASK.get() => {
                panic::resume_unwind(payload)
            }
            // Any other unwind, even one carrying `GeneratorExit` (from a
            // nested generator), fails the task.
            Err(payload) => Err(Error::panicked(payload)),
        }
    })
}

/// Python's `Task.__del__`: a failure nobody read is reported once, when
/// the task record goes.
impl<T> Drop for TaskCell<T> {
    fn drop(&mut self) {
        let h = &self.header;
        if h.state.get() != FutState::Finished || h.retrieved.get() {
            return;
        }
        let Outcome::Failed(e) = &*self.outcome.borrow() else { return };
        let context = super::report::ExceptionContext::new(
            if h.plain_future {
                "Future exception was never retrieved"
            } else {
                "Task exception was never retrieved"
            },
            Some(e.clone()),
            Some(h.name()),
        );
        match h.core.upgrade() {
            Some(core) => core.report(context),
            None => super::report::report(None, context),
        }
    }
}

/// What a finished task holds.
enum Outcome<T> {
    Pending,
    Value(T),
    Taken,
    Failed(Error),
}

/// A schedule-driven run's part of `spawn`: default names numbered per run
/// (so that names, traces and deadlock reports repeat from run to run), and
/// the spawn in the trace. Out of line: ordinary loops never come here.
#[cold]
#[inline(never)]
fn explore_spawned(core: &Core, explore: &Explore, task: &Record<dyn TaskObj>) {
    let h = task.header();
    h.with_cold(|c| {
        let cold = c.get_or_insert_with(Box::default);
        if cold.name.is_none() {
            cold.name = Some(explore.next_task_name());
        }
    });
    if explore.is_tracing() {
        let parent = current_task_obj().and_then(|p| explore.traced_index(p.header().id));
        core.trace(&**task, TraceEventKind::Spawn { parent });
    }
}

/// Records a trace event, out of line (see [`explore_spawned`]).
#[cold]
#[inline(never)]
fn trace_cold(core: &Core, task: &dyn Runnable<Core>, kind: TraceEventKind) {
    core.trace(task, kind);
}

/// A task record: header, generator, outcome.
///
/// `repr(C)`, with the header first: [`<dyn TaskObj>::header`] reads it
/// from the start of the value.
#[repr(C)]
pub(crate) struct TaskCell<T> {
    header: Header,
    generator: Generator<Suspend, Wake, Result<T, Error>>,
    outcome: RefCell<Outcome<T>>,
}

impl<T: 'static> TaskCell<T> {
    /// Makes a task and queues its first step. Python: `loop.create_task`.
    pub(crate) fn spawn<F>(
        core: &Rc<Core>,
        name: Option<String>,
        body: F,
    ) -> Result<Record<Self>, Error>
    where
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        // A large body would be copied several times over the task's own
        // stack on its way into `catch_unwind`: only a box of it travels.
        let generator = if std::mem::size_of::<F>() <= INLINE_TASK_BODY {
            task_generator(core.stack_size, body)
        } else {
            task_generator(core.stack_size, Box::new(body))
        }
        .map_err(|e| Error::kind_msg(ErrorKind::Misuse, format!("cannot create a task: {e}")))?;
        let cell = Record::new_with(|| TaskCell {
            header: Header::new(core, name, false),
            generator,
            outcome: RefCell::new(Outcome::Pending),
        });
        let registered = unsize_weak_record!(Record::downgrade(&cell) => dyn Runnable<Core>);
        let slot = core.register(registered);
        // More than four billion live tasks would need over a terabyte.
        cell.header.slot.set(u32::try_from(slot).expect("fewer than 2^32 live tasks"));
        if let Some(explore) = core.explore() {
            let erased = unsize_record!(cell.clone() => dyn TaskObj);
            explore_spawned(core, explore, &erased);
        }
        core.push(Handle::Step(unsize_record!(cell.clone() => dyn Runnable<Core>)));
        Ok(cell)
    }

    /// A plain future on `core`, pending. Python: `loop.create_future()`.
    pub(crate) fn new_future(core: &Rc<Core>) -> Record<Self> {
        let generator = Generator::new(|_: &Yielder<Suspend, Wake>| {
            Err(Error::kind_msg(ErrorKind::Misuse, "a future has no body to run"))
        });
        let cell = Record::new_with(|| TaskCell {
            header: Header::new(core, None, true),
            generator,
            outcome: RefCell::new(Outcome::Pending),
        });
        if let Some(explore) = core.explore() {
            // Numbered per run, as tasks are (see `explore_spawned`).
            cell.header.set_name(explore.next_future_name());
        }
        cell
    }

    /// Completes a pending plain future with a value (`Ok`) or a failure.
    /// Hands the value back if it is done already, or its loop is gone.
    pub(crate) fn settle(&self, outcome: Result<T, Error>) -> Result<(), Result<T, Error>> {
        let core = match self.header.core.upgrade() {
            Some(core) if !self.header.is_done() => core,
            _ => return Err(outcome),
        };
        match outcome {
            Ok(v) => self.complete(&core, FutState::Finished, Outcome::Value(v)),
            Err(e) => self.complete(&core, FutState::Finished, Outcome::Failed(e)),
        }
        Ok(())
    }

    fn complete(&self, core: &Core, state: FutState, outcome: Outcome<T>) {
        let h = &self.header;
        if core.explore().is_some() && !h.plain_future {
            let ending = match (&state, &outcome) {
                (FutState::Cancelled, _) => Ending::Cancelled,
                (_, Outcome::Failed(e)) => Ending::Failed(e.to_string()),
                _ => Ending::Returned,
            };
            trace_cold(core, self, TraceEventKind::Complete { ending });
        }
        h.state.set(state);
        let pending = self.outcome.replace(outcome);
        drop(pending);
        let waited_on = h.waiter.take();
        drop(waited_on);
        core.unregister(h.slot.get() as usize);
        let wake = match state {
            FutState::Cancelled => {
                Wake::Cancel(self.failure().unwrap_or_else(|| Error::cancelled(None)))
            }
            _ => Wake::Go,
        };
        // Taken out whole before any runs: scheduling drops nothing, but
        // the list must not stay borrowed while the loop is reached.
        let (first, rest) = h.callbacks.borrow_mut().take();
        if let Some(cb) = first {
            cb.schedule(core, &wake);
        }
        if !rest.is_empty() {
            for cb in rest {
                cb.schedule(core, &wake);
            }
        }
    }

    /// Takes the value, or clones the failure. Python: `Task.result()`.
    pub(crate) fn take_result(&self) -> Result<T, Error> {
        self.header.mark_retrieved();
        let mut outcome = self.outcome.borrow_mut();
        match &*outcome {
            Outcome::Pending => Err(Error::kind_msg(ErrorKind::InvalidState, "Result is not set.")),
            Outcome::Taken => Err(Error::kind_msg(
                ErrorKind::InvalidState,
                "the task's value was already taken by an earlier join or result",
            )),
            Outcome::Failed(e) => Err(e.clone()),
            Outcome::Value(_) => match std::mem::replace(&mut *outcome, Outcome::Taken) {
                Outcome::Value(v) => Ok(v),
                _ => unreachable!("matched Value above"),
            },
        }
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// A new handle to this task's record, from the handle `this` that
    /// `self` was reached through (a record of one of its trait objects).
    #[inline(always)]
    fn own<X: ?Sized>(&self, this: &Record<X>) -> Record<Self> {
        assert!(Record::value_is_at(this, self), "a task's own handle");
        // SAFETY: `this`'s value is at `self`'s address. A `TaskCell` is
        // only ever made as a whole record's value (`spawn` and
        // `new_future` are its only constructors), never inside another
        // value, so the record whose value sits there is `self`'s own: a
        // `Record<TaskCell<T>>`.
        unsafe { Record::downcast_unchecked(this) }
    }

    /// A cancellation requested during the step that just suspended the
    /// task goes to what it now waits on.
    #[inline(always)]
    fn cancel_wait_if_requested(&self, this: &Record<dyn Runnable<Core>>, core: &Core) {
        if self.header.must_cancel.get() {
            self.cancel_wait(this, core);
        }
    }

    #[cold]
    #[inline(never)]
    fn cancel_wait(&self, this: &Record<dyn Runnable<Core>>, core: &Core) {
        let h = &self.header;
        let msg = h.cancel_msg();
        let erased = unsize_record!(self.own(this) => dyn TaskObj);
        if cancel_waiter(&erased, core, msg.as_deref()) {
            h.must_cancel.set(false);
        }
    }

    /// The first step of a created task: start it, or close it unstarted
    /// if the step delivers a cancellation. Runs inside the step's guard.
    #[inline(never)]
    fn first_step(&self, wake: Wake) -> Option<Step<Suspend, Result<T, Error>>> {
        let h = &self.header;
        match (self.generator.state(), wake) {
            (State::Created, Wake::Go) => {
                let step = match self.generator.start() {
                    Ok(step) => Some(step),
                    // The body never ran: the task fails, and its captures
                    // are dropped with it.
                    Err(ResumeError::NoStack(e)) => Some(Step::Returned(Err(Error::kind_msg(
                        ErrorKind::NoStack,
                        format!("cannot start task '{}': {e}", h.name()),
                    )))),
                    Err(_) => None,
                };
                // The body published its yielder when it started.
                h.yielder.set(CURRENT_YIELDER.get());
                step
            }
            // Cancelled before its first step: no body code runs; dropping
            // its captures may still panic.
            (State::Created, Wake::Cancel(e)) => {
                match panic::catch_unwind(AssertUnwindSafe(|| self.generator.close())) {
                    Ok(_) => Some(Step::Returned(Err(e))),
                    Err(payload) => Some(Step::Returned(Err(Error::panicked(payload)))),
                }
            }
            // Running or closed: it cannot be resumed.
            (_, wake) => self.generator.send(wake).ok(),
        }
    }

    /// Clones the value out, leaving it in place, or clones the failure.
    /// Python: `Task.result()`, which can be read any number of times.
    pub(crate) fn clone_result(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        if !matches!(&*self.outcome.borrow(), Outcome::Value(_)) {
            return self.take_result();
        }
        self.header.mark_retrieved();
        // `Clone` is user code: the value is taken out to be cloned, with no
        // borrow held, and put back (a read from inside the clone sees it
        // taken).
        let Outcome::Value(value) = self.outcome.replace(Outcome::Taken) else {
            unreachable!("checked above")
        };
        let copy = panic::catch_unwind(AssertUnwindSafe(|| value.clone()));
        self.outcome.replace(Outcome::Value(value));
        copy.map_err(Error::panicked)
    }
}

impl<T: 'static> TaskObj for TaskCell<T> {
    fn header_virtual(&self) -> &Header {
        &self.header
    }

    fn failure(&self) -> Option<Error> {
        match &*self.outcome.borrow() {
            Outcome::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    fn cancel_future(&self, core: &Core, msg: Option<&str>) -> bool {
        if self.header.is_done() {
            return false;
        }
        self.complete(core, FutState::Cancelled, Outcome::Failed(Error::cancelled(msg)));
        true
    }
}

// SAFETY: `TaskCell` is `repr(C)` with `header` first, and `Header` is
// `repr(C)` with `token: Cell<u64>` first: the value starts with the token
// `token()` returns.
unsafe impl<T: 'static> Runnable<Core> for TaskCell<T> {
    fn step(&self, this: &Record<dyn Runnable<Core>>, core: &Core, wake: Wake) -> bool {
        let h = &self.header;
        if h.is_done() {
            return false;
        }
        let mut wake = wake;
        if h.must_cancel.get() {
            if !matches!(wake, Wake::Cancel(_)) {
                wake = Wake::Cancel(h.make_cancelled_error());
            }
            h.must_cancel.set(false);
        }
        // Taken out before it is dropped: dropping it may drop the last
        // handle to another task, and with it user values.
        if let Some(waited_on) = h.waiter.take() {
            // Only its timer (`finish_sleep`) and `cancel_sleep` wake a
            // sleeping task, and both end the sleep: a sleep left pending
            // would keep a stale timer counted as live.
            debug_assert!(
                !matches!(waited_on, Waiter::Sleep { .. }) || h.sleep.get() == NO_SLEEP,
                "a sleeping task resumed with its sleep still pending"
            );
            drop(waited_on);
        }
        let guard = StepGuard::enter(this, self, h.yielder.get());
        let step = if self.generator.state() == State::Suspended {
            self.generator.send(wake).ok()
        } else {
            self.first_step(wake)
        };
        drop(guard);
        match step {
            Some(Step::Yielded(Suspend::Yield)) => return true,
            Some(Step::Yielded(Suspend::Sleep)) => {
                arm_sleep(h, this, core);
                self.cancel_wait_if_requested(this, core);
            }
            Some(Step::Yielded(Suspend::Wait)) => self.cancel_wait_if_requested(this, core),
            Some(Step::Returned(Ok(value))) => {
                if h.must_cancel.replace(false) {
                    // Cancelled right before the body returned.
                    let e = h.make_cancelled_error();
                    self.complete(core, FutState::Cancelled, Outcome::Failed(e));
                } else {
                    self.complete(core, FutState::Finished, Outcome::Value(value));
                }
            }
            Some(Step::Returned(Err(e))) if e.is_cancelled() => {
                self.complete(core, FutState::Cancelled, Outcome::Failed(e));
            }
            Some(Step::Returned(Err(e))) => {
                self.complete(core, FutState::Finished, Outcome::Failed(e))
            }
            None => {
                let e =
                    Error::kind_msg(ErrorKind::Misuse, "the task's generator could not be resumed");
                self.complete(core, FutState::Finished, Outcome::Failed(e));
            }
        }
        false
    }

    #[inline]
    fn prefetch(&self) {
        crate::stack::prefetch(self as *const Self as usize, std::mem::size_of::<Self>());
        self.generator.prefetch();
    }

    fn abandon(&self) {
        // Taken out first, dropped after: callbacks own user values, whose
        // destructors may call back into the loop and this task.
        // Each on its own: a destructor's panic is reported, and the rest,
        // and the body's own destructors below, still run.
        drop_each(self.header.waiter.take());
        let callbacks: Vec<Callback> = self.header.callbacks.borrow_mut().drain().collect();
        drop_each(callbacks);
        if self.generator.suspended_while_panicking() {
            // It may be suspended inside an unwind of its own (a destructor
            // waited while the body panicked, where the wait could not be
            // refused), which `close` must not unwind into again. A task
            // can always be resumed with a value: deliver a cancellation,
            // so the unwind goes on by itself. No loop is running it now,
            // so any further wait is refused at once.
            let wake = Wake::Cancel(Error::cancelled(None));
            let _ = panic::catch_unwind(AssertUnwindSafe(|| self.generator.send(wake)));
        }
        if self.generator.state() != State::Running {
            // Unwinds the suspended body, running its destructors.
            let closing = CLOSING_TASK.replace(true);
            let _ = panic::catch_unwind(AssertUnwindSafe(|| self.generator.close()));
            CLOSING_TASK.set(closing);
        }
        // Destructors that ran above may have added callbacks, which hold
        // this task: drop them too, until none are left.
        loop {
            let callbacks: Vec<Callback> = self.header.callbacks.borrow_mut().drain().collect();
            if callbacks.is_empty() {
                break;
            }
            drop_each(callbacks);
        }
    }

    #[inline]
    fn token(&self) -> u64 {
        self.header.token()
    }

    #[inline]
    fn sleep_pending(&self, token: u64) -> bool {
        self.header.sleep_pending(token)
    }

    #[inline]
    fn finish_sleep(&self, token: u64) -> bool {
        self.header.finish_sleep(token)
    }

    fn id(&self) -> u64 {
        self.header.id
    }

    fn is_done(&self) -> bool {
        self.header.is_done()
    }

    fn suspended_on(&self) -> String {
        match self.header.waiter() {
            None => "yield".to_owned(),
            Some(_) => self.header.waiting_on(),
        }
    }

    fn name(&self) -> String {
        self.header.name()
    }

    fn describe(&self) -> String {
        Awaitable::describe(self)
    }

    fn waiting_on(&self) -> String {
        self.header.waiting_on()
    }

    fn erased(&self, this: &Record<dyn Runnable<Core>>) -> Box<dyn Any> {
        let task = unsize_record!(self.own(this) => dyn TaskObj);
        Box::new(task)
    }
}

impl<T: 'static> Awaitable for TaskCell<T> {
    fn cancel_reply(
        &self,
        this: &Record<dyn Awaitable>,
        _core: &Core,
        _msg: Option<&str>,
    ) -> CancelReply {
        CancelReply::Join(unsize_record!(self.own(this) => dyn TaskObj))
    }

    fn cancel_edges(&self, this: &Record<dyn Awaitable>) -> Vec<Record<dyn TaskObj>> {
        vec![unsize_record!(self.own(this) => dyn TaskObj)]
    }

    fn describe(&self) -> String {
        if self.header.plain_future {
            format!("future '{}'", self.header.name())
        } else {
            format!("task '{}'", self.header.name())
        }
    }
}

/// The running task and its loop, for the wait functions.
pub(crate) struct TaskContext {
    pub(crate) core: Rc<Core>,
    pub(crate) task: Record<dyn TaskObj>,
    yielder: RawYielder<Suspend, Wake>,
}

impl TaskContext {
    /// The task whose step is running on this thread.
    pub(crate) fn current(what: &str) -> Result<TaskContext, Error> {
        let yielder = waitable_yielder(what)?;
        let core = current_core()?;
        let task = current_task_obj().ok_or_else(|| not_in_task(what))?;
        Ok(TaskContext { core, task, yielder })
    }

    /// Suspends the running task (the one this context names) until it is
    /// woken, waiting on `waiter`: the loop sees it in the task's header.
    #[inline(always)]
    pub(crate) fn wait_with(&self, waiter: Waiter) -> Result<Wake, Error> {
        wait_with(self.task.header(), self.yielder, waiter)
    }

    /// Refuses a task of another loop. Python: `... attached to a different
    /// loop`.
    pub(crate) fn check_same_loop(&self, header: &Header) -> Result<(), Error> {
        check_same_loop(&self.core, header)
    }

    /// Registers a wake-up of this task with a future, then waits on it.
    ///
    /// `register` hands the wake-up to `target`'s callback list.
    pub(crate) fn wait_on(
        &self,
        target: Record<dyn Awaitable>,
        register: impl FnOnce(CallbackKind),
    ) -> Result<Wake, Error> {
        let token = self.task.header().next_token();
        register(CallbackKind::Wakeup(self.task.clone(), token));
        self.wait_with(Waiter::Future(target))
    }
}

/// Suspends the running task, whose header and yielder these are, until it
/// is woken, waiting on `waiter`: the loop sees it in the task's header.
#[inline(always)]
pub(super) fn wait_with(
    header: &Header,
    yielder: RawYielder<Suspend, Wake>,
    waiter: Waiter,
) -> Result<Wake, Error> {
    debug_assert!(header.waiter().is_none(), "a running task waits on nothing");
    header.waiter.set(Some(waiter));
    suspend(yielder, Suspend::Wait).inspect_err(|_| drop(header.waiter.take()))
}

/// Refuses a task that is not of `core`'s loop. Python: `... attached to a
/// different loop`.
pub(crate) fn check_same_loop(core: &Rc<Core>, header: &Header) -> Result<(), Error> {
    if std::ptr::eq(header.core.as_ptr(), Rc::as_ptr(core)) {
        Ok(())
    } else {
        Err(Error::kind_msg(
            ErrorKind::Misuse,
            format!("task '{}' is attached to a different loop", header.name()),
        ))
    }
}

/// A wait's error outside a task, out of line (see `current_core`).
#[cold]
#[inline(never)]
fn not_in_task(what: &str) -> Error {
    Error::kind_msg(ErrorKind::NoRunningLoop, format!("{what} must be called from inside a task"))
}

#[cold]
fn not_on_task_stack() -> Error {
    Error::kind_msg(
        ErrorKind::Misuse,
        "a task can only wait from its own stack, not from a generator running inside it",
    )
}

/// A handle to a task: join it, cancel it, inspect it. Python: `asyncio.Task`.
///
/// Cheap to clone; all clones refer to the same task. Dropping a handle does
/// not cancel the task and loses no work: the loop keeps the task and runs it
/// on (unlike Python, where an unreferenced task may be garbage-collected),
/// and `run` cancels whatever is still pending when `main` returns.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
/// use std::time::Duration;
///
/// let v = Builder::new().clock(Clock::virtual_time()).run(|| {
///     let task = runtime::spawn(|| {
///         runtime::sleep(Duration::from_secs(1))?;
///         Ok(21)
///     });
///     Ok(task.join()? * 2)
/// });
/// assert_eq!(v.unwrap(), 42);
/// ```
pub struct Task<T> {
    pub(crate) cell: Record<TaskCell<T>>,
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task { cell: self.cell.clone() }
    }
}

impl<T: 'static> Task<T> {
    /// Waits until the task is done and returns its value, or why it failed:
    /// it was cancelled, it panicked, or it returned an error. Python:
    /// `await task`.
    ///
    /// If the task is already done, returns at once without yielding to the
    /// loop. The value is moved out: a second retrieval reports
    /// [`ErrorKind::InvalidState`]; failures can be retrieved any number of
    /// times.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task that waits here cancels this task too (Python
    /// B5.7); the wait then returns this task's outcome, which is a
    /// cancellation unless the task suppressed it. Use
    /// [`shield`](super::shield) to keep this task running.
    ///
    /// # Errors
    ///
    /// This task's failure, a cancellation of the wait, or a misuse: joining
    /// the task from itself (`Task cannot await on itself`), or from outside
    /// a task while it is not done.
    pub fn join(&self) -> Result<T, Error> {
        self.wait_done()?;
        self.cell.take_result()
    }

    /// Waits until the task is done (at once if it is), reading nothing.
    fn wait_done(&self) -> Result<(), Error> {
        if !self.cell.header.is_done() {
            let cx = TaskContext::current("join")?;
            cx.check_same_loop(&self.cell.header)?;
            if Record::ptr_eq(&cx.task, &self.cell) {
                return Err(Error::kind_msg(ErrorKind::Misuse, "Task cannot await on itself"));
            }
            let target = unsize_record!(self.cell.clone() => dyn Awaitable);
            let register = |kind| {
                self.cell.header.add_callback(&cx.core, kind);
            };
            if let Wake::Cancel(e) = cx.wait_on(target, register)? {
                return Err(e);
            }
        }
        Ok(())
    }

    /// [`join`](Self::join) for values that can be cloned: the value is
    /// cloned out and stays in the task, so it can be read again. Python:
    /// `await task`, any number of times.
    ///
    /// # Cancellation
    ///
    /// As [`join`](Self::join): cancelling the waiting task cancels this
    /// task too, and the wait returns this task's outcome.
    ///
    /// # Errors
    ///
    /// As [`join`](Self::join).
    pub fn join_cloned(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.wait_done()?;
        self.cell.clone_result()
    }

    /// [`result`](Self::result) for values that can be cloned: the value
    /// stays in the task. Python: `task.result()`, any number of times.
    ///
    /// # Errors
    ///
    /// As [`result`](Self::result).
    pub fn result_cloned(&self) -> Result<T, Error>
    where
        T: Clone,
    {
        self.cell.clone_result()
    }

    /// The outcome without waiting. Python: `task.result()`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidState`] if the task is not done (`Result is not
    /// set.`) or its value was taken; otherwise as [`join`](Self::join).
    pub fn result(&self) -> Result<T, Error> {
        self.cell.take_result()
    }

    /// The failure the task finished with, if any: its error, panic or
    /// cancellation. `None` while it is pending *and* once it succeeded;
    /// use [`exception`](Self::exception) to tell those apart.
    pub fn failure(&self) -> Option<Error> {
        self.cell.header.mark_retrieved();
        self.cell.failure()
    }

    /// Python's `task.exception()`: `Ok(None)` if the task succeeded,
    /// `Ok(Some(e))` if it failed with `e`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidState`] while the task is pending (`Exception is
    /// not set.`); the cancellation if it was cancelled (Python raises
    /// `CancelledError` there too).
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.cell.header.mark_retrieved();
        match self.cell.header.state() {
            FutState::Pending => {
                Err(Error::kind_msg(ErrorKind::InvalidState, "Exception is not set."))
            }
            FutState::Cancelled => {
                Err(self.cell.failure().unwrap_or_else(|| Error::cancelled(None)))
            }
            FutState::Finished => Ok(self.cell.failure()),
        }
    }

    /// Requests cancellation. Python: `task.cancel()`.
    ///
    /// The wait the task is suspended in returns a cancellation error; the
    /// task may clean up and propagate it, or suppress it and go on. A task
    /// cancelled before its first step never runs its body. Returns false if
    /// the task is already done.
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// [`cancel`](Self::cancel) with a message. Python: `task.cancel(msg)`.
    pub fn cancel_with(&self, message: &str) -> bool {
        self.cancel_inner(Some(message))
    }

    fn cancel_inner(&self, msg: Option<&str>) -> bool {
        let Some(core) = self.cell.header.core.upgrade() else {
            return false;
        };
        let erased = unsize_record!(self.cell.clone() => dyn TaskObj);
        cancel_task(&erased, &core, msg)
    }

    /// Whether the task finished, failed or was cancelled. Python: `done()`.
    pub fn is_done(&self) -> bool {
        self.cell.header.is_done()
    }

    /// Whether the task ended cancelled. Python: `cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.cell.header.state() == FutState::Cancelled
    }

    /// Pending cancellation requests. Python: `cancelling()`.
    pub fn cancelling(&self) -> u32 {
        self.cell.header.cancelling()
    }

    /// Withdraws one cancellation request; returns the remaining count.
    /// Python: `uncancel()`.
    pub fn uncancel(&self) -> u32 {
        self.cell.header.uncancel()
    }

    /// Schedules `callback` to run through the loop when the task is done,
    /// after the callbacks registered before it. If the task is already
    /// done, it is scheduled at once, never called inline. Python:
    /// `add_done_callback`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] if the task's loop is gone;
    /// [`ErrorKind::Misuse`] if it is closed (being torn down, or torn
    /// down): the callback could never run, and it is dropped at once.
    pub fn add_done_callback(
        &self,
        callback: impl FnOnce(&Task<T>) + 'static,
    ) -> Result<(), Error> {
        let core = self.cell.header.core.upgrade().ok_or_else(|| {
            Error::kind_msg(ErrorKind::NoRunningLoop, "the task's event loop is gone")
        })?;
        if core.is_closed() {
            // Registered now, it would never run, and it holds this task.
            return Err(Error::kind_msg(ErrorKind::Misuse, "Event loop is closed"));
        }
        let task = self.clone();
        let call: Box<dyn FnOnce()> = Box::new(move || callback(&task));
        let erased = unsize_record!(self.cell.clone() => dyn TaskObj);
        add_task_callback(&erased, &core, CallbackKind::Call(call));
        Ok(())
    }

    /// The task's name: the one given, or `Task-<id>`.
    pub fn name(&self) -> String {
        self.cell.header.name()
    }

    /// Renames the task. Python: `set_name`.
    pub fn set_name(&self, name: impl Into<String>) {
        self.cell.header.set_name(name.into());
    }

    /// A process-wide unique id; default names are built from it.
    pub fn id(&self) -> u64 {
        self.cell.header.id
    }

    /// A type-erased handle to the same task.
    pub fn as_ref(&self) -> TaskRef {
        TaskRef { task: unsize_record!(self.cell.clone() => dyn TaskObj) }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.cell.header.id)
            .field("name", &self.cell.header.name())
            .field("state", &self.cell.header.state())
            .finish()
    }
}

/// A task of any result type, as [`current_task`] and [`all_tasks`] return
/// it.
#[derive(Clone)]
pub struct TaskRef {
    task: Record<dyn TaskObj>,
}

impl TaskRef {
    /// The task's name.
    pub fn name(&self) -> String {
        self.task.header().name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.task.header().set_name(name.into());
    }

    /// The task's id.
    pub fn id(&self) -> u64 {
        self.task.header().id
    }

    /// Whether the task is done.
    pub fn is_done(&self) -> bool {
        self.task.header().is_done()
    }

    /// Whether the task ended cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.task.header().state() == FutState::Cancelled
    }

    /// Requests cancellation; see [`Task::cancel`].
    pub fn cancel(&self) -> bool {
        match self.task.header().core.upgrade() {
            Some(core) => cancel_task(&self.task, &core, None),
            None => false,
        }
    }

    /// Pending cancellation requests; see [`Task::cancelling`].
    pub fn cancelling(&self) -> u32 {
        self.task.header().cancelling()
    }

    /// Withdraws one cancellation request; see [`Task::uncancel`].
    pub fn uncancel(&self) -> u32 {
        self.task.header().uncancel()
    }

    /// What the task is waiting on, in words.
    pub fn waiting_on(&self) -> String {
        self.task.header().waiting_on()
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        Record::ptr_eq(&self.task, &other.task)
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("state", &self.task.header().state())
            .finish()
    }
}

/// Starts a task running `body`. It starts only when the spawning task next
/// waits (Python B0.4). Python: `asyncio.create_task`.
///
/// The task takes a stack only when it first runs, from a pool, so a
/// spawned task that has not started costs only its record. If no stack can
/// be had then, the task fails with [`ErrorKind::NoStack`] without running
/// its body.
///
/// The value `body` returns travels out over the task's own stack, and may
/// be copied there several times on its way (more in debug builds): return
/// a large value boxed (`Box<[u8; 100_000]>` rather than `[u8; 100_000]`),
/// or give the loop's tasks larger stacks
/// ([`Builder::stack_size`](super::Builder::stack_size)). A stack that is
/// too small hits its guard page, and the process ends with a message that
/// says so. (A large *capture* of `body` needs no care: it is boxed.)
///
/// # Panics
///
/// Panics outside a running loop; use [`TaskBuilder::spawn`] to get that
/// as an error.
pub fn spawn<T, F>(body: F) -> Task<T>
where
    T: 'static,
    F: FnOnce() -> Result<T, Error> + 'static,
{
    match TaskBuilder::new().spawn(body) {
        Ok(task) => task,
        Err(e) => panic!("gencoro::runtime::spawn: {e}"),
    }
}

/// Spawns tasks with a name.
#[derive(Debug, Default, Clone)]
pub struct TaskBuilder {
    name: Option<String>,
}

impl TaskBuilder {
    /// A builder with no name set (the task is called `Task-<id>`).
    pub fn new() -> TaskBuilder {
        TaskBuilder::default()
    }

    /// Names the task.
    pub fn name(mut self, name: impl Into<String>) -> TaskBuilder {
        self.name = Some(name.into());
        self
    }

    /// Starts the task; see [`spawn`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NoRunningLoop`] outside a running loop (Python: `no
    /// running event loop`), or [`ErrorKind::Misuse`] for a stack size that
    /// cannot be had.
    pub fn spawn<T, F>(self, body: F) -> Result<Task<T>, Error>
    where
        T: 'static,
        F: FnOnce() -> Result<T, Error> + 'static,
    {
        let core = current_core()?;
        Ok(Task { cell: TaskCell::spawn(&core, self.name, body)? })
    }
}

/// The task running now, or `None` inside a plain callback. Python:
/// `asyncio.current_task()`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
pub fn current_task() -> Result<Option<TaskRef>, Error> {
    current_core()?;
    Ok(current_task_obj().map(|task| TaskRef { task }))
}

/// Every task of the running loop that is not done, including the current
/// one. Python: `asyncio.all_tasks()`.
///
/// # Errors
///
/// [`ErrorKind::NoRunningLoop`] outside a running loop.
pub fn all_tasks() -> Result<Vec<TaskRef>, Error> {
    let core = current_core()?;
    Ok(task_refs(pending_tasks(&core)))
}

pub(crate) fn task_refs(tasks: Vec<Record<dyn TaskObj>>) -> Vec<TaskRef> {
    tasks.into_iter().map(|task| TaskRef { task }).collect()
}

/// The loop's tasks that are not done, as the task layer's handles.
pub(crate) fn pending_tasks(core: &Core) -> Vec<Record<dyn TaskObj>> {
    core.pending_tasks().into_iter().map(from_core).collect()
}

/// A task the core handed back, as the task layer's handle: every
/// `Runnable` the core holds is a `TaskObj` (see `Runnable::erased`).
fn from_core(task: Record<dyn Runnable<Core>>) -> Record<dyn TaskObj> {
    match task.erased(&task).downcast::<Record<dyn TaskObj>>() {
        Ok(task) => *task,
        Err(_) => unreachable!("the core holds only the task layer's tasks"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Record, TaskObj, current_task_obj};
    use crate::runtime::{self, Builder, Clock};

    /// A task's wake-up token goes past 2³² suspensions without wrapping,
    /// so a wake-up from 2³² suspensions ago cannot match the current one
    /// (with 32-bit tokens it did).
    #[test]
    fn a_wake_up_token_from_two_to_the_32_suspensions_ago_is_stale() {
        let outcome = Builder::new().clock(Clock::virtual_time()).run(|| {
            let task: Record<dyn TaskObj> = current_task_obj().expect("main is the current task");
            let h = task.header();
            // As if the task had been suspended u32::MAX times already.
            h.token.set(u64::from(u32::MAX));
            let old = h.next_token(); // the 2^32-th suspension
            h.token.set(old + u64::from(u32::MAX)); // 2^32 - 1 more
            runtime::sleep(Duration::from_millis(1))?; // and one more
            let now = h.token();
            Ok((old, now))
        });
        let (old, now) = outcome.unwrap();
        assert_eq!(now - old, 1 << 32);
        // With 32-bit tokens the two were equal: the stale wake-up matched.
        assert_ne!(old, now, "a stale token must never equal the current one");
    }
}
