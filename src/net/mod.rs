//! Non-blocking TCP on the event loop: a socket's readiness is one more
//! thing a task waits for. Python: `asyncio`'s streams and
//! `loop.sock_*` methods, on a selector loop.
//!
//! Every call that would block ([`TcpListener::accept`],
//! [`TcpStream::connect`], [`read`](TcpStream::read),
//! [`write`](TcpStream::write), ...) is a plain call that tries the system
//! call first and, if the socket is not ready, parks the task until the
//! loop's poll says it is; the wake-up enters the ready queue like every
//! other, so the loop's FIFO order still decides what runs. The poll is
//! made when the first socket waits, so a loop without sockets runs exactly
//! as before. Only this module and the loop's wait step use `mio`.
//!
//! ```
//! use std::net::SocketAddr;
//! use gencoro::net::{TcpListener, TcpStream};
//! use gencoro::runtime::{self, Builder, Clock};
//!
//! let reply = Builder::new().clock(Clock::virtual_time()).run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//!     let addr: SocketAddr = listener.local_addr()?;
//!     let server = runtime::spawn(move || {
//!         let (stream, _peer) = listener.accept()?;
//!         let mut buf = [0; 5];
//!         stream.read_exact(&mut buf)?;
//!         stream.write_all(&buf)?; // echo
//!         Ok(())
//!     });
//!     let client = TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     let mut buf = [0; 5];
//!     client.read_exact(&mut buf)?;
//!     server.join()?;
//!     Ok(buf)
//! });
//! assert_eq!(&reply.unwrap(), b"hello");
//! ```
//!
//! Tasks wait for SIGINT (Ctrl-C) and SIGTERM with [`ctrl_c`] and
//! [`signal::wait`]; see the [`signal`] module, also for what
//! [`runtime::run`](crate::runtime::run) does on Ctrl-C.
//!
//! # Errors
//!
//! A failed system call is an [`ErrorKind::Io`](crate::runtime::ErrorKind)
//! error holding the [`std::io::Error`], kind preserved
//! ([`Error::io_kind`](crate::runtime::Error::io_kind)); a cancellation
//! while waiting is the cancellation. Nothing here panics on I/O failure.
//! The `std::io::Read`/`Write` implementations return `std::io::Error`s
//! instead, with the runtime's `Error` inside for anything that is not
//! I/O (see `From<Error> for std::io::Error`).
//!
//! # Cancellation
//!
//! A wait is cancelled at its suspension point ([`runtime::wait_for`],
//! [`Task::cancel`]): the call returns the cancellation, having transferred
//! nothing in that wait, and nothing stays registered that could wake the
//! task later. [`TcpStream::read`] and [`TcpStream::write`] are therefore
//! cancel-safe: bytes they did not report were not consumed, and the next
//! read returns them. [`TcpStream::read_exact`] and
//! [`TcpStream::write_all`] loop over several waits: cancelled part-way,
//! what earlier rounds transferred is gone (read) or sent (written), as
//! with Python's `readexactly` and `drain`.
//!
//! # Clocks
//!
//! On the real clock the loop blocks in its poll until a socket is ready,
//! a timer is due, or another thread posts. On the virtual clock the loop
//! looks at its sockets without blocking before time jumps to the next
//! timer, and socket events always win over a jump; the kernel delivers
//! loopback traffic within the system call, so a client and a server in the
//! same process run on virtual time as they would on real time. A remote
//! peer's answer takes real time, during which virtual time does not wait:
//! with a timer armed, the loop jumps to it. With no timer armed and a task
//! parked on a socket, the loop blocks in its poll (a socket with a waiter
//! is outside work) rather than report a deadlock. A schedule-driven run
//! ([`gencoro::testing`](crate::testing)) only ever looks without blocking.
//!
//! [`runtime::wait_for`]: crate::runtime::wait_for
//! [`Task::cancel`]: crate::runtime::Task::cancel

pub(crate) mod driver;
pub mod signal;
mod socket;
mod tcp;

pub use signal::ctrl_c;
pub use tcp::{TcpListener, TcpStream};
