//! Seed 001: the order of control flow when awaiting coroutines directly
//! (`--mode sequential`) or as tasks (`--mode tasks`).
//!
//! ```text
//! cargo run --example await_flow -- --mode tasks [--virtual]
//! ```
//!
//! The Python original (CPython 3.11 prints the same lines):
//!
//! ```python
//! async def work_1():
//!     print('work_1 start')
//!     await asyncio.sleep(1)
//!     print('work_1 end')
//!
//! async def work_2():
//!     print('work_2 start')
//!     await asyncio.sleep(2)
//!     print('work_2 end')
//!
//! async def main():                          # --mode sequential
//!     print('before await')
//!     await work_1()
//!     print('awaited work_1')
//!     await work_2()
//!     print('awaited work_2')
//!
//! async def main():                          # --mode tasks
//!     task1 = asyncio.create_task(work_1())
//!     task2 = asyncio.create_task(work_2())
//!     print('before await')
//!     await task1
//!     print('awaited work_1')
//!     await task2
//!     print('awaited work_2')
//! ```

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Error};

const USAGE: &str = "await_flow [--mode sequential|tasks] [--virtual]";

fn work_1() -> Result<(), Error> {
    println!("work_1 start");
    runtime::sleep(Duration::from_secs(1))?;
    println!("work_1 end");
    Ok(())
}

fn work_2() -> Result<(), Error> {
    println!("work_2 start");
    runtime::sleep(Duration::from_secs(2))?;
    println!("work_2 end");
    Ok(())
}

/// `await work_1()` is a plain call: it runs inside main's own task.
fn main_sequential() -> Result<(), Error> {
    println!("before await");
    work_1()?;
    println!("awaited work_1");
    work_2()?;
    println!("awaited work_2");
    Ok(())
}

fn main_tasks() -> Result<(), Error> {
    let task1 = runtime::spawn(work_1);
    let task2 = runtime::spawn(work_2);
    println!("before await");
    task1.join()?;
    println!("awaited work_1");
    task2.join()?;
    println!("awaited work_2");
    Ok(())
}

fn main() {
    let options = common::Options::parse(USAGE);
    let main_fn = match options.mode(USAGE, &["tasks", "sequential"]) {
        "sequential" => main_sequential,
        _ => main_tasks,
    };
    let (result, elapsed) = common::run_timed(&options.clock(), main_fn);
    if let Err(e) = result {
        eprintln!("await_flow failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
