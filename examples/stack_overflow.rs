//! A generator that recurses without bound overflows its stack, hits the
//! guard page below it, and the process aborts with gencoro's message:
//!
//! ```text
//! gencoro: coroutine stack overflow: a coroutine used up its 131072-byte stack ...
//! ```
//!
//! Run with `cargo run --example stack_overflow [STACK_SIZE_BYTES]`. The
//! optional argument sets the stack size through
//! `GeneratorBuilder::stack_size`; the default is `DEFAULT_STACK_SIZE`.

use std::hint::black_box;
use std::process::ExitCode;

use gencoro::stack::DEFAULT_STACK_SIZE;
use gencoro::{Generator, GeneratorBuilder};

/// Uses a kilobyte of stack per call. `black_box` keeps the array and the
/// recursion from being optimised away (the exit condition is opaque to the
/// compiler and never true), and the work after the recursive call keeps it
/// from being a tail call.
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = black_box([depth as u8; 1024]);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(u64::from(frame[(depth % 1024) as usize]))
}

fn main() -> ExitCode {
    let stack_size = match std::env::args().nth(1) {
        None => DEFAULT_STACK_SIZE,
        Some(arg) => match arg.parse() {
            Ok(bytes) => bytes,
            Err(_) => {
                eprintln!("usage: stack_overflow [STACK_SIZE_BYTES]; not a number: {arg:?}");
                return ExitCode::from(2);
            }
        },
    };
    let g: Generator<u64> = GeneratorBuilder::new()
        .stack_size(stack_size)
        .build(|co| {
            co.yield_(0);
            co.yield_(recurse(0));
        })
        .expect("a stack could be mapped");
    println!("stack size: {} bytes; recursing without bound inside a generator", g.stack_size());
    g.start().unwrap();
    // Never returns: the overflow handler aborts the process.
    let result = g.resume();
    println!("unreachable: the recursion returned {result:?}");
    ExitCode::FAILURE
}
