//! Synchronisation between tasks: Python's `asyncio` queues
//! (`asyncio/queues.py`) and its `Event`, `Lock`, `Semaphore`,
//! `BoundedSemaphore` and `Condition` (`asyncio/locks.py`).
//!
//! Each primitive is a client of the runtime's parking machinery: where
//! CPython makes a future (`loop.create_future()`), queues it and awaits
//! it, a task that has to wait here *parks*: it queues itself (its entry
//! names the task and its suspension) and suspends, with no future and no
//! allocation. Whoever wakes it marks the entry woken and queues the task's
//! wake-up, so wake-ups go through the loop's ready queue in CPython's
//! order (as a future's done callback would); cancelling a parked task
//! cancels its park unless it was woken already (B5.7), which the primitive
//! notices and cleans up after, exactly as with CPython's `fut.done()` and
//! `fut.cancelled()`. A wait that cannot suspend (outside a task, in a
//! generator inside one, or while unwinding) is refused before anything is
//! queued or released. The queues of waiters are FIFO, and the
//! rules about who may take a lock, a permit or an item, and what a
//! cancelled waiter does with a wake-up it already received, are CPython
//! 3.11.7's (`docs/semantics.md` B.10 and B.11):
//!
//! * **No barging.** A [`Lock`] or [`Semaphore`] is taken at once only if
//!   nobody still waits for it; a newcomer queues behind a waiter that was
//!   woken but has not run yet.
//! * **A cancelled waiter loses nothing and steals nothing.** Cancelled
//!   before it was woken, it just leaves the queue. Cancelled after it was
//!   woken (between the wake-up and its next step), it passes the wake-up
//!   on to the next waiter; a queue item it was woken for stays queued.
//! * **Guards release on drop.** [`LockGuard`] and [`SemaphorePermit`]
//!   release in `Drop`, so an early return with `?`, a cancellation and a
//!   panic unwinding through the task all give the lock back.
//!
//! Every handle is cheap to clone (an `Rc` inside); all clones are the same
//! primitive, so several tasks can each hold one. Handles stay on their
//! thread.
//!
//! A primitive is not bound to a loop (CPython binds one to the loop of its
//! first wait): it may serve one loop after another. Two loops using it at
//! once is legal but rarely what is meant: a lock released in one may go to
//! a waiter of the other, which gets it only when its own loop runs, and a
//! task left waiting meanwhile shows in its loop's deadlock report (never a
//! silent hang). A waiter whose loop is torn down while it waits leaves the
//! line and passes on a wake-up it was given.
//!
//! * [`Queue`], [`LifoQueue`], [`PriorityQueue`]: `asyncio.Queue` and its
//!   orderings, with `task_done`/`join` and Python 3.13's
//!   [`shutdown`](GenericQueue::shutdown).
//! * [`Event`], [`Lock`], [`Semaphore`], [`BoundedSemaphore`],
//!   [`Condition`].
//!
//! ```
//! use gencoro::runtime::{self, Builder, Clock};
//! use gencoro::sync::Queue;
//!
//! let total = Builder::new().clock(Clock::virtual_time()).run(|| {
//!     let queue = Queue::new();
//!     let consumer = {
//!         let queue = queue.clone();
//!         runtime::spawn(move || {
//!             let mut total = 0;
//!             loop {
//!                 match queue.get() {
//!                     Ok(n) => total += n,
//!                     Err(e) if e.is_shut_down() => return Ok(total),
//!                     Err(e) => return Err(e.into()),
//!                 }
//!             }
//!         })
//!     };
//!     for n in 1..=4 {
//!         queue.put(n)?;
//!     }
//!     queue.shutdown(false); // the consumer drains what is left, then stops
//!     consumer.join()
//! });
//! assert_eq!(total.unwrap(), 10);
//! ```
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
mod queue;
mod semaphore;

pub use condition::Condition;
pub use event::Event;
pub use lock::{Lock, LockGuard, SyncError};
pub use queue::{
    Fifo, GenericQueue, GetError, Lifo, LifoQueue, Order, Priority, PriorityQueue, PutError, Queue,
    QueueEmpty, QueueFull, QueueShutDown, TaskDoneError, TryGetError, TryPutError,
};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphorePermit};
