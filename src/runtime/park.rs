//! Parking: a task waits to be woken by whoever holds its entry, with no
//! future in between.
//!
//! CPython's primitives wait on a future each time (`loop.create_future()`,
//! appended to a deque of waiters, awaited); the waker completes it, and
//! the future's done callback wakes the task. Here the entry a primitive
//! queues is the parked task itself, with the token of its suspension
//! ([`Parked`]), and waking it pushes the task's wake-up onto the ready
//! queue directly: no record, no callback list, no allocation per wait.
//! What the future's state told CPython (`fut.done()`, `fut.cancelled()`)
//! lives in the task's header ([`ParkState`]), valid while the token is the
//! park's.
//!
//! The order of events is a future's: the wake-up enters the ready queue
//! when the waker wakes the entry (Python: `fut.set_result(None)`, whose
//! done callback is scheduled at once), and a cancellation of the parked
//! task cancels the park, unless it was woken already, in which case the
//! task gets the cancellation at its next step (`_must_cancel`), exactly as
//! a task waiting on a future that is done.
//!
//! The primitive is generic: a client queues [`Parked`] entries wherever
//! it likes (the sync primitives' lines of waiters; later the readiness
//! table of a socket, or the loop-side table behind a key held by another
//! thread), and wakes one with [`Parked::wake`] on the loop's thread.
//!
//! ```text
//!   Park::prepare ──▶ Pending ──wake──────▶ Woken ────▶ wait returns Ok
//!   (entry queued)       │                    └─ cancel: wait returns the
//!                        │                       cancellation, state Woken
//!                        └──cancel──▶ Cancelled ──▶ wait returns the cancellation
//! ```

use std::fmt;
use std::rc::{Rc, Weak};

use super::core::{Core, Handle};
use super::error::Error;
use super::record::Record;
use super::schedule::Wake;
use super::task::runnable;
use super::task::{Suspend, TaskObj, Waiter, current_task_obj, wait_with, waitable_yielder};
use crate::generator::RawYielder;

/// Where a park stands. Python: the waiter future's state (pending, done
/// with a result, cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParkState {
    /// Not woken yet: the task waits (or is about to).
    Pending,
    /// Woken: its wake-up is queued or was delivered.
    Woken,
    /// Cancelled before it was woken; also what an entry whose task has
    /// moved on to another suspension reads as (its wait ended without it).
    Cancelled,
}

/// A parked task's entry, for the primitive it waits in: the task and the
/// token of its suspension. Cheap to clone (one record handle).
#[derive(Clone)]
pub(crate) struct Parked {
    task: Record<dyn TaskObj>,
    token: u64,
}

impl Parked {
    /// Where the park stands. An entry whose task has since suspended
    /// again reads as cancelled.
    #[inline]
    pub(crate) fn state(&self) -> ParkState {
        let h = self.task.header();
        if h.token() == self.token { h.park_state() } else { ParkState::Cancelled }
    }

    /// Python: `not fut.done()`.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.state() == ParkState::Pending
    }

    /// Python: `fut.cancelled()`.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state() == ParkState::Cancelled
    }

    /// Wakes the parked task if it is still pending: its wake-up goes to
    /// the back of its loop's ready queue. Python: `fut.set_result(None)`.
    /// False if it was not pending, or its loop is gone (then nobody waits
    /// on it, and it stays pending).
    ///
    /// Call it on the loop's thread (a wake-up from another thread goes
    /// through the loop's channel first). It runs no user code (it only
    /// queues a handle), so the caller may hold a borrow of its own line of
    /// waiters meanwhile.
    #[inline(always)]
    pub(crate) fn wake(&self) -> bool {
        match self.mark_woken() {
            Some(core) => {
                core.push(Handle::Wakeup(runnable(self.task.clone()), self.token));
                true
            }
            None => false,
        }
    }

    /// [`wake`](Self::wake) for an entry taken out of its line: the entry
    /// becomes the wake-up, or comes back if it was not woken.
    ///
    /// # Errors
    ///
    /// The entry, if it was not pending or its loop is gone.
    #[inline(always)]
    pub(crate) fn wake_taken(self) -> Result<(), Parked> {
        match self.mark_woken() {
            Some(core) => {
                core.push(Handle::Wakeup(runnable(self.task), self.token));
                Ok(())
            }
            None => Err(self),
        }
    }

    /// Marks a pending park woken; the loop to queue its wake-up on.
    #[inline(always)]
    fn mark_woken(&self) -> Option<Rc<Core>> {
        let h = self.task.header();
        if h.token() != self.token || h.park_state() != ParkState::Pending {
            return None;
        }
        let core = h.core_alive()?;
        h.set_park_state(ParkState::Woken);
        Some(core)
    }

    /// Whether both entries are the same park.
    #[inline]
    pub(crate) fn same(&self, other: &Parked) -> bool {
        self.token == other.token && Record::ptr_eq(&self.task, &other.task)
    }
}

impl fmt::Debug for Parked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parked")
            .field("task", &self.task.header().id)
            .field("token", &self.token)
            .field("state", &self.state())
            .finish()
    }
}

/// The running task's side of a park: made before the entry is queued,
/// waited on once. Only the task that made it uses it.
pub(crate) struct Park {
    entry: Parked,
    yielder: RawYielder<Suspend, Wake>,
    what: &'static str,
}

impl Park {
    /// Starts a park of the running task: a new suspension, pending.
    /// `what` names the wait (`Queue.get`), in errors and reports.
    ///
    /// # Errors
    ///
    /// Refused, before anything is registered, if the caller may not wait:
    /// outside a task ([`ErrorKind::NoRunningLoop`](super::ErrorKind)),
    /// in a generator inside a task, or while unwinding
    /// ([`ErrorKind::Misuse`](super::ErrorKind)).
    #[inline(always)]
    pub(crate) fn prepare(what: &'static str) -> Result<Park, Error> {
        let yielder = waitable_yielder(what)?;
        // A yielder is set only during a task's step, with the task.
        let task = current_task_obj().ok_or_else(|| no_task(what))?;
        let h = task.header();
        let token = h.next_token();
        h.set_park_state(ParkState::Pending);
        Ok(Park { entry: Parked { task, token }, yielder, what })
    }

    /// The entry to queue where the waker finds it.
    #[inline]
    pub(crate) fn entry(&self) -> Parked {
        self.entry.clone()
    }

    /// Whether `entry` is this park's.
    #[inline]
    pub(crate) fn is(&self, entry: &Parked) -> bool {
        self.entry.same(entry)
    }

    /// Where the park stands.
    #[inline]
    pub(crate) fn state(&self) -> ParkState {
        self.entry.state()
    }

    /// Whether the parking task belongs to `core` (compared by identity:
    /// a `Weak` keeps its allocation, so the address is never reused while
    /// `core` exists).
    #[inline]
    pub(crate) fn is_on(&self, core: &super::LoopRef) -> bool {
        Weak::ptr_eq(self.entry.task.header().core_weak(), &core.0)
    }

    /// Suspends until the park is woken (`Ok`) or the task is cancelled
    /// (the cancellation, also if it was woken first). Python: `await fut`.
    ///
    /// Called once, right after the entry is queued. Had it been woken in
    /// between, its wake-up, queued for this suspension, would resume it.
    ///
    /// # Errors
    ///
    /// The cancellation, or a refused suspension.
    #[inline(always)]
    pub(crate) fn wait(&self) -> Result<(), Error> {
        let h = self.entry.task.header();
        debug_assert_eq!(h.token(), self.entry.token, "a park is waited on in its own suspension");
        match wait_with(h, self.yielder, Waiter::Parked(self.what))? {
            Wake::Go => Ok(()),
            Wake::Cancel(e) => Err(e),
        }
    }

    /// Cancels the park if it is still pending, with no wake-up: the task
    /// is running. Python: `fut.cancel()` by the waiter itself, after its
    /// wait ended (`# Just in case putter is not done yet.`).
    #[inline]
    pub(crate) fn cancel(&self) {
        if self.entry.is_pending() {
            self.entry.task.header().set_park_state(ParkState::Cancelled);
        }
    }
}

/// The cancellation walk reaches `task`, parked: cancels the park unless
/// it was woken already, and queues the task's wake-up with the
/// cancellation. True if the park was cancelled. Python: `fut.cancel(msg)`
/// on the future the task awaits.
pub(crate) fn cancel_parked(core: &Core, task: &Record<dyn TaskObj>, msg: Option<&str>) -> bool {
    let h = task.header();
    if h.park_state() != ParkState::Pending {
        return false;
    }
    h.set_park_state(ParkState::Cancelled);
    core.push(Handle::wakeup(
        runnable(task.clone()),
        h.token(),
        Wake::Cancel(Error::cancelled(msg)),
    ));
    true
}

#[cold]
fn no_task(what: &str) -> Error {
    Error::kind_msg(
        super::ErrorKind::NoRunningLoop,
        format!("{what} must be called from inside a task"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::runtime::{self, Builder, Clock, ErrorKind};
    use crate::sync::{Lock, Queue};

    /// A deadlock report says what a parked task waits for.
    #[test]
    fn a_task_parked_forever_is_reported_with_what_it_waits_for() {
        let e = Builder::new()
            .clock(Clock::virtual_time())
            .run(|| {
                let lock = Lock::new();
                let _held = lock.acquire()?;
                let l = lock.clone();
                runtime::TaskBuilder::new().name("locker").spawn(move || {
                    drop(l.acquire()?);
                    Ok(())
                })?;
                let queue: Queue<u32> = Queue::new();
                queue.get().map_err(runtime::Error::from)
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Deadlock);
        let report = e.to_string();
        assert!(report.contains("waits on Queue.get()"), "{report}");
        assert!(report.contains("task 'locker' waits on Lock.acquire()"), "{report}");
    }

    /// A wait makes no future, so it takes no task number: default names
    /// count tasks only, as CPython's `Task-<n>` does.
    #[test]
    fn waits_take_no_task_number() {
        let ids = Builder::new()
            .clock(Clock::virtual_time())
            .run(|| {
                let queue = Queue::bounded(1);
                let q = queue.clone();
                let first = runtime::spawn(move || {
                    for i in 0..3 {
                        q.put(i)?; // waits from the second item on
                    }
                    Ok(())
                });
                runtime::sleep(Duration::ZERO)?;
                for _ in 0..3 {
                    queue.get()?; // waits for each item but the first
                    runtime::sleep(Duration::ZERO)?;
                }
                first.join()?;
                let second = runtime::spawn(|| Ok(()));
                Ok((first.id(), second.id()))
            })
            .unwrap();
        assert_eq!(ids.1, ids.0 + 1);
    }
}
