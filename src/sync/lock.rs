//! `Lock` (Python `asyncio.Lock`), its guard, the misuse errors of the sync
//! primitives, and the FIFO of parked waiters they all share.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::runtime::park::{Park, Parked};
use crate::runtime::{Error, ErrorKind};

/// A misuse of a synchronisation primitive, which Python reports with a
/// `RuntimeError` or a `ValueError`. Its `Display` is Python's message.
///
/// It converts into a [`runtime::Error`](Error) of kind [`ErrorKind::Misuse`], so
/// `?` works in a task body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyncError {
    /// [`Lock::release`] on an unlocked lock. Python:
    /// `RuntimeError('Lock is not acquired.')`.
    NotAcquired,
    /// [`Condition::wait`](super::Condition::wait) while its lock is not
    /// held. Python: `RuntimeError('cannot wait on un-acquired lock')`.
    WaitUnacquired,
    /// [`Condition::notify`](super::Condition::notify) while its lock is not
    /// held. Python: `RuntimeError('cannot notify on un-acquired lock')`.
    NotifyUnacquired,
    /// [`BoundedSemaphore::release`](super::BoundedSemaphore::release)
    /// above the initial value. Python:
    /// `ValueError('BoundedSemaphore released too many times')`.
    ReleasedTooManyTimes,
}

impl SyncError {
    /// Python's message.
    pub fn message(self) -> &'static str {
        match self {
            SyncError::NotAcquired => "Lock is not acquired.",
            SyncError::WaitUnacquired => "cannot wait on un-acquired lock",
            SyncError::NotifyUnacquired => "cannot notify on un-acquired lock",
            SyncError::ReleasedTooManyTimes => "BoundedSemaphore released too many times",
        }
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SyncError {}

impl From<SyncError> for Error {
    fn from(e: SyncError) -> Error {
        Error::kind_msg(ErrorKind::Misuse, e.message())
    }
}

/// The waiters of a primitive, oldest first. Python: the `_waiters` deque
/// of futures; here each entry is the parked task itself
/// ([`Parked`]). An empty queue owns no allocation.
#[derive(Default)]
pub(crate) struct Waiters {
    queue: RefCell<VecDeque<Parked>>,
}

impl Waiters {
    pub(crate) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    pub(crate) fn push(&self, entry: Parked) {
        self.queue.borrow_mut().push_back(entry);
    }

    /// Python: `_waiters.remove(fut)`. Usually the waiter is at the front
    /// (it was woken first), so that is looked at first.
    #[inline(always)]
    pub(crate) fn remove(&self, park: &Park) {
        let removed = {
            let mut queue = self.queue.borrow_mut();
            if queue.front().is_some_and(|p| park.is(p)) {
                queue.pop_front()
            } else {
                let at = queue.iter().position(|p| park.is(p));
                at.and_then(|i| queue.remove(i))
            }
        };
        // Dropped once the queue is no longer borrowed.
        drop(removed);
    }

    /// Wakes the first waiter if it is pending; true if it was woken.
    /// Waking only queues a wake-up and runs no user code, so it is done
    /// under the borrow.
    #[inline]
    pub(crate) fn wake_first(&self) -> bool {
        self.queue.borrow().front().is_some_and(Parked::wake)
    }

    /// Whether every waiter was cancelled (true if there is none).
    #[inline]
    pub(crate) fn all_cancelled(&self) -> bool {
        let queue = self.queue.borrow();
        queue.is_empty() || queue.iter().all(Parked::is_cancelled)
    }

    /// Wakes the first waiter that is not done yet, if any; true if it was
    /// woken.
    pub(crate) fn wake_first_pending(&self) -> bool {
        self.queue.borrow().iter().find(|p| p.is_pending()).is_some_and(Parked::wake)
    }

    /// Wakes the first `n` waiters that are pending, in order; returns how
    /// many it woke.
    pub(crate) fn wake_pending(&self, n: usize) -> usize {
        let mut woken = 0;
        for entry in self.queue.borrow().iter() {
            if woken == n {
                break;
            }
            // Not woken if its loop is gone, and then nobody waits on it.
            if entry.wake() {
                woken += 1;
            }
        }
        woken
    }

    /// Queues a new waiter; it leaves the queue when the returned entry is
    /// dropped (also while unwinding).
    pub(crate) fn enqueue(&self, park: Park) -> Enqueued<'_> {
        self.push(park.entry());
        Enqueued { waiters: self, park }
    }
}

/// A waiter's place in a queue, given up on drop. Python: the
/// `finally: self._waiters.remove(fut)` around `await fut`.
pub(crate) struct Enqueued<'a> {
    waiters: &'a Waiters,
    pub(crate) park: Park,
}

impl Drop for Enqueued<'_> {
    fn drop(&mut self) {
        self.waiters.remove(&self.park);
    }
}

/// A mutual-exclusion lock for tasks. Python: `asyncio.Lock`.
///
/// [`acquire`](Self::acquire) takes it at once if it is unlocked and no
/// task still waits for it; otherwise the task queues, first in, first out.
/// [`release`](Self::release) (or dropping the [`LockGuard`]) wakes the
/// first waiter, which then takes the lock when it runs. Nobody can take
/// the lock between that wake-up and the woken task's step, even though
/// the lock is unlocked meanwhile: there is no barging (CPython 3.11.7,
/// B11.1).
///
/// A lock is not owned by a task: any task may release it, as in Python.
/// It is not reentrant: a task that acquires it twice waits for itself.
///
/// Cheap to clone; all clones are the same lock.
///
/// ```
/// use gencoro::runtime::{self, Builder, Clock};
/// use gencoro::sync::Lock;
///
/// Builder::new().clock(Clock::virtual_time()).run(|| {
///     let lock = Lock::new();
///     let guard = lock.acquire()?; // Python: `async with lock:`
///     assert!(lock.locked());
///     let other = lock.clone();
///     let waiter = runtime::spawn(move || {
///         let _g = other.acquire()?; // waits until `guard` is dropped
///         Ok("got it")
///     });
///     runtime::sleep(std::time::Duration::ZERO)?;
///     assert_eq!(lock.waiters(), 1);
///     drop(guard);
///     assert_eq!(waiter.join()?, "got it");
///     assert!(!lock.locked());
///     Ok(())
/// }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Lock {
    inner: Rc<LockInner>,
}

#[derive(Default)]
struct LockInner {
    locked: Cell<bool>,
    /// Bumped at every acquisition: a guard releases only the acquisition
    /// it stands for (see [`LockGuard`]).
    epoch: Cell<u64>,
    waiters: Waiters,
}

impl Lock {
    /// A new, unlocked lock. It needs no running loop.
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Whether it is held. Python: `lock.locked()`.
    pub fn locked(&self) -> bool {
        self.inner.locked.get()
    }

    /// How many tasks are queued for it, counting those whose wait was
    /// cancelled or woken but which have not run since. Python:
    /// `len(lock._waiters)`.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }

    /// Takes the lock, waiting for it if need be, and returns the guard
    /// that releases it. Python: `await lock.acquire()`.
    ///
    /// It is taken at once, without yielding, if it is unlocked and every
    /// queued waiter was cancelled; otherwise the task queues behind the
    /// waiters and is woken in turn by a release.
    ///
    /// # Cancellation
    ///
    /// Cancelling the task while it waits here returns the cancellation and
    /// leaves the lock alone: the task is not queued any more and does not
    /// hold the lock. If it had been woken already (the lock was released
    /// to it, but it had not run yet), the lock stays unlocked and the wake-up
    /// passes on to the next waiter, so no release is lost.
    ///
    /// # Errors
    ///
    /// A cancellation; if the lock has to be waited for, the errors of a
    /// wait outside a task ([`ErrorKind::NoRunningLoop`], or
    /// [`ErrorKind::Misuse`] from a generator inside a task or while
    /// unwinding).
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>, Error> {
        self.acquire_raw()?;
        Ok(self.guard())
    }

    /// Takes the lock if that is possible without waiting (as `acquire`
    /// would), or returns `None`. Never yields.
    pub fn try_acquire(&self) -> Option<LockGuard<'_>> {
        if self.free_for_newcomer() {
            self.take();
            Some(self.guard())
        } else {
            None
        }
    }

    /// Releases the lock and wakes the first waiter, if any. Python:
    /// `lock.release()`.
    ///
    /// Guards release by themselves; call this to release a lock whose
    /// guard was given up with [`std::mem::forget`] (Python's
    /// `acquire()`/`release()` pairs in different places). A guard of an
    /// acquisition that was released this way does nothing when dropped.
    ///
    /// # Errors
    ///
    /// [`SyncError::NotAcquired`] if it is not locked.
    pub fn release(&self) -> Result<(), SyncError> {
        if self.inner.locked.get() {
            self.release_locked();
            Ok(())
        } else {
            Err(SyncError::NotAcquired)
        }
    }

    pub(crate) fn ptr_eq(&self, other: &Lock) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn guard(&self) -> LockGuard<'_> {
        LockGuard { lock: self, epoch: self.inner.epoch.get() }
    }

    /// `acquire` without the guard: the caller holds the lock on success.
    #[inline]
    pub(crate) fn acquire_raw(&self) -> Result<(), Error> {
        if self.free_for_newcomer() {
            self.take();
            Ok(())
        } else {
            self.acquire_slow()
        }
    }

    #[inline]
    fn free_for_newcomer(&self) -> bool {
        !self.inner.locked.get() && self.inner.waiters.all_cancelled()
    }

    #[inline]
    fn take(&self) {
        self.inner.locked.set(true);
        self.inner.epoch.set(self.inner.epoch.get().wrapping_add(1));
    }

    #[inline(never)]
    fn acquire_slow(&self) -> Result<(), Error> {
        let park = Park::prepare("Lock.acquire")?;
        self.inner.waiters.push(park.entry());
        let waiting = LockWait { lock: self, park: &park };
        match park.wait() {
            Ok(()) => {
                // Granted: it only leaves the queue (the guard owns nothing).
                std::mem::forget(waiting);
                self.inner.waiters.remove(&park);
                self.take();
                Ok(())
            }
            Err(e) => {
                drop(waiting);
                Err(e)
            }
        }
    }

    /// Unlocks and wakes the first waiter. The lock must be locked.
    pub(crate) fn release_locked(&self) {
        self.inner.locked.set(false);
        self.wake_up_first();
    }

    /// Python: `_wake_up_first`: wakes the first waiter if it is not done.
    /// A done one will run, and take the lock or pass the wake-up on.
    fn wake_up_first(&self) {
        // Not woken if its loop is gone, and then nobody waits on it.
        self.inner.waiters.wake_first();
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.inner.epoch.get()
    }
}

/// A waiter of `Lock::acquire_slow` that did not get the lock (cancelled,
/// refused, or unwound): leaves the queue when dropped and passes on a
/// wake-up it may have received. Python: the `finally` and the `except
/// CancelledError` of `Lock.acquire`, in that order. A granted waiter
/// forgets it and only leaves the queue.
struct LockWait<'a> {
    lock: &'a Lock,
    park: &'a Park,
}

impl Drop for LockWait<'_> {
    fn drop(&mut self) {
        self.lock.inner.waiters.remove(self.park);
        if !self.lock.inner.locked.get() {
            self.lock.wake_up_first();
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// Holds a [`Lock`] and releases it when dropped, also when the task
/// returns early with `?`, is cancelled, or unwinds from a panic. Python:
/// the body of `async with lock:`.
///
/// A guard stands for one acquisition: if the lock was released by hand
/// meanwhile ([`Lock::release`]), dropping the guard does nothing, even if
/// another task holds the lock by then.
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    epoch: u64,
}

impl LockGuard<'_> {
    /// The lock it holds.
    pub fn lock(&self) -> &Lock {
        self.lock
    }

    /// Whether the guard still holds its acquisition.
    pub fn is_held(&self) -> bool {
        self.lock.inner.locked.get() && self.lock.inner.epoch.get() == self.epoch
    }

    /// After the lock was given up and taken again on this guard's behalf
    /// (`Condition::wait`), the guard stands for the new acquisition.
    pub(crate) fn renew(&mut self) {
        self.epoch = self.lock.epoch();
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.is_held() {
            self.lock.release_locked();
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("held", &self.is_held()).finish()
    }
}
