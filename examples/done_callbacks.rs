//! Seed 004: a task with a done callback, then ten tasks awaited with
//! `wait` and their results printed in order. Both programs run one after
//! the other, each on a loop of its own, as in the seed.
//!
//! ```text
//! cargo run --example done_callbacks [-- --virtual]
//! ```
//!
//! The Python original (CPython 3.11 prints the same lines):
//!
//! ```python
//! async def test1():
//!     print("This is test1")
//!     await test2()
//!     print("test1 end")
//!     return "result done"
//!
//! async def test2():
//!     await asyncio.sleep(4)
//!     print("This is test2")
//!
//! def callback(future):
//!     print("callback: ", future.result())
//!
//! loop = asyncio.new_event_loop()
//! task = loop.create_task(test1())
//! task.add_done_callback(callback)
//! loop.run_until_complete(task)
//!
//! async def test1(x):
//!     print("I am test1 and the param is {}".format(x))
//!     await asyncio.sleep(10)
//!     return x*10
//!
//! loop = asyncio.new_event_loop()
//! tasks = [loop.create_task(test1(x)) for x in range(10)]
//! loop.run_until_complete(asyncio.wait(tasks))
//! for task in tasks:
//!     print(task.result())
//! ```

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock, Error, ReturnWhen};

fn test1() -> Result<&'static str, Error> {
    println!("This is test1");
    test2()?;
    println!("test1 end");
    Ok("result done")
}

fn test2() -> Result<(), Error> {
    runtime::sleep(Duration::from_secs(4))?;
    println!("This is test2");
    Ok(())
}

fn one_callback(clock: &Clock) -> Result<(), Error> {
    let event_loop = Builder::new().clock(clock.clone()).build();
    let task = event_loop.spawn(test1)?;
    task.add_done_callback(|future| match future.result() {
        // Python's print(a, b) puts a space between its arguments.
        Ok(value) => println!("callback:  {value}"),
        Err(e) => println!("callback failed: {e}"),
    })?;
    // `run_until_complete(task)`: main only waits; the value stays in the
    // task for the callback to read.
    let waited = task.clone();
    event_loop.run_until_complete(move || {
        runtime::wait([waited], ReturnWhen::AllCompleted, None)?;
        Ok(())
    })
}

fn test1_with(x: u64) -> Result<u64, Error> {
    println!("I am test1 and the param is {x}");
    runtime::sleep(Duration::from_secs(10))?;
    Ok(x * 10)
}

fn ten_tasks(clock: &Clock) -> Result<(), Error> {
    let event_loop = Builder::new().clock(clock.clone()).build();
    let tasks =
        (0..10).map(|x| event_loop.spawn(move || test1_with(x))).collect::<Result<Vec<_>, _>>()?;
    let waited = tasks.clone();
    event_loop.run_until_complete(move || {
        runtime::wait(waited, ReturnWhen::AllCompleted, None)?;
        Ok(())
    })?;
    for task in &tasks {
        println!("{}", task.result()?);
    }
    Ok(())
}

fn main() {
    let options = common::Options::parse("done_callbacks [--virtual]");
    let clock = options.clock();
    let start = clock.now();
    if let Err(e) = one_callback(&clock).and_then(|()| ten_tasks(&clock)) {
        eprintln!("done_callbacks failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(clock.now() - start);
}
