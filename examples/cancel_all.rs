//! Seed 004's "how to cancel": 100 tasks each sleep 10 s; the run is
//! interrupted after 2 s; every task is cancelled, the loop runs once more
//! (`stop`, then `run_forever`) so they see it, and the loop is closed.
//!
//! ```text
//! cargo run --example cancel_all [-- --virtual | --ctrl-c]
//! ```
//!
//! The seed waits for a Ctrl-C (`KeyboardInterrupt`); by default a timer
//! stops the loop after 2 s instead, so `run_until_complete` fails with
//! `Event loop stopped before Future completed.`, and the same cleanup
//! runs. The Python twin (CPython 3.11 prints the same lines):
//!
//! ```python
//! async def test1():
//!     print('This is test1')
//!     await asyncio.sleep(10)
//!     print('test1 done')
//!
//! loop = asyncio.new_event_loop()
//! tasks = [loop.create_task(test1()) for i in range(100)]
//! loop.call_later(2, loop.stop)
//! try:
//!     loop.run_until_complete(asyncio.wait(tasks))
//! except RuntimeError as e:
//!     print('interrupted: {}'.format(e))
//!     for task in asyncio.all_tasks(loop):
//!         task.cancel()
//!     loop.stop()
//!     loop.run_forever()
//! finally:
//!     loop.close()
//! print('cancelled: {}'.format(sum(t.cancelled() for t in tasks)))
//! ```
//!
//! With `--ctrl-c` (real clock only) it waits for a real Ctrl-C, as the
//! seed does: a task waits in [`net::ctrl_c`] and stops the loop when
//! SIGINT arrives (where Python's `KeyboardInterrupt` breaks out of
//! `run_until_complete`), once `press Ctrl-C to interrupt` is printed; the
//! same cleanup runs, and each task prints `test1 cleanup` as its stack
//! unwinds (Python: `try: ... finally: print('test1 cleanup')` in
//! `test1`). A second Ctrl-C, during the cleanup, kills the process.

mod common;

use std::time::Duration;

use gencoro::net;
use gencoro::runtime::{self, Builder, Error, EventLoop, ReturnWhen};

fn test1() -> Result<(), Error> {
    println!("This is test1");
    runtime::sleep(Duration::from_secs(10))?;
    println!("test1 done");
    Ok(())
}

/// `--ctrl-c`'s `finally:` clause: runs when the task's stack unwinds.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        println!("test1 cleanup");
    }
}

fn test1_with_cleanup() -> Result<(), Error> {
    let _cleanup = Cleanup;
    test1()
}

fn stop_loop() {
    if let Ok(running) = EventLoop::running() {
        running.stop();
    }
}

fn run(event_loop: &EventLoop, ctrl_c: bool) -> Result<usize, Error> {
    let body = if ctrl_c { test1_with_cleanup } else { test1 };
    let tasks = (0..100).map(|_| event_loop.spawn(body)).collect::<Result<Vec<_>, _>>()?;
    let waited = tasks.clone();
    let outcome = event_loop.run_until_complete(move || {
        if ctrl_c {
            runtime::spawn(|| {
                // Runs once this task waits for the signal.
                runtime::call_soon(|| println!("press Ctrl-C to interrupt"))?;
                net::ctrl_c()?;
                stop_loop();
                Ok(())
            });
        } else {
            runtime::call_later(Duration::from_secs(2), stop_loop)?;
        }
        runtime::wait(waited, ReturnWhen::AllCompleted, None)?;
        Ok(())
    });
    if let Err(e) = outcome {
        println!("interrupted: {}", e.message());
        for task in event_loop.all_tasks() {
            task.cancel();
        }
        event_loop.stop();
        event_loop.run_forever()?;
    }
    event_loop.close()?;
    Ok(tasks.iter().filter(|t| t.is_cancelled()).count())
}

const USAGE: &str = "cancel_all [--virtual | --ctrl-c]";

fn main() {
    let (mut virtual_time, mut ctrl_c) = (false, false);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--virtual" => virtual_time = true,
            "--ctrl-c" => ctrl_c = true,
            _ => usage(&format!("unknown argument {arg:?}")),
        }
    }
    if virtual_time && ctrl_c {
        // Virtual time would not wait for the signal: the tasks' sleeps
        // would end at once.
        usage("--ctrl-c waits on the real clock");
    }
    let options = common::Options { virtual_time, mode: None };
    let clock = options.clock();
    let start = clock.now();
    let event_loop = Builder::new().clock(clock.clone()).build();
    match run(&event_loop, ctrl_c) {
        Ok(cancelled) => println!("cancelled: {cancelled}"),
        Err(e) => {
            eprintln!("cancel_all failed: {e}");
            std::process::exit(1);
        }
    }
    common::print_elapsed(clock.now() - start);
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}\nusage: {USAGE}");
    std::process::exit(2)
}
