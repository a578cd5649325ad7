//! Seed 004's "how to cancel": 100 tasks each sleep 10 s; the run is
//! interrupted after 2 s; every task is cancelled, the loop runs once more
//! (`stop`, then `run_forever`) so they see it, and the loop is closed.
//!
//! ```text
//! cargo run --example cancel_all [-- --virtual]
//! ```
//!
//! The seed waits for a Ctrl-C (`KeyboardInterrupt`); here a timer stops
//! the loop after 2 s, so `run_until_complete` fails with `Event loop
//! stopped before Future completed.`, and the same cleanup runs. The Python
//! twin (CPython 3.11 prints the same lines):
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

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Builder, Error, EventLoop, ReturnWhen};

fn test1() -> Result<(), Error> {
    println!("This is test1");
    runtime::sleep(Duration::from_secs(10))?;
    println!("test1 done");
    Ok(())
}

fn run(event_loop: &EventLoop) -> Result<usize, Error> {
    let tasks = (0..100).map(|_| event_loop.spawn(test1)).collect::<Result<Vec<_>, _>>()?;
    let waited = tasks.clone();
    let outcome = event_loop.run_until_complete(move || {
        runtime::call_later(Duration::from_secs(2), || {
            if let Ok(running) = EventLoop::running() {
                running.stop();
            }
        })?;
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

fn main() {
    let options = common::Options::parse("cancel_all [--virtual]");
    let clock = options.clock();
    let start = clock.now();
    let event_loop = Builder::new().clock(clock.clone()).build();
    match run(&event_loop) {
        Ok(cancelled) => println!("cancelled: {cancelled}"),
        Err(e) => {
            eprintln!("cancel_all failed: {e}");
            std::process::exit(1);
        }
    }
    common::print_elapsed(clock.now() - start);
}
