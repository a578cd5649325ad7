//! Synchronisation primitives for tasks: Python's `asyncio.Event`, `Lock`,
//! `Semaphore`, `BoundedSemaphore` and `Condition` (`asyncio/locks.py`).
//!
//! Each primitive is a client of the runtime's public waiting machinery: a
//! task that has to wait makes a [`Promise`](crate::runtime::Promise)
//! (Python's `loop.create_future()`), queues it, and waits on it; whoever
//! wakes it completes the promise. The queues are FIFO, and the rules about
//! who may take a lock or a permit, and what a cancelled waiter does with a
//! wake-up it already received, are CPython 3.11.7's
//! (`docs/semantics.md` B.11):
//!
//! * **No barging.** A [`Lock`] or [`Semaphore`] is taken at once only if
//!   nobody still waits for it; a newcomer queues behind a waiter that was
//!   woken but has not run yet.
//! * **A cancelled waiter loses nothing and steals nothing.** Cancelled
//!   before it was woken, it just leaves the queue. Cancelled after it was
//!   woken (between the wake-up and its next step), it passes the wake-up
//!   on to the next waiter.
//! * **Guards release on drop.** [`LockGuard`] and [`SemaphorePermit`]
//!   release in `Drop`, so an early return with `?`, a cancellation and a
//!   panic unwinding through the task all give the lock back.
//!
//! Every handle is cheap to clone (an `Rc` inside); all clones are the same
//! primitive, so several tasks can each hold one. A primitive is not bound
//! to a loop: it can be made outside one and used by the tasks of any loop
//! on its thread.
//!
//! ```
//! use std::time::Duration;
//! use gencoro::runtime::{self, Builder, Clock};
//! use gencoro::sync::Lock;
//!
//! let clock = Clock::virtual_time();
//! let order = Builder::new().clock(clock.clone()).run(|| {
//!     let lock = Lock::new();
//!     let tasks: Vec<_> = (0..3)
//!         .map(|i| {
//!             let lock = lock.clone();
//!             runtime::spawn(move || {
//!                 let _held = lock.acquire()?; // released when `_held` drops
//!                 runtime::sleep(Duration::from_secs(1))?;
//!                 Ok(i)
//!             })
//!         })
//!         .collect();
//!     runtime::gather(tasks)
//! });
//! assert_eq!(order.unwrap(), [0, 1, 2]);
//! assert_eq!(clock.now(), Duration::from_secs(3)); // one at a time
//! ```

mod condition;
mod event;
mod lock;
mod semaphore;

pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard, SyncError};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
