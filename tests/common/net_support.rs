//! What the socket tests share: one test at a time (they count the
//! process's file descriptors), a watchdog, and loopback helpers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use gencoro::runtime::{Builder, Clock, Error};

/// One test at a time, so that counts of `/proc/self/fd` see only theirs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f` on a thread of its own, one test at a time, and fails if it
/// takes longer than `limit` (a loop blocked in its poll for good would
/// hang the test).
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            worker.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: show its panic.
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("the test took over {limit:?}"),
    }
}

/// Runs `main` on a loop with the virtual clock.
pub fn virtual_run<T: 'static>(
    main: impl FnOnce() -> Result<T, Error> + 'static,
) -> Result<T, Error> {
    Builder::new().clock(Clock::virtual_time()).run(main)
}

/// Any free port on 127.0.0.1.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// How many file descriptors the process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}
