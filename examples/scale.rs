//! How many suspended generators fit, and what each one costs.
//!
//! ```text
//! cargo run --release --example scale -- --generators 1000000
//! ```
//!
//! creates that many generators, runs each to its first yield and keeps them
//! all alive, then reports the stack pool and the growth of the resident set
//! (`VmRSS` in `/proc/self/status`). The last line is machine-readable:
//!
//! ```text
//! generators=<N> rss_bytes_per_generator=<B>
//! ```
//!
//! where `B` is the `VmRSS` growth in bytes divided by `N`. It includes the
//! generator handles (kept in a `Vec`) and the stack pages each body touched.
//!
//! Modes are chosen by the first flag; each mode has its own function.
//! `--tasks N [--virtual]` is reserved for event-loop tasks and not yet
//! implemented.

use std::process::ExitCode;
use std::time::Instant;

use gencoro::stack::{self, pool_stats};
use gencoro::{Generator, Step};

const USAGE: &str =
    "usage: scale --generators N\n       scale --tasks N [--virtual]   (not yet implemented)";

/// What to run, as parsed from the command line.
#[derive(Debug)]
enum Mode {
    /// `--generators N`: N suspended generators.
    Generators { count: usize },
    /// `--tasks N [--virtual]`: N event-loop tasks.
    Tasks {
        count: usize,
        /// Run the loop on virtual time.
        virtual_time: bool,
    },
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let Some((flag, rest)) = args.split_first() else {
        return Err("no mode given".to_string());
    };
    match flag.as_str() {
        "--generators" => {
            let (count, rest) = parse_count(flag, rest)?;
            no_more(rest)?;
            Ok(Mode::Generators { count })
        }
        "--tasks" => {
            let (count, mut rest) = parse_count(flag, rest)?;
            let mut virtual_time = false;
            if let Some((first, tail)) = rest.split_first()
                && first == "--virtual"
            {
                virtual_time = true;
                rest = tail;
            }
            no_more(rest)?;
            Ok(Mode::Tasks { count, virtual_time })
        }
        other => Err(format!("unknown mode {other:?}")),
    }
}

/// The count after a mode flag, and the arguments after it.
fn parse_count<'a>(flag: &str, rest: &'a [String]) -> Result<(usize, &'a [String]), String> {
    let (value, rest) = rest.split_first().ok_or_else(|| format!("{flag} needs a count"))?;
    let count = value.parse().map_err(|_| format!("{flag}: not a count: {value:?}"))?;
    Ok((count, rest))
}

fn no_more(rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(format!("unexpected argument {arg:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse_args(&args) {
        Ok(mode) => mode,
        Err(message) => {
            eprintln!("scale: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::Generators { count } => generators(count),
        Mode::Tasks { count, virtual_time } => {
            eprintln!(
                "scale: --tasks is not yet implemented (asked for {count} tasks, virtual time: \
                 {virtual_time})"
            );
            ExitCode::from(2)
        }
    }
}

/// Creates `count` generators, suspends each at its first yield, and reports
/// the memory they hold.
fn generators(count: usize) -> ExitCode {
    let mut held: Vec<Generator<usize>> = Vec::with_capacity(count);
    let rss_before = match status_bytes("VmRSS") {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("scale: cannot read VmRSS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pte_before = status_bytes("VmPTE").unwrap_or(0);
    let started = Instant::now();
    for i in 0..count {
        let g = match Generator::try_new(move |co| {
            co.yield_(i);
        }) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("scale: generator {i} of {count}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match g.start() {
            Ok(Step::Yielded(n)) if n == i => {}
            other => {
                eprintln!("scale: generator {i} did not suspend at its first yield: {other:?}");
                return ExitCode::FAILURE;
            }
        }
        held.push(g);
    }
    let elapsed = started.elapsed();
    let rss_after = status_bytes("VmRSS").unwrap_or(rss_before);
    let pte_after = status_bytes("VmPTE").unwrap_or(pte_before);
    let growth = rss_after.saturating_sub(rss_before);
    let per_generator = growth.checked_div(count as u64).unwrap_or(0);

    let handle = std::mem::size_of::<Generator<usize>>();
    println!("page size: {} bytes", stack::page_size());
    for s in pool_stats() {
        println!(
            "pool: stack_size={} stride={} stacks_mapped={} in_use={} free={} chunks={} \
             guard_mode={:?}",
            s.stack_size,
            s.stride,
            s.stacks_mapped,
            s.stacks_in_use,
            s.stacks_free,
            s.chunks,
            s.guard_mode
        );
    }
    println!(
        "handle: {handle} bytes per generator in the Vec; stack and anything else: {} bytes",
        per_generator.saturating_sub(handle as u64)
    );
    println!(
        "VmRSS: {} KiB before, {} KiB after (+{} KiB); page tables (VmPTE): +{} KiB",
        rss_before / 1024,
        rss_after / 1024,
        growth / 1024,
        pte_after.saturating_sub(pte_before) / 1024
    );
    println!(
        "elapsed: {:.3} s to create and start {count} generators ({:.0} ns each)",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / count.max(1) as f64
    );
    println!("generators={count} rss_bytes_per_generator={per_generator}");
    ExitCode::SUCCESS
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}
