//! Seed 000: three workers; cancel `task_3` after 2 s, then gather with
//! `return_exceptions=True` and print the three outcomes.
//!
//! ```text
//! cargo run --example workers_cancel [-- --virtual]
//! ```
//!
//! The Python original; CPython 3.11 prints
//! `[1, ZeroDivisionError('division by zero'), CancelledError('')]`:
//!
//! ```python
//! async def worker_1():
//!     await asyncio.sleep(1)
//!     return 1
//!
//! async def worker_2():
//!     await asyncio.sleep(2)
//!     return 2 / 0
//!
//! async def worker_3():
//!     await asyncio.sleep(3)
//!     return 3
//!
//! async def main():
//!     task_1 = asyncio.create_task(worker_1())
//!     task_2 = asyncio.create_task(worker_2())
//!     task_3 = asyncio.create_task(worker_3())
//!
//!     await asyncio.sleep(2)
//!     task_3.cancel()
//!
//!     res = await asyncio.gather(task_1, task_2, task_3, return_exceptions=True)
//!     print(res)
//! ```

mod common;

use std::fmt;
use std::time::Duration;

use gencoro::runtime::{self, Error};

/// Python's `ZeroDivisionError`.
#[derive(Debug)]
struct ZeroDivisionError;

impl fmt::Display for ZeroDivisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}

impl std::error::Error for ZeroDivisionError {}

/// Python's `2 / 0`.
fn divide(a: i64, b: i64) -> Result<i64, Error> {
    a.checked_div(b).ok_or_else(|| Error::new(ZeroDivisionError))
}

fn worker_1() -> Result<i64, Error> {
    runtime::sleep(Duration::from_secs(1))?;
    Ok(1)
}

fn worker_2() -> Result<i64, Error> {
    runtime::sleep(Duration::from_secs(2))?;
    divide(2, 0)
}

fn worker_3() -> Result<i64, Error> {
    runtime::sleep(Duration::from_secs(3))?;
    Ok(3)
}

/// How Python's `print(list)` shows each outcome.
fn python_repr(outcome: &Result<i64, Error>) -> String {
    match outcome {
        Ok(value) => value.to_string(),
        Err(e) if e.is_cancelled() => format!("CancelledError('{}')", e.message()),
        Err(e) if e.downcast_ref::<ZeroDivisionError>().is_some() => {
            format!("ZeroDivisionError('{}')", e.message())
        }
        Err(e) => format!("Exception('{}')", e.message()),
    }
}

fn main() {
    let options = common::Options::parse("workers_cancel [--virtual]");
    let (result, elapsed) = common::run_timed(&options.clock(), || {
        let task_1 = runtime::spawn(worker_1);
        let task_2 = runtime::spawn(worker_2);
        let task_3 = runtime::spawn(worker_3);

        runtime::sleep(Duration::from_secs(2))?;
        task_3.cancel();

        let res = runtime::gather_outcomes([task_1, task_2, task_3])?;
        let shown: Vec<String> = res.iter().map(python_repr).collect();
        println!("[{}]", shown.join(", "));
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("workers_cancel failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
