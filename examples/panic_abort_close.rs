//! What closing a generator does under each panic strategy.
//!
//! Closing a suspended generator unwinds its stack, so built with
//! `panic = "abort"` gencoro cannot run the destructors on it: it skips them
//! and leaks the stack instead (the generator module's docs). Generators
//! that were never started, or have finished, are closed the same way under
//! both strategies. `tests/panic_abort.rs` builds this example both ways and
//! checks what it prints; run it yourself with
//! `cargo run --example panic_abort_close --config 'profile.dev.panic="abort"'`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Builder, Clock};
use gencoro::{Generator, Yielder, stack};

/// Counts its drops.
struct Guard(Rc<Cell<u32>>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Stacks of the default size lent out on this thread.
fn stacks_in_use() -> usize {
    let pools = stack::pool_stats();
    let default = stack::usable_size(stack::DEFAULT_STACK_SIZE);
    pools.iter().find(|p| p.stack_size == default).map_or(0, |p| p.stacks_in_use)
}

fn main() {
    let strategy = if cfg!(panic = "abort") { "abort" } else { "unwind" };
    println!("panic strategy: {strategy}");

    // Never started: closing drops the body's captures, no unwinding needed.
    let drops = Rc::new(Cell::new(0));
    let guard = Guard(drops.clone());
    let created = Generator::new(move |co: &Yielder<u32>| {
        let _guard = &guard;
        co.yield_(1);
    });
    println!("created: close -> {:?}, drops {}", created.close(), drops.get());

    // Finished: the body's locals were dropped when it returned.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let finished = Generator::new(move |co: &Yielder<u32>| {
        let _guard = Guard(d);
        co.yield_(1);
        7
    });
    let steps = (finished.start(), finished.resume());
    println!("finished: {:?}, drops {}", steps, drops.get());
    println!("finished: close -> {:?}, drops {}", finished.close(), drops.get());

    // Suspended with a guard on its stack: closing it unwinds (unwind) or
    // abandons the stack (abort).
    let in_use = stacks_in_use();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let suspended = Generator::new(move |co: &Yielder<u32>| {
        let _guard = Guard(d);
        co.yield_(1);
        co.yield_(2);
    });
    println!("suspended: {:?}", suspended.start());
    println!(
        "suspended: close -> {:?}, state {:?}, drops {}",
        suspended.close(),
        suspended.state(),
        drops.get()
    );
    println!("suspended: resume after close -> {:?}", suspended.resume().map(|s| s.yielded()));
    drop(suspended);
    println!("suspended: stacks still lent out {}", stacks_in_use() - in_use);

    // Dropped while suspended: the same as closing.
    let in_use = stacks_in_use();
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let dropped = Generator::new(move |co: &Yielder<u32>| {
        let _guard = Guard(d);
        co.yield_(1);
    });
    let _ = dropped.start();
    drop(dropped);
    println!(
        "dropped suspended: drops {}, stacks still lent out {}",
        drops.get(),
        stacks_in_use() - in_use
    );

    // New generators still work, on fresh stacks.
    let counter = Generator::new(|co: &Yielder<u32>| {
        for n in 0..3 {
            co.yield_(n);
        }
    });
    let values: Vec<u32> = counter.collect();
    println!("afterwards: a new generator yields {values:?}");

    // A task still pending when its event loop is dropped is closed too.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let event_loop = Builder::new().clock(Clock::virtual_time()).build();
    let background = event_loop
        .run_until_complete(move || {
            Ok(runtime::spawn(move || {
                let _guard = Guard(d);
                runtime::sleep(Duration::from_secs(60))
            }))
        })
        .expect("main returns at once");
    let done = event_loop.run_until_complete(|| runtime::sleep(Duration::from_secs(1)));
    println!("task: pending {}, run -> {done:?}", !background.is_done());
    drop(event_loop);
    println!("task: loop dropped, drops {}", drops.get());

    // A task cancelled at `run`'s shutdown gets its cancellation as an error
    // from its wait: no unwinding, its cleanup runs under both strategies.
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let result = Builder::new().clock(Clock::virtual_time()).run(move || {
        runtime::spawn(move || {
            let _guard = Guard(d);
            runtime::sleep(Duration::from_secs(60))
        });
        runtime::sleep(Duration::ZERO)?;
        Ok("main")
    });
    println!("run: {result:?}, the cancelled task's drops {}", drops.get());

    println!("done");
}
