//! Synchronisation between tasks: Python's `asyncio` queues (and, with the
//! rest of this layer, its locks and events).
//!
//! Every primitive here is a client of the runtime's public waiting
//! machinery, as in CPython: a task that must wait makes a
//! [`Promise`](crate::runtime::Promise) (Python's `loop.create_future()`),
//! puts it in the primitive's line of waiters and waits on it; whoever
//! releases the primitive completes the first waiter still pending.
//! Wake-ups therefore go through the loop's ready queue in CPython's order,
//! and cancelling a waiting task cancels its promise (B5.7), which the
//! primitive notices and cleans up after.
//!
//! All handles are cheap to clone (an `Rc` inside) and stay on the loop's
//! thread.
//!
//! * [`Queue`], [`LifoQueue`], [`PriorityQueue`]: `asyncio.Queue` and its
//!   orderings, with Python 3.13's [`shutdown`](GenericQueue::shutdown).
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

mod queue;

pub use queue::{
    Fifo, GenericQueue, GetError, Lifo, LifoQueue, Order, Priority, PriorityQueue, PutError, Queue,
    QueueEmpty, QueueFull, QueueShutDown, TaskDoneError, TryGetError, TryPutError,
};
