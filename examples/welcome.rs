//! Seed 003: `a()` and `b()` with their Chinese messages, as two tasks
//! (`--mode tasks`) or through `gather` (`--mode gather`).
//!
//! ```text
//! cargo run --example welcome -- --mode gather [--virtual]
//! ```
//!
//! The Python original (CPython 3.11 prints the same lines; its timing line
//! `花费 {} s` becomes `elapsed: <seconds>s`):
//!
//! ```python
//! async def a():
//!     print("欢迎使用 a ！")
//!     await asyncio.sleep(1)
//!     print("欢迎回到 a ！")
//!
//! async def b():
//!     print("欢迎来到 b ！")
//!     await asyncio.sleep(2)
//!     print("欢迎回到 b ！")
//!
//! async def main():                          # --mode tasks
//!     task1 = asyncio.create_task(a())
//!     task2 = asyncio.create_task(b())
//!     print("准备开始")
//!     await task1
//!     print("task1 结束")
//!     await task2
//!     print("task2 结束")
//!
//! async def main():                          # --mode gather
//!     await asyncio.gather(a(), b())
//! ```

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Error};

const USAGE: &str = "welcome [--mode tasks|gather] [--virtual]";

fn a() -> Result<(), Error> {
    println!("欢迎使用 a ！");
    runtime::sleep(Duration::from_secs(1))?;
    println!("欢迎回到 a ！");
    Ok(())
}

fn b() -> Result<(), Error> {
    println!("欢迎来到 b ！");
    runtime::sleep(Duration::from_secs(2))?;
    println!("欢迎回到 b ！");
    Ok(())
}

fn main_tasks() -> Result<(), Error> {
    let task1 = runtime::spawn(a);
    let task2 = runtime::spawn(b);
    println!("准备开始");
    task1.join()?;
    println!("task1 结束");
    task2.join()?;
    println!("task2 结束");
    Ok(())
}

/// `gather(a(), b())` wraps each coroutine in a task, in argument order.
fn main_gather() -> Result<(), Error> {
    runtime::gather([runtime::spawn(a), runtime::spawn(b)])?;
    Ok(())
}

fn main() {
    let options = common::Options::parse(USAGE);
    let main_fn = match options.mode(USAGE, &["tasks", "gather"]) {
        "gather" => main_gather,
        _ => main_tasks,
    };
    let (result, elapsed) = common::run_timed(&options.clock(), main_fn);
    if let Err(e) = result {
        eprintln!("welcome failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(elapsed);
}
