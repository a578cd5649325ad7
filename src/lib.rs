//! # gencoro
//!
//! Python's generator protocol and asyncio, in Rust, on stackful coroutines.
//!
//! * **Generators** ([`Generator`]): `start`/`resume` (Python's `next`),
//!   [`send`](Generator::send), [`throw`](Generator::throw),
//!   [`close`](Generator::close) and [`yield_from`](Yielder::yield_from)
//!   (PEP 380, with the delegate's return value). Each generator has a stack
//!   of its own, so a plain function any number of calls deep can yield.
//! * **An event loop** ([`runtime`]) layered on the generators: [`run`](runtime::run),
//!   tasks, [`sleep`](runtime::sleep), [`gather`](runtime::gather),
//!   [`wait`](runtime::wait), timeouts, cancellation delivered at the
//!   suspension point, done callbacks, on a real or a virtual clock.
//!   Waiting is a plain function call, so there is no `async` colouring.
//! * **Stacks** ([`stack`]) come from a per-thread pool with guard pages; a
//!   million suspended generators fit in about 4 GiB.
//!
//! ```
//! use gencoro::{Generator, Step};
//!
//! // Python:  def counter():  n = 0
//! //                           while True: n += (yield n) or 1
//! let counter = Generator::new(|co| {
//!     let mut n = 0;
//!     loop {
//!         let step: Option<u32> = co.yield_(n);
//!         n += step.unwrap_or(1);
//!     }
//! });
//! assert_eq!(counter.resume().unwrap(), Step::Yielded(0));
//! assert_eq!(counter.resume().unwrap(), Step::Yielded(1));
//! assert_eq!(counter.send(Some(10)).unwrap(), Step::Yielded(11));
//! counter.close().unwrap();
//! ```
//!
//! A task is a generator that yields what it waits for; the loop decides
//! the order exactly as CPython's `asyncio` does:
//!
//! ```
//! use std::time::Duration;
//! use gencoro::runtime::{self, Builder, Clock};
//!
//! let clock = Clock::virtual_time(); // ten seconds pass in microseconds
//! let total = Builder::new().clock(clock.clone()).run(|| {
//!     let tasks: Vec<_> = (1..=4)
//!         .map(|n| runtime::spawn(move || { runtime::sleep(Duration::from_secs(n))?; Ok(n) }))
//!         .collect();
//!     Ok(runtime::gather(tasks)?.iter().sum::<u64>())
//! });
//! assert_eq!(total.unwrap(), 10);
//! assert_eq!(clock.now(), Duration::from_secs(4));
//! ```
//!
//! The behaviour follows CPython 3.11 item by item; see the module docs of
//! [`generator`] for the mapping of Python's generator protocol onto Rust
//! types, and of [`runtime`] for the loop's ordering rules.
//! Tasks wait on sockets too: [`net`] has non-blocking TCP on the loop.

#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

pub mod blocking;
pub mod generator;
pub mod net;
pub mod runtime;
pub mod stack;
pub mod sync;
pub mod testing;

pub use generator::{
    CloseError, Generator, GeneratorBuilder, GeneratorExit, ResumeError, SendError, State, Step,
    ThrowError, YieldFromError, Yielder,
};
