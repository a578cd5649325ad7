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
//! ```text
//! cargo run --release --example scale -- --tasks 1000000 --virtual
//! ```
//!
//! spawns that many event-loop tasks; task `i` sleeps a pseudo-random
//! duration drawn from its index (0 to 10 s on the virtual clock, 0 to
//! 100 ms on the real one without `--virtual`) and returns; the main task
//! gathers them all. It reports the stack pool, the resident set with every
//! task suspended, its peak, and the time taken. The last line is
//! machine-readable:
//!
//! ```text
//! tasks=<N> rss_bytes_per_task=<B> elapsed_ms=<wall ms>
//! ```
//!
//! where `B` is the *peak* growth of the resident set (`VmHWM`) over the
//! run, in bytes, divided by `N`, and `elapsed_ms` the wall time of the
//! whole run (spawning, sleeping, gathering, teardown).
//!
//! ```text
//! cargo run --release --example scale -- --tasks 1000000 --virtual --unstarted
//! ```
//!
//! measures the tasks just after they are spawned, before any of them has
//! run: a task takes its stack at its first step, so until then it costs
//! only its record. Its last line is
//!
//! ```text
//! tasks=<N> rss_bytes_per_task=<B>
//! ```
//!
//! where `B` is the `VmRSS` growth from spawning them, divided by `N`
//! (including the handles the main task keeps). The tasks then run as above.
//!
//! Modes are chosen by the first flag; each mode has its own function.

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use gencoro::runtime::{self, Builder, Clock, Task};
use gencoro::stack::{self, pool_stats};
use gencoro::{Generator, Step};

const USAGE: &str = "usage: scale --generators N\n       scale --tasks N [--virtual] [--unstarted]";

/// What to run, as parsed from the command line.
#[derive(Debug)]
enum Mode {
    /// `--generators N`: N suspended generators.
    Generators { count: usize },
    /// `--tasks N [--virtual] [--unstarted]`: N event-loop tasks.
    Tasks {
        count: usize,
        /// Run the loop on virtual time.
        virtual_time: bool,
        /// Report what the tasks cost before their first step.
        unstarted: bool,
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
            let (mut virtual_time, mut unstarted) = (false, false);
            while let Some((first, tail)) = rest.split_first() {
                match first.as_str() {
                    "--virtual" => virtual_time = true,
                    "--unstarted" => unstarted = true,
                    _ => break,
                }
                rest = tail;
            }
            no_more(rest)?;
            Ok(Mode::Tasks { count, virtual_time, unstarted })
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
        Mode::Tasks { count, virtual_time, unstarted } => tasks(count, virtual_time, unstarted),
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

/// splitmix64: a tiny, well-mixed PRNG step; seeded with the task index it
/// gives each task its own reproducible duration.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the probe task saw once every task had made its first step.
#[derive(Default)]
struct Suspended {
    /// `VmRSS` right after spawning, before any task ran.
    spawned_rss: Cell<u64>,
    rss: Cell<u64>,
    pte: Cell<u64>,
    pool: Cell<Option<stack::PoolStats>>,
}

/// Spawns `count` tasks that each sleep a pseudo-random duration, gathers
/// them, and reports the memory they held and the time taken.
///
/// Memory is measured as the *peak* resident set (`VmHWM`): the tasks are
/// all alive at once only for a moment, and what they leave behind (stack
/// pages kept resident in the pool, freed heap kept by malloc) is not what
/// they cost while alive. The peak is first reset to the current resident
/// set by writing `5` to `/proc/self/clear_refs` (Linux 4.0+), so it covers
/// this run only; the growth is that peak minus the `VmRSS` read just
/// before. (If the reset is refused, the peak still cannot be lower than
/// the run's own, and startup held far less than a large run.) A probe task
/// also samples `VmRSS` once every task has run its first step and is
/// suspended, the moment the most tasks are alive.
fn tasks(count: usize, virtual_time: bool, unstarted: bool) -> ExitCode {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = match status_bytes("VmRSS") {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("scale: cannot read VmRSS: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pte_before = status_bytes("VmPTE").unwrap_or(0);
    // Durations in milliseconds: up to 10 s of virtual time, or 100 ms of
    // real time.
    let max_ms: u64 = if virtual_time { 10_000 } else { 100 };
    let clock = if virtual_time { Clock::virtual_time() } else { Clock::real_time() };
    let suspended = Rc::new(Suspended::default());

    let started = Instant::now();
    let result = Builder::new().clock(clock.clone()).run({
        let suspended = suspended.clone();
        move || {
            let mut all: Vec<Task<()>> = Vec::with_capacity(count);
            for i in 0..count {
                let ms = splitmix64(i as u64) % max_ms;
                all.push(runtime::spawn(move || runtime::sleep(Duration::from_millis(ms))));
            }
            suspended.spawned_rss.set(status_bytes("VmRSS").unwrap_or(0));
            // Tasks start in spawn order, so this one's first step comes
            // after every task above has made its own and is suspended.
            let probe = runtime::spawn(move || {
                suspended.rss.set(status_bytes("VmRSS").unwrap_or(0));
                suspended.pte.set(status_bytes("VmPTE").unwrap_or(0));
                suspended.pool.set(
                    pool_stats().into_iter().find(|p| p.stack_size == stack::DEFAULT_STACK_SIZE),
                );
                Ok(())
            });
            let done = runtime::gather(all)?.len();
            probe.join()?;
            Ok(done)
        }
    });
    let elapsed = started.elapsed();
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            eprintln!("scale: the run failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if done != count {
        eprintln!("scale: gathered {done} results for {count} tasks");
        return ExitCode::FAILURE;
    }
    let peak = status_bytes("VmHWM").unwrap_or(0);
    let rss_after = status_bytes("VmRSS").unwrap_or(0);
    let growth = peak.saturating_sub(rss_before);
    let per_task = growth.checked_div(count as u64).unwrap_or(0);
    let per = |bytes: u64| bytes.checked_div(count as u64).unwrap_or(0);

    println!(
        "clock: {}; task sleeps drawn from 0..{max_ms} ms; loop time at the end: {:.3} s",
        if virtual_time { "virtual" } else { "real" },
        clock.now().as_secs_f64()
    );
    println!(
        "page size: {} bytes; task stack size: {} bytes",
        stack::page_size(),
        stack::DEFAULT_STACK_SIZE
    );
    if let Some(s) = suspended.pool.get() {
        println!(
            "pool with all tasks suspended: stride={} stacks_mapped={} in_use={} free={} \
             chunks={} guard_mode={:?}",
            s.stride, s.stacks_mapped, s.stacks_in_use, s.stacks_free, s.chunks, s.guard_mode
        );
    }
    for s in pool_stats() {
        println!(
            "pool after the run: stack_size={} stacks_mapped={} in_use={} free={} chunks={}",
            s.stack_size, s.stacks_mapped, s.stacks_in_use, s.stacks_free, s.chunks
        );
    }
    let at_suspended = suspended.rss.get();
    println!(
        "VmRSS: {} KiB before; {} KiB with all tasks suspended (+{} B/task); {} KiB after",
        rss_before / 1024,
        at_suspended / 1024,
        per(at_suspended.saturating_sub(rss_before)),
        rss_after / 1024
    );
    println!(
        "VmHWM (peak): {} KiB (+{} KiB, {per_task} B/task){}",
        peak / 1024,
        growth / 1024,
        if reset { "" } else { "; peak not reset, /proc/self/clear_refs refused" }
    );
    println!(
        "page tables (VmPTE, not in RSS): +{} KiB with all tasks suspended ({} B/task)",
        suspended.pte.get().saturating_sub(pte_before) / 1024,
        per(suspended.pte.get().saturating_sub(pte_before))
    );
    println!(
        "elapsed: {:.3} s for {count} tasks ({:.0} ns each)",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / count.max(1) as f64
    );
    if unstarted {
        let spawned = suspended.spawned_rss.get().saturating_sub(rss_before);
        println!("VmRSS with every task spawned and none started: +{} KiB", spawned / 1024);
        println!("tasks={count} rss_bytes_per_task={}", per(spawned));
    } else {
        println!("tasks={count} rss_bytes_per_task={per_task} elapsed_ms={}", elapsed.as_millis());
    }
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
