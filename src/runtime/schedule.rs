//! What the loop core needs of a task, defined below both.
//!
//! The loop core (`core.rs`) queues, runs, times and tears down tasks, but
//! knows nothing of their records, results or cancellation: it sees a task
//! only as a [`Runnable`], and what a task is resumed with, a [`Wake`]. The
//! task layer (`task.rs`) implements `Runnable` for its records and builds
//! everything else on the core. Neither module imports the other's
//! internals through this one; `core.rs` does not import `task.rs` at all.

use std::any::Any;
use std::cell::Cell;

use super::error::Error;
use super::record::Record;

/// What a task is resumed with.
#[derive(Clone)]
pub(crate) enum Wake {
    /// Carry on: what it waited for is done (inspect it for the outcome).
    Go,
    /// The wait is cancelled: return this error from it.
    Cancel(Error),
}

/// A task as the loop core sees it. `L` is the loop (the core's own type,
/// named by the core), so this module needs nothing of it.
///
/// # Safety
///
/// An implementing type's value starts with the token of the task's
/// current suspension, a `Cell<u64>` (what [`token`](Self::token)
/// returns): [`wake_token`] reads it there, with no virtual call, for
/// every wake-up the loop runs. The task layer's `TaskCell` is `repr(C)`
/// with its header first, and the header `repr(C)` with the token first.
pub(crate) unsafe trait Runnable<L: ?Sized> {
    /// Python: `Task.__step`, entered from `__wakeup` or the ready queue.
    /// `this` is the handle `self` was reached through. True if the task
    /// yielded (`sleep(0)`): the loop queues `this` again at the back of
    /// the ready queue (Python: `call_soon(self.__step)`).
    fn step(&self, this: &Record<dyn Runnable<L>>, lp: &L, wake: Wake) -> bool;
    /// The token of the task's current suspension: a wake-up carrying an
    /// older one is stale.
    fn token(&self) -> u64;
    /// Whether the sleep timer of suspension `token` is still pending.
    fn sleep_pending(&self, token: u64) -> bool;
    /// The sleep timer of suspension `token` fired: true if the sleep was
    /// still pending (it is not any more).
    fn finish_sleep(&self, token: u64) -> bool;
    /// Starts loading the task's record and stack into cache. Reads the
    /// record (for the stack's address): call it once the record is cached.
    fn prefetch(&self);
    /// The task's process-wide unique id.
    fn id(&self) -> u64;
    /// Whether the task is done.
    fn is_done(&self) -> bool;
    /// For traces, once a step has suspended the task: what it waits on,
    /// or `yield` if it only went to the back of the ready queue.
    fn suspended_on(&self) -> String;
    /// The task's name, for reports.
    fn name(&self) -> String;
    /// What the task is, for deadlock reports: `task 'name'`.
    fn describe(&self) -> String;
    /// What the task waits on, for deadlock reports.
    fn waiting_on(&self) -> String;
    /// Drops the generator of a task that will never finish.
    fn abandon(&self);
    /// The task as the task layer's own handle, boxed: the core hands
    /// tasks back (`all_tasks`, shutdown) without knowing their type.
    /// `this` is the handle `self` was reached through.
    fn erased(&self, this: &Record<dyn Runnable<L>>) -> Box<dyn Any>;
}

/// The token of `task`'s current suspension ([`Runnable::token`]), read
/// from the start of its value.
#[inline(always)]
pub(crate) fn wake_token<L: ?Sized>(task: &dyn Runnable<L>) -> u64 {
    let first = (task as *const dyn Runnable<L>).cast::<Cell<u64>>();
    // SAFETY: `Runnable`'s contract: every implementing type's value
    // starts with its token, a `Cell<u64>`, alive as long as `task` is
    // borrowed.
    let token = unsafe { &*first }.get();
    debug_assert_eq!(token, task.token(), "a task's value starts with its token");
    token
}
