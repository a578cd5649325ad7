//! Seed 004's first program: ten tasks, each printing `start` and `end`
//! around a 5 s sleep, awaited with `wait`. All ten start at once and end
//! together, 5 s later: 5 s in all, not 50.
//!
//! ```text
//! cargo run --example start_end [-- --virtual]
//! ```
//!
//! The Python original prints `datetime.now()`; this counterpart and its
//! Python twin print the loop's clock instead, so the run on the virtual
//! clock is exact:
//!
//! ```python
//! async def test_asyncio():
//!     loop = asyncio.get_running_loop()
//!     print("start : {:.3f}".format(loop.time()))
//!     await asyncio.sleep(5)
//!     print('end : {:.3f}'.format(loop.time()))
//!
//! loop = asyncio.new_event_loop()
//! task = [loop.create_task(test_asyncio()) for i in range(10)]
//! loop.run_until_complete(asyncio.wait(task))
//! ```

mod common;

use std::time::Duration;

use gencoro::runtime::{self, Builder, Error, ReturnWhen};

fn test_asyncio() -> Result<(), Error> {
    println!("start : {:.3}", runtime::time()?.as_secs_f64());
    runtime::sleep(Duration::from_secs(5))?;
    println!("end : {:.3}", runtime::time()?.as_secs_f64());
    Ok(())
}

fn main() {
    let options = common::Options::parse("start_end [--virtual]");
    let clock = options.clock();
    let start = clock.now();
    let event_loop = Builder::new().clock(clock.clone()).build();
    let ran = (0..10)
        .map(|_| event_loop.spawn(test_asyncio))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|tasks| {
            event_loop.run_until_complete(move || {
                runtime::wait(tasks, ReturnWhen::AllCompleted, None)?;
                Ok(())
            })
        })
        .and_then(|()| event_loop.close());
    if let Err(e) = ran {
        eprintln!("start_end failed: {e}");
        std::process::exit(1);
    }
    common::print_elapsed(clock.now() - start);
}
