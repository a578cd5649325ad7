//! Shared by the seed examples: command-line options and the timing line.

#![allow(dead_code)]

use std::time::Duration;

use gencoro::runtime::{Builder, Clock, Error};

/// The options every seed example takes.
pub struct Options {
    /// `--virtual`: run on the virtual clock.
    pub virtual_time: bool,
    /// `--mode <name>`, if given.
    pub mode: Option<String>,
}

impl Options {
    /// Parses the process arguments; exits with a usage message on error.
    pub fn parse(usage: &str) -> Options {
        let mut options = Options { virtual_time: false, mode: None };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--virtual" => options.virtual_time = true,
                "--mode" => options.mode = args.next(),
                _ => fail(usage, &format!("unknown argument {arg:?}")),
            }
        }
        options
    }

    /// The mode, checked against the allowed ones; the first is the default.
    pub fn mode<'a>(&self, usage: &str, allowed: &[&'a str]) -> &'a str {
        match &self.mode {
            None => allowed[0],
            Some(m) => allowed
                .iter()
                .find(|a| **a == m.as_str())
                .copied()
                .unwrap_or_else(|| fail(usage, &format!("unknown mode {m:?}"))),
        }
    }

    /// The clock these options ask for.
    pub fn clock(&self) -> Clock {
        if self.virtual_time { Clock::virtual_time() } else { Clock::real_time() }
    }
}

fn fail(usage: &str, problem: &str) -> ! {
    eprintln!("{problem}\nusage: {usage}");
    std::process::exit(2)
}

/// Runs `main` on a loop with `clock`, the way the Python programs run
/// `asyncio.run(main())` between two readings of the clock, and returns the
/// time it took on that clock.
pub fn run_timed<T: 'static>(
    clock: &Clock,
    main: impl FnOnce() -> Result<T, Error> + 'static,
) -> (Result<T, Error>, Duration) {
    let start = clock.now();
    let result = Builder::new().clock(clock.clone()).run(main);
    (result, clock.now() - start)
}

/// Prints the last line every seed example ends with.
pub fn print_elapsed(elapsed: Duration) {
    println!("elapsed: {:.3}s", elapsed.as_secs_f64());
}
