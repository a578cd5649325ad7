//! A hostile review, from the public API only, of three changes: the hot
//! stack (the stack freed last kept out of its pool), the signals'
//! `Delivery` and the busy main task's self-cancel, and the sockets' wait
//! fast path (`LoopRef`, line buffers kept).
//!
//! Scenarios that must crash, raise real signals or measure the process's
//! address space run in a child process: this binary re-run for the
//! ignored test `child` with `GENCORO_ATTACK_REVIEW2_CHILD` naming the
//! scenario (see [`SCENARIOS`]). A signal whose default action kills only
//! ever kills such a child. Every test is bounded in time: a child has
//! [`LIMIT`] to end, and in-process tests run under a watchdog.

use std::cell::{Cell, RefCell};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gencoro::net::TcpStream;
use gencoro::net::signal::{self, Signal};
use gencoro::runtime::{self, Builder, Clock, Error, Task};
use gencoro::stack::{self, DEFAULT_STACK_SIZE, MIN_STACK_SIZE};
use gencoro::{Generator, GeneratorBuilder, Step, Yielder};

#[path = "common/child_lines.rs"]
mod child_lines;
#[path = "common/net_support.rs"]
mod net_support;
use child_lines::ChildLines;
use net_support::bounded;

const CHILD_ENV: &str = "GENCORO_ATTACK_REVIEW2_CHILD";

/// A child process's whole life may take this long at most.
const LIMIT: Duration = Duration::from_secs(5);

/// The watchdog of in-process tests.
const WATCHDOG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------
// Children.

/// How a child ended: its status, its `child: ` lines, its stderr.
struct Ended {
    status: ExitStatus,
    lines: Vec<String>,
    stderr: String,
}

impl Ended {
    fn killed_by(&self, signal: libc::c_int) -> bool {
        self.status.signal() == Some(signal)
    }
}

impl std::fmt::Debug for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}; lines {:#?}; stderr:\n{}", self.status, self.lines, self.stderr)
    }
}

/// The text of a `child: ` line (the harness may print `test child ... `
/// in front of the first).
fn child_line(line: &str) -> Option<&str> {
    line.find("child: ").map(|at| line[at + "child: ".len()..].trim_end())
}

/// Runs scenario `name` in a child process, to its end.
fn run_child(name: &str) -> Ended {
    let exe = std::env::current_exe().expect("the test binary");
    let mut command = Command::new(exe);
    command
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(CHILD_ENV, name);
    let mut child = ChildLines::spawn(command, LIMIT);
    let (status, stderr) = child.finish(Duration::from_secs(1));
    let lines = child.seen.iter().filter_map(|l| child_line(l)).map(str::to_owned).collect();
    Ended { status, lines, stderr }
}

/// The scenarios a child can run, by name.
const SCENARIOS: &[(&str, fn())] = &[
    ("thread_local_generators", thread_local_generators),
    ("overflow_on_hot_stack", overflow_on_hot_stack),
    ("overflow_on_hot_custom_stack", overflow_on_hot_custom_stack),
    ("overflow_beside_a_hot_stack_of_another_size", overflow_beside_a_hot_stack_of_another_size),
    ("busy_main_returns_err", busy_main_returns_err),
    ("busy_main_catches_then_returns", busy_main_catches_then_returns),
    ("busy_main_then_one_suspension", busy_main_then_one_suspension),
    ("one_of_two_woken_cancelled_unarmed", one_of_two_woken_cancelled_unarmed),
    ("one_of_two_woken_cancelled_armed", one_of_two_woken_cancelled_armed),
    ("all_woken_cancelled_armed", all_woken_cancelled_armed),
    ("woken_waiter_cancelled_by_teardown", woken_waiter_cancelled_by_teardown),
];

#[test]
#[ignore = "the child process of this file's tests: does nothing unless GENCORO_ATTACK_REVIEW2_CHILD names a scenario"]
fn child() {
    let Ok(name) = std::env::var(CHILD_ENV) else { return };
    child_lines::reset_signal_dispositions(None);
    let (_, scenario) =
        SCENARIOS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no scenario {name}"));
    scenario();
}

/// Prints a `child: ` line.
fn say(s: impl std::fmt::Display) {
    println!("child: {s}");
}

// ---------------------------------------------------------------------
// 1. The hot stack.

/// An address in the current frame: inside a generator's body, on the
/// stack it runs on.
#[inline(never)]
fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

#[path = "common/pool_stats.rs"]
mod pool_stats;
use pool_stats::pool;

/// SplitMix64, for reproducible pseudo-random sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce5_e9b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d4_9bb4_9133_49eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A generator that keeps a 512-byte pattern of `tag` on its stack and, at
/// each resume, yields where it runs and whether the pattern is intact;
/// sent `true`, it returns where it ran.
type Probe = Generator<(usize, bool), bool, usize>;

fn probe(size: usize, tag: u8) -> Probe {
    GeneratorBuilder::new()
        .stack_size(size)
        .build(move |co: &Yielder<(usize, bool), bool>| {
            let pattern = std::hint::black_box([tag; 512]);
            let at = here();
            loop {
                let intact = std::hint::black_box(&pattern).iter().all(|&b| b == tag);
                if co.yield_((at, intact)) {
                    return at;
                }
            }
        })
        .expect("a valid stack size")
}

const SIZES: [usize; 3] = [MIN_STACK_SIZE, 64 * 1024, DEFAULT_STACK_SIZE];

/// Generators of three stack sizes created, resumed, finished, closed and
/// dropped unstarted in a pseudo-random interleaving, so the hot stack
/// holds one size while another is asked for. After every operation, for
/// every size: `stacks_in_use + stacks_free == stacks_mapped`,
/// `stacks_in_use` is the number of live started generators of that size,
/// no two live generators run on one stack, and each one's pattern on its
/// stack is intact (a stack handed out twice would break both).
#[test]
fn interleaved_stack_sizes_keep_pool_stats_exact_and_never_share_a_stack() {
    bounded(WATCHDOG, || {
        let mut rng = Rng(0x5eed_0001);
        // (generator, size index, tag, where it runs)
        let mut live: Vec<(Probe, usize, u8, usize)> = Vec::new();
        let mut tag = 0u8;
        for op in 0..4_000 {
            match rng.below(6) {
                0 | 1 if live.len() < 40 => {
                    let k = rng.below(SIZES.len());
                    tag = tag.wrapping_add(1);
                    let g = probe(SIZES[k], tag);
                    let Ok(Step::Yielded((at, intact))) = g.start() else { panic!("op {op}") };
                    assert!(intact, "op {op}: a fresh pattern broken");
                    live.push((g, k, tag, at));
                }
                2 if !live.is_empty() => {
                    let i = rng.below(live.len());
                    let (g, _, t, at) = &live[i];
                    let step = g.send(false).unwrap();
                    assert_eq!(
                        step,
                        Step::Yielded((*at, true)),
                        "op {op}: tag {t} moved or broken"
                    );
                }
                3 if !live.is_empty() => {
                    let (g, _, _, at) = live.swap_remove(rng.below(live.len()));
                    assert_eq!(g.send(true).unwrap(), Step::Returned(at), "op {op}");
                }
                4 if !live.is_empty() => {
                    let (g, ..) = live.swap_remove(rng.below(live.len()));
                    if rng.below(2) == 0 {
                        g.close().unwrap();
                    }
                    drop(g);
                }
                _ => {
                    // Created and dropped unstarted: takes no stack.
                    let before = stack::pool_stats();
                    drop(probe(SIZES[rng.below(SIZES.len())], 0));
                    assert_eq!(stack::pool_stats(), before, "op {op}");
                }
            }
            for (k, &size) in SIZES.iter().enumerate() {
                let stats = pool(size);
                let expected = live.iter().filter(|l| l.1 == k).count();
                assert_eq!(
                    stats.stacks_in_use + stats.stacks_free,
                    stats.stacks_mapped,
                    "op {op}: {stats:?}"
                );
                assert_eq!(stats.stacks_in_use, expected, "op {op}: {stats:?}");
            }
            let mut places: Vec<usize> = live.iter().map(|l| l.3).collect();
            places.sort_unstable();
            places.dedup();
            assert_eq!(places.len(), live.len(), "op {op}: two generators on one stack");
        }
        // Every pattern still intact at the end.
        for (g, _, t, at) in &live {
            assert_eq!(g.send(false).unwrap(), Step::Yielded((*at, true)), "tag {t}");
        }
        drop(live);
        for size in SIZES {
            let stats = pool(size);
            assert_eq!((stats.stacks_in_use, stats.stacks_free), (0, stats.stacks_mapped));
        }
    });
}

/// The stack freed last is the one the next generator of its size gets
/// (the warmest, as the stack module documents), also when a generator
/// was created and dropped unstarted in between, a generator of another
/// size ran and finished meanwhile, or the body before it panicked; and a
/// thread that only ever finished generators has nothing lent out.
#[test]
fn the_stack_freed_last_is_reused_first_across_sizes_and_unstarted_generators() {
    bounded(WATCHDOG, || {
        let run_one = |size: usize| {
            let g = probe(size, 1);
            let Ok(Step::Yielded((at, true))) = g.start() else { panic!("a broken start") };
            assert_eq!(g.send(true).unwrap(), Step::Returned(at));
            at
        };
        let big = run_one(DEFAULT_STACK_SIZE);
        drop(probe(DEFAULT_STACK_SIZE, 2)); // never started
        assert_eq!(run_one(DEFAULT_STACK_SIZE), big);
        let small = run_one(MIN_STACK_SIZE);
        assert_eq!(run_one(DEFAULT_STACK_SIZE), big, "the default stack went back to the top");
        assert_eq!(run_one(MIN_STACK_SIZE), small);
        // A body that panics gives its stack back on the way out, hot.
        let panicking: Generator<(usize, bool)> = Generator::new(|co| {
            co.yield_((here(), true));
            panic!("a generator body panics on purpose");
        });
        let Ok(Step::Yielded((at, true))) = panicking.start() else { panic!("no first yield") };
        assert!(at.abs_diff(big) < 4096, "the panicking body got another stack");
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicking.resume()));
        assert!(unwound.is_err(), "the panic reached the caller");
        assert!(panicking.is_closed());
        assert_eq!(run_one(DEFAULT_STACK_SIZE), big);
        for size in [MIN_STACK_SIZE, DEFAULT_STACK_SIZE] {
            let stats = pool(size);
            assert_eq!((stats.stacks_mapped, stats.stacks_in_use, stats.stacks_free), (1, 0, 1));
        }
    });
}

/// A chain of generators, each delegating to the next with `yield_from`;
/// the leaf yields `leaf` values and returns their sum, each level adds 1.
fn chain(depth: u32, leaf: u32) -> Generator<u32, (), u32> {
    Generator::new(move |co| {
        if depth == 0 {
            for i in 0..leaf {
                co.yield_(i);
            }
            return (0..leaf).sum();
        }
        let sub = chain(depth - 1, leaf);
        co.yield_from(&sub).expect("the sub-generator runs") + 1
    })
}

/// Nested generators (a `yield_from` chain of 12) finished and closed
/// round after round, so a dozen stacks are freed in a row, innermost
/// first when they finish, outermost first when the chain is closed:
/// every round yields the right values, lends out one stack per level
/// while it runs, and maps nothing new after the first.
#[test]
fn yield_from_chains_freeing_many_stacks_in_a_row_reuse_them_all() {
    bounded(WATCHDOG, || {
        const DEPTH: u32 = 12;
        for round in 0..200 {
            let g = chain(DEPTH - 1, 3);
            assert_eq!(g.resume().unwrap(), Step::Yielded(0), "round {round}");
            assert_eq!(pool(DEFAULT_STACK_SIZE).stacks_in_use, DEPTH as usize, "round {round}");
            if round % 2 == 0 {
                assert_eq!(g.resume().unwrap(), Step::Yielded(1));
                assert_eq!(g.resume().unwrap(), Step::Yielded(2));
                assert_eq!(g.resume().unwrap(), Step::Returned(3 + DEPTH - 1));
            } else {
                g.close().unwrap();
            }
            drop(g);
            let stats = pool(DEFAULT_STACK_SIZE);
            assert_eq!(stats.stacks_in_use, 0, "round {round}: {stats:?}");
            assert_eq!(stats.stacks_free, stats.stacks_mapped, "round {round}: {stats:?}");
            assert!(stats.stacks_mapped <= DEPTH as usize + 1, "round {round}: {stats:?}");
        }
    });
}

/// Ten bursts of a thousand short tasks on one loop, one in a hundred
/// panicking: each returns its value or its panic, and afterwards the
/// thread's pool has nothing lent out and holds no more stacks than a
/// burst needs.
#[test]
fn bursts_of_short_tasks_some_panicking_return_every_stack() {
    bounded(WATCHDOG, || {
        let (sum, panics) = Builder::new()
            .clock(Clock::virtual_time())
            .run(|| {
                let (mut sum, mut panics) = (0u64, 0usize);
                for burst in 0..10u64 {
                    let tasks: Vec<Task<u64>> = (0..1_000u64)
                        .map(|i| {
                            runtime::spawn(move || {
                                if i % 3 == 0 {
                                    runtime::sleep(Duration::ZERO)?;
                                }
                                if i % 100 == 7 {
                                    panic!("task {i} of burst {burst} panics on purpose");
                                }
                                Ok(burst * 1_000 + i)
                            })
                        })
                        .collect();
                    for t in &tasks {
                        match t.join() {
                            Ok(v) => sum += v,
                            Err(e) if e.is_panic() => panics += 1,
                            Err(e) => return Err(e),
                        }
                    }
                }
                Ok((sum, panics))
            })
            .unwrap();
        let expected: u64 = (0..10_000u64).filter(|v| v % 1_000 % 100 != 7).sum();
        assert_eq!((sum, panics), (expected, 100));
        let stats = pool(DEFAULT_STACK_SIZE);
        assert_eq!(stats.stacks_in_use, 0, "{stats:?}");
        assert_eq!(stats.stacks_free, stats.stacks_mapped, "{stats:?}");
        assert!(stats.stacks_mapped <= 1_100, "{stats:?}");
    });
}

/// Tasks of a loop with 64 KiB stacks, each running generators of two
/// other sizes inside its body (one to completion, one left suspended and
/// dropped with the task), interleaved over suspensions: each stack size's
/// pool stays exact (`in_use + free == mapped`) after every iteration, and
/// nothing is lent out once the loop is gone.
#[test]
fn tasks_running_generators_of_other_stack_sizes_keep_every_pool_exact() {
    bounded(WATCHDOG, || {
        let task_size = 64 * 1024;
        let total = Builder::new()
            .clock(Clock::virtual_time())
            .stack_size(task_size)
            .run(move || {
                let mut total = 0;
                for round in 0..20 {
                    let tasks: Vec<Task<usize>> = (0..50)
                        .map(|i| {
                            runtime::spawn(move || {
                                let held = probe(MIN_STACK_SIZE, 5);
                                let Ok(Step::Yielded((_, true))) = held.start() else {
                                    panic!("no first yield")
                                };
                                runtime::sleep(Duration::from_millis(i % 3))?;
                                let done = probe(DEFAULT_STACK_SIZE, 6);
                                let Ok(Step::Yielded((at, true))) = done.start() else {
                                    panic!("no first yield")
                                };
                                assert_eq!(done.send(true).unwrap(), Step::Returned(at));
                                runtime::sleep(Duration::ZERO)?;
                                assert!(matches!(held.send(false), Ok(Step::Yielded((_, true)))));
                                Ok(1)
                            })
                        })
                        .collect();
                    for t in &tasks {
                        total += t.join()?;
                        for size in [MIN_STACK_SIZE, task_size, DEFAULT_STACK_SIZE] {
                            let stats = pool(size);
                            assert_eq!(
                                stats.stacks_in_use + stats.stacks_free,
                                stats.stacks_mapped,
                                "round {round}: {stats:?}"
                            );
                        }
                    }
                }
                Ok(total)
            })
            .unwrap();
        assert_eq!(total, 1_000);
        for size in [MIN_STACK_SIZE, task_size, DEFAULT_STACK_SIZE] {
            let stats = pool(size);
            assert_eq!((stats.stacks_in_use, stats.stacks_free), (0, stats.stacks_mapped));
            assert!(stats.stacks_mapped > 0, "{stats:?}");
        }
    });
}

// Thread-local destructors at thread exit.

static EARLY_CLOSED: AtomicUsize = AtomicUsize::new(0);
static LATE_CLOSED: AtomicUsize = AtomicUsize::new(0);
static EARLY_REFUSED: AtomicUsize = AtomicUsize::new(0);
static LATE_RAN: AtomicUsize = AtomicUsize::new(0);
static GUARDS_DROPPED: AtomicUsize = AtomicUsize::new(0);

struct CountOnDrop(&'static AtomicUsize);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Destroyed after the thread's pools (first touched before them): drops
/// its suspended generator, a finished one, and then tries to start a new
/// one, which must be refused (the pools are gone), not crash.
struct Early {
    suspended: Option<Generator<u32>>,
    finished: Option<Generator<u32>>,
}

impl Drop for Early {
    fn drop(&mut self) {
        drop(self.suspended.take());
        drop(self.finished.take());
        let g = probe(64 * 1024, 9);
        if g.start().is_err() {
            EARLY_REFUSED.fetch_add(1, Ordering::SeqCst);
        }
        GUARDS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Destroyed before the thread's pools (first touched after them): drops
/// its suspended generator, then runs two generators of other sizes to
/// completion (the pools still work), so the hot stack changes size just
/// before the pools go.
struct Late {
    suspended: Option<Generator<u32>>,
}

impl Drop for Late {
    fn drop(&mut self) {
        drop(self.suspended.take());
        for size in [MIN_STACK_SIZE, 64 * 1024] {
            let g = probe(size, 3);
            let Ok(Step::Yielded((at, true))) = g.start() else { return };
            if g.send(true).ok() == Some(Step::Returned(at)) {
                LATE_RAN.fetch_add(1, Ordering::SeqCst);
            }
        }
        GUARDS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static EARLY: RefCell<Option<Early>> = const { RefCell::new(None) };
    static LATE: RefCell<Option<Late>> = const { RefCell::new(None) };
}

fn suspended_counting(size: usize, counter: &'static AtomicUsize) -> Generator<u32> {
    let g = GeneratorBuilder::new()
        .stack_size(size)
        .build(move |co: &Yielder<u32, ()>| {
            let _sentinel = CountOnDrop(counter);
            co.yield_(1);
        })
        .unwrap();
    assert_eq!(g.start().unwrap(), Step::Yielded(1));
    g
}

const TLS_THREADS: usize = 1_000;

fn exit_threads_with_generators_in_thread_locals() {
    for _ in 0..TLS_THREADS {
        std::thread::spawn(|| {
            // Touched before the pools: destroyed after them.
            EARLY.with(|e| assert!(e.borrow().is_none()));
            let finished = Generator::new(|co| co.yield_(5));
            assert_eq!(finished.resume().unwrap(), Step::Yielded(5));
            assert_eq!(finished.resume().unwrap(), Step::Returned(()));
            let suspended = suspended_counting(DEFAULT_STACK_SIZE, &EARLY_CLOSED);
            EARLY.with(|e| {
                *e.borrow_mut() =
                    Some(Early { suspended: Some(suspended), finished: Some(finished) })
            });
            // A finished generator leaves its stack hot.
            let g = probe(DEFAULT_STACK_SIZE, 4);
            assert!(matches!(g.start(), Ok(Step::Yielded((_, true)))));
            drop(g);
            // Touched after the pools: destroyed before them.
            let late = suspended_counting(64 * 1024, &LATE_CLOSED);
            LATE.with(|l| *l.borrow_mut() = Some(Late { suspended: Some(late) }));
        })
        .join()
        .expect("the thread ran");
    }
}

fn address_space() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|r| r.trim().strip_suffix("kB"))
        .and_then(|k| k.trim().parse().ok())
        .expect("VmSize");
    kib * 1024
}

fn thread_local_generators() {
    exit_threads_with_generators_in_thread_locals(); // warm-up
    let before = address_space();
    exit_threads_with_generators_in_thread_locals();
    let grown = address_space().saturating_sub(before);
    say(format!(
        "early_closed={} late_closed={} early_refused={} late_ran={} guards={}",
        EARLY_CLOSED.load(Ordering::SeqCst),
        LATE_CLOSED.load(Ordering::SeqCst),
        EARLY_REFUSED.load(Ordering::SeqCst),
        LATE_RAN.load(Ordering::SeqCst),
        GUARDS_DROPPED.load(Ordering::SeqCst),
    ));
    // Each thread maps a chunk of 8 stacks of each of three sizes (about
    // 1.7 MiB); leaking them would grow the address space by gigabytes.
    let per_thread = 8 * (DEFAULT_STACK_SIZE + 64 * 1024 + MIN_STACK_SIZE);
    say(format!("leaked={}", grown > TLS_THREADS * per_thread / 8));
}

/// Threads that end with suspended and finished generators in
/// thread-locals destroyed before and after the thread's stack pools (the
/// hot stack of one size or another at each point): every body's
/// destructor runs exactly once, a generator started after the pools are
/// gone is refused, generators run from a destructor before then work,
/// and the threads' chunks are unmapped (the address space does not grow
/// by their stacks).
#[test]
fn generators_dropped_by_thread_local_destructors_around_the_pools_close_once_and_leak_nothing() {
    let ended = run_child("thread_local_generators");
    assert!(ended.status.success(), "{ended:?}");
    let n = 2 * TLS_THREADS;
    assert_eq!(
        ended.lines,
        [
            format!(
                "early_closed={n} late_closed={n} early_refused={n} late_ran={} guards={}",
                2 * n,
                2 * n
            ),
            "leaked=false".to_owned()
        ],
        "{ended:?}"
    );
}

/// Uses a kilobyte of stack per call, without bound.
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth as u8; 1024]);
    let below = recurse(std::hint::black_box(depth + 1));
    below.wrapping_add(u64::from(frame[(depth % 1024) as usize]))
}

/// Runs a generator of `size` to completion (its stack becomes the hot
/// one), then one of `overflow_size` that recurses without bound.
fn overflow_after_hot(size: usize, overflow_size: usize) {
    let g = probe(size, 1);
    let Ok(Step::Yielded((at, true))) = g.start() else { panic!("a broken start") };
    assert_eq!(g.send(true).unwrap(), Step::Returned(at));
    let deep: Generator<u64> = GeneratorBuilder::new()
        .stack_size(overflow_size)
        .build(|co: &Yielder<u64, ()>| {
            co.yield_(here() as u64);
            co.yield_(recurse(0));
        })
        .unwrap();
    let Ok(Step::Yielded(top)) = deep.start() else { panic!("no first yield") };
    say(format!("on_hot_stack={}", top.abs_diff(at as u64) < 4096));
    say("overflowing");
    let result = deep.resume();
    say(format!("the recursion returned {result:?}"));
}

fn overflow_on_hot_stack() {
    overflow_after_hot(DEFAULT_STACK_SIZE, DEFAULT_STACK_SIZE);
}

fn overflow_on_hot_custom_stack() {
    overflow_after_hot(64 * 1024, 64 * 1024);
}

fn overflow_beside_a_hot_stack_of_another_size() {
    overflow_after_hot(MIN_STACK_SIZE, 64 * 1024);
}

/// The child overflowed a generator's stack and died of gencoro's report.
fn check_overflow_reported(ended: &Ended, size: usize, on_hot: bool) {
    assert_eq!(ended.lines, [format!("on_hot_stack={on_hot}"), "overflowing".into()], "{ended:?}");
    assert!(ended.killed_by(libc::SIGABRT), "{ended:?}");
    assert!(ended.stderr.contains("gencoro: coroutine stack overflow"), "{ended:?}");
    assert!(ended.stderr.contains(&format!("its {size}-byte stack")), "{ended:?}");
}

/// A generator that runs on the hot stack (the one the generator before
/// it freed) and overflows it hits that stack's guard page, and gencoro
/// reports the overflow with the stack's size.
#[test]
fn an_overflow_on_the_hot_stack_hits_its_guard_page_and_is_reported() {
    check_overflow_reported(&run_child("overflow_on_hot_stack"), DEFAULT_STACK_SIZE, true);
}

/// The same with a custom stack size.
#[test]
fn an_overflow_on_a_hot_stack_of_a_custom_size_is_reported_with_its_size() {
    check_overflow_reported(&run_child("overflow_on_hot_custom_stack"), 64 * 1024, true);
}

/// A generator of another size than the hot stack's takes a stack of its
/// own from its pool, and its overflow is reported with its own size.
#[test]
fn an_overflow_beside_a_hot_stack_of_another_size_is_reported_with_its_own_size() {
    let ended = run_child("overflow_beside_a_hot_stack_of_another_size");
    check_overflow_reported(&ended, 64 * 1024, false);
}

// ---------------------------------------------------------------------
// 2. Signals.

fn raise(signal: Signal) {
    signal_hook::low_level::raise(signal.number()).expect("raise");
}

/// Blocks the thread (not the task: the loop cannot run meanwhile) long
/// enough for the `gencoro-signals` thread to have handled a signal just
/// raised, and the wake-ups it posted to reach the loop's channel.
fn let_the_dispatcher_run() {
    std::thread::sleep(Duration::from_millis(200));
}

fn outcome<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("{:?}", e.kind()),
    }
}

fn armed<T: 'static>(main: impl FnOnce() -> Result<T, Error> + 'static) -> Result<T, Error> {
    Builder::new().cancel_on_ctrl_c(true).run(main)
}

/// Lets the loop run for `span` of real time, counting the cancellations
/// that reach the running task (each caught).
fn cancellations_over(span: Duration) -> usize {
    let start = Instant::now();
    let mut caught = 0;
    while start.elapsed() < span {
        match runtime::sleep(Duration::from_millis(20)) {
            Err(e) if e.is_cancelled() => caught += 1,
            Err(e) => panic!("sleep failed: {e}"),
            Ok(()) => {}
        }
    }
    caught
}

fn busy_main_returns_err() {
    let r: Result<u32, Error> = armed(|| {
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        Err(Error::new("main failed on its own"))
    });
    say(format!("run: {}", outcome(&r)));
    if let Err(e) = &r {
        say(format!("message: {}", e.message()));
    }
    std::thread::sleep(Duration::from_millis(200));
    say("survived");
}

/// A busy armed main task that a SIGINT chose returns an error without
/// suspending: it ends with its error, not the cancellation (CPython: an
/// exception raised while `_must_cancel` is set wins), and the process
/// lives on (the SIGINT was taken by the run).
#[test]
fn a_busy_main_task_that_fails_with_a_sigint_pending_returns_its_own_error() {
    let ended = run_child("busy_main_returns_err");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(
        ended.lines,
        ["run: Failed", "message: main failed on its own", "survived"],
        "{ended:?}"
    );
}

fn busy_main_catches_then_returns() {
    let r = armed(|| {
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        // Suspends until the posted cancellation arrives, and catches it.
        let start = Instant::now();
        let caught = loop {
            match runtime::sleep(Duration::ZERO) {
                Err(e) if e.is_cancelled() => break true,
                Err(e) => return Err(e),
                Ok(()) if start.elapsed() > Duration::from_secs(1) => break false,
                Ok(()) => {}
            }
        };
        say(format!("caught={caught}"));
        // No second cancellation, and none as it returns.
        say(format!("later cancellations={}", cancellations_over(Duration::from_millis(200))));
        Ok(7)
    });
    say(format!("run: {}", outcome(&r)));
    std::thread::sleep(Duration::from_millis(200));
    say("survived");
}

/// A busy armed main task that a SIGINT chose, which then suspends, gets
/// the cancellation there, catches it and returns a value: `run` returns
/// that value (the self-cancel of a busy main task must not fire for a
/// cancellation already delivered), and nothing cancels it again.
#[test]
fn a_busy_main_task_that_catches_the_delivered_cancellation_returns_its_value() {
    let ended = run_child("busy_main_catches_then_returns");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(
        ended.lines,
        ["caught=true", "later cancellations=0", "run: Ok(7)", "survived"],
        "{ended:?}"
    );
}

fn busy_main_then_one_suspension() {
    let r = armed(|| {
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        // The first suspension since the SIGINT chose this run.
        match runtime::sleep(Duration::ZERO) {
            Err(e) if e.is_cancelled() => say("cancelled at the first suspension"),
            Err(e) => return Err(e),
            Ok(()) => say("the first suspension returned"),
        }
        Ok(7)
    });
    say(format!("run: {}", outcome(&r)));
}

/// A SIGINT chooses an armed run while its main task is busy; the task
/// then suspends once (`sleep(0)`), catches a cancellation there if it
/// gets one, and returns a value. CPython's `Runner._on_sigint` calls
/// `main_task.cancel()` from the signal handler itself, so the task's
/// next `await` raises `CancelledError`: the task catches it and
/// `asyncio.run` returns 7. gencoro must match: the cancellation the
/// signal thread sends runs before the task's own wake-up, so `sleep(0)`
/// returns it and the task catches it (a cancellation queued behind that
/// wake-up would let `sleep(0)` return normally, and the task, returning
/// 7, would then cancel itself as it is disarmed, with no chance to
/// catch it).
#[test]
fn a_busy_main_tasks_first_suspension_after_a_sigint_gets_the_cancellation() {
    let ended = run_child("busy_main_then_one_suspension");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(ended.lines, ["cancelled at the first suspension", "run: Ok(7)"], "{ended:?}");
}

/// Two tasks wait for SIGINT; the signal wakes both; one is cancelled
/// before it resumes, the other returns it. Prints both outcomes and, in
/// an armed run, how many cancellations reach main.
fn one_of_two_woken_cancelled(armed_run: bool) {
    let main = move || {
        let first = runtime::spawn(|| signal::wait(Signal::Interrupt));
        let second = runtime::spawn(|| signal::wait(Signal::Interrupt));
        runtime::sleep(Duration::from_millis(20))?; // both wait
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        first.cancel();
        say(format!("first: {}", outcome(&first.join())));
        say(format!("second: {}", outcome(&second.join())));
        say(format!("main cancellations={}", cancellations_over(Duration::from_millis(300))));
        Ok(())
    };
    let r = Builder::new().cancel_on_ctrl_c(armed_run).run(main);
    say(format!("run: {}", outcome(&r)));
}

fn one_of_two_woken_cancelled_unarmed() {
    one_of_two_woken_cancelled(false);
}

fn one_of_two_woken_cancelled_armed() {
    one_of_two_woken_cancelled(true);
}

const ONE_RECEIVED: [&str; 4] =
    ["first: Cancelled", "second: Ok(())", "main cancellations=0", "run: Ok(())"];

/// Of two waits a SIGINT woke, one is cancelled before it returns and the
/// other returns it: the signal was received, so it does not go on to
/// rule 3 (the process lives, with SIGINT's default disposition).
#[test]
fn a_signal_returned_by_one_woken_wait_is_received_though_another_was_cancelled() {
    let ended = run_child("one_of_two_woken_cancelled_unarmed");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(ended.lines, ONE_RECEIVED, "{ended:?}");
}

/// The same under a run that cancels on Ctrl-C: the signal was received,
/// so it does not go on to rule 2 either (main is not cancelled).
#[test]
fn a_signal_returned_by_one_woken_wait_does_not_cancel_an_armed_runs_main() {
    let ended = run_child("one_of_two_woken_cancelled_armed");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(ended.lines, ONE_RECEIVED, "{ended:?}");
}

fn all_woken_cancelled_armed() {
    let r = armed(|| {
        let waiters: Vec<Task<()>> =
            (0..3).map(|_| runtime::spawn(|| signal::wait(Signal::Interrupt))).collect();
        runtime::sleep(Duration::from_millis(20))?; // all wait
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        for w in &waiters {
            w.cancel();
        }
        for (i, w) in waiters.iter().enumerate() {
            // main itself may be cancelled while it joins: the join then
            // returns the waiter's outcome, its cancellation too.
            match w.join() {
                Err(e) if e.is_cancelled() => {}
                other => say(format!("waiter {i}: {}", outcome(&other))),
            }
        }
        cancellations_over(Duration::from_millis(300));
        // Python: `Task.cancelling()`, the cancellations requested.
        let cancelling = runtime::current_task()?.expect("in a task").cancelling();
        say(format!("main cancelled {cancelling} times"));
        say(format!("waiters cancelled: {}", waiters.iter().all(Task::is_cancelled)));
        Ok(5)
    });
    say(format!("run: {}", outcome(&r)));
    std::thread::sleep(Duration::from_millis(200));
    say("survived");
}

/// Under a run that cancels on Ctrl-C, every wait a SIGINT woke is
/// cancelled before it returns it: the signal goes on to rule 2, so the
/// main task is cancelled, exactly once (not once per wait given up, which
/// would also send the second to rule 3 and kill the process); main
/// catches it and returns its value.
#[test]
fn a_sigint_every_woken_wait_gave_up_cancels_an_armed_main_exactly_once() {
    let ended = run_child("all_woken_cancelled_armed");
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(
        ended.lines,
        ["main cancelled 1 times", "waiters cancelled: true", "run: Ok(5)", "survived"],
        "{ended:?}"
    );
}

fn woken_waiter_cancelled_by_teardown() {
    let r = Builder::new().cancel_on_ctrl_c(true).run(|| {
        let waiter = runtime::spawn(|| signal::wait(Signal::Interrupt));
        runtime::sleep(Duration::from_millis(20))?; // it waits
        raise(Signal::Interrupt);
        let_the_dispatcher_run();
        // main returns at once: the waiter, woken but not resumed, is
        // cancelled by the run's shutdown.
        drop(waiter);
        Ok(1)
    });
    say(format!("run: {}", outcome(&r)));
    std::thread::sleep(Duration::from_millis(500));
    say("survived");
}

/// A wait a SIGINT woke is cancelled by the run's shutdown (main returned
/// before the waiter resumed, and the run is disarmed by then): by the
/// signal docs the SIGINT goes on to rule 3, its default action, which
/// kills the process, during or right after the teardown; never a hang,
/// a panic or another death.
#[test]
fn a_woken_wait_cancelled_by_the_runs_teardown_hands_the_sigint_to_its_default() {
    let ended = run_child("woken_waiter_cancelled_by_teardown");
    assert!(ended.killed_by(libc::SIGINT), "{ended:?}");
    assert!(ended.lines.len() <= 1, "{ended:?}");
    if let Some(line) = ended.lines.first() {
        assert_eq!(line, "run: Ok(1)", "{ended:?}");
    }
    assert!(!ended.stderr.contains("panicked"), "{ended:?}");
}

// ---------------------------------------------------------------------
// 3. Sockets.

/// A connected pair made outside any loop (with `std`, then converted).
fn pair() -> (TcpStream, TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (TcpStream::from_std(client).unwrap(), TcpStream::from_std(server).unwrap())
}

/// On the running loop: a reader task parks on `a` (the bytes are not
/// there yet), then `b` writes `msg` and the reader gets it.
fn park_then_read(
    a: &Rc<TcpStream>,
    b: &Rc<TcpStream>,
    msg: &'static [u8],
) -> Result<Vec<u8>, Error> {
    let reader = {
        let a = a.clone();
        runtime::spawn(move || {
            let mut buf = vec![0; msg.len()];
            a.read_exact(&mut buf)?;
            Ok(buf)
        })
    };
    runtime::sleep(Duration::ZERO)?; // the reader parks
    runtime::sleep(Duration::ZERO)?;
    assert!(!reader.is_done(), "the reader did not park");
    b.write_all(msg)?;
    reader.join()
}

/// One stream used by a task of loop A, then (A dropped) of loop B on the
/// same thread, then of a new loop A2, then of B again, and then in turn
/// by B and by a loop C that stays alive: each time a task parks on it and
/// the peer's bytes wake it (a wait on a dead or idle loop's poll would
/// hang until the watchdog).
#[test]
fn a_stream_moves_between_loops_on_one_thread_and_every_wait_is_woken() {
    bounded(WATCHDOG, || {
        let (a, b) = pair();
        let (a, b) = (Rc::new(a), Rc::new(b));
        let loop_b = Builder::new().build();
        let loop_c = Builder::new().clock(Clock::virtual_time()).build();
        let messages: [&'static [u8]; 8] =
            [b"one", b"two", b"six", b"ten", b"red", b"tan", b"sky", b"sea"];
        for (round, msg) in messages.into_iter().enumerate() {
            let (a, b) = (a.clone(), b.clone());
            let got = match round {
                0 | 2 => Builder::new().run(move || park_then_read(&a, &b, msg)),
                1 | 3 | 5 | 7 => loop_b.run_until_complete(move || park_then_read(&a, &b, msg)),
                _ => loop_c.run_until_complete(move || park_then_read(&a, &b, msg)),
            };
            assert_eq!(got.unwrap(), msg, "round {round}");
        }
    });
}

/// A stream registered by a loop that is gone, whose tasks are still held
/// (a finished task keeps its loop's allocation through its weak link):
/// a task of a new loop waits on it and is woken.
#[test]
fn a_stream_whose_loop_is_gone_but_whose_tasks_are_held_works_on_a_new_loop() {
    bounded(WATCHDOG, || {
        let (a, b) = pair();
        let (a, b) = (Rc::new(a), Rc::new(b));
        let mut held = Vec::new();
        for round in 0..20 {
            let (a1, b1) = (a.clone(), b.clone());
            let event_loop = Builder::new().clock(Clock::virtual_time()).build();
            let task = event_loop
                .run_until_complete(move || {
                    let t = runtime::spawn(|| Ok(()));
                    assert_eq!(park_then_read(&a1, &b1, b"hi")?, b"hi");
                    t.join()?;
                    Ok(t)
                })
                .unwrap();
            drop(event_loop);
            held.push(task);
            assert!(held.iter().all(Task::is_done), "round {round}");
        }
    });
}

thread_local! {
    /// Bytes read by [`ReadsOnDrop`]'s destructors on this thread.
    static DTOR_READS: Cell<usize> = const { Cell::new(0) };
}

/// Counts its destructors; each one reads from a stream (the re-entrant
/// use the driver guards against: a stale waiter entry that drops holds
/// the last reference to a finished task whose result this is).
struct ReadsOnDrop {
    stream: Rc<TcpStream>,
    drops: Rc<Cell<usize>>,
    read: Rc<Cell<usize>>,
}

impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
        let mut buf = [0; 1];
        // Inside a task it waits a little (it may park on the stream, or
        // be refused while unwinding); outside one it reads or is refused.
        let inside = runtime::current_task().is_ok_and(|t| t.is_some());
        let got = if inside {
            read_within(&self.stream, &mut buf, Duration::from_millis(1))
        } else {
            self.stream.read(&mut buf).ok()
        };
        self.read.set(self.read.get() + got.unwrap_or(0));
        DTOR_READS.with(|d| d.set(d.get() + got.unwrap_or(0)));
    }
}

/// Many readers and writers on one stream pair, some cancelled while they
/// wait, whose results (values with destructors that read from the same
/// stream) are dropped in every order: from the main task, from other
/// tasks, when the loop ends. No panic, every destructor runs once, and
/// every byte written is read exactly once, by a reader or a destructor.
#[test]
fn results_whose_destructors_read_the_stream_they_waited_on_drop_once_without_panics() {
    bounded(WATCHDOG, || {
        let (a, b) = pair();
        let (a, b) = (Rc::new(a), Rc::new(b));
        let drops = Rc::new(Cell::new(0));
        let read = Rc::new(Cell::new(0));
        let made = Rc::new(Cell::new(0));
        let (a1, b1, drops1, read1, made1) =
            (a.clone(), b.clone(), drops.clone(), read.clone(), made.clone());
        let written = Builder::new()
            .clock(Clock::virtual_time())
            .run(move || {
                let mut written = 0usize;
                let mut rng = Rng(0x5eed_0003);
                let mut kept: Vec<Task<ReadsOnDrop>> = Vec::new();
                for round in 0..30 {
                    let readers: Vec<Task<ReadsOnDrop>> = (0..20)
                        .map(|_| {
                            let (a, drops, read, made) =
                                (a1.clone(), drops1.clone(), read1.clone(), made1.clone());
                            runtime::spawn(move || {
                                let mut buf = [0; 1];
                                let n = a.read(&mut buf)?;
                                read.set(read.get() + n);
                                made.set(made.get() + 1);
                                Ok(ReadsOnDrop { stream: a, drops, read })
                            })
                        })
                        .collect();
                    runtime::sleep(Duration::ZERO)?; // all park
                    for (i, r) in readers.iter().enumerate() {
                        if i % 4 == round % 4 {
                            r.cancel();
                        }
                    }
                    let n = 5 + rng.below(20);
                    b1.write_all(&vec![7; n])?;
                    written += n;
                    for _ in 0..3 {
                        runtime::sleep(Duration::ZERO)?;
                    }
                    // Drop some results now, keep some for later, leave
                    // some in tasks dropped unjoined.
                    for r in readers {
                        match rng.below(3) {
                            0 => {
                                // Joined only once done: a reader still
                                // parked is cancelled first.
                                if !r.is_done() {
                                    r.cancel();
                                }
                                drop(r.join());
                            }
                            1 => kept.push(r),
                            _ => drop(r),
                        }
                    }
                    if round % 5 == 4 {
                        let (a, b) = (a1.clone(), b1.clone());
                        let dropper = runtime::spawn(move || {
                            drop(kept);
                            // A writer and a reader meanwhile.
                            b.write_all(b"xy")?;
                            let mut buf = [0; 2];
                            Ok(read_within(&a, &mut buf, Duration::from_millis(1)).unwrap_or(0))
                        });
                        written += 2;
                        let n = dropper.join()?;
                        read1.set(read1.get() + n);
                        kept = Vec::new();
                    }
                }
                drop(kept);
                Ok(written)
            })
            .unwrap();
        // Whatever is left unread is still in the socket.
        let a2 = a.clone();
        let rest = Builder::new()
            .clock(Clock::virtual_time())
            .run(move || {
                let (mut rest, mut buf) = (0, [0; 4096]);
                while let Some(n) = read_within(&a2, &mut buf, Duration::from_millis(5)) {
                    if n == 0 {
                        break;
                    }
                    rest += n;
                }
                Ok(rest)
            })
            .unwrap();
        assert!(made.get() > 100, "only {} readers finished", made.get());
        assert!(DTOR_READS.with(Cell::get) > 0, "no destructor read a byte");
        assert_eq!(drops.get(), made.get(), "every finished reader's result dropped once");
        assert_eq!(read.get() + rest, written, "bytes read {} + left {rest}", read.get());
        drop(b);
    });
}

/// Reads into `buf` for at most `limit`: `None` if the time ran out or
/// the read failed.
fn read_within(stream: &TcpStream, buf: &mut [u8], limit: Duration) -> Option<usize> {
    runtime::timeout(Some(limit), |_| stream.read(buf)).ok()
}

/// A storm of cancellations on one stream: rounds of readers and writers
/// (a full socket buffer makes writers park), cancelled in waves while
/// they wait, and timeouts on reads: afterwards one reader still gets the
/// peer's bytes, and the loop ends (no stale entry keeps it polling).
#[test]
fn cancellation_storms_on_one_stream_leave_it_working() {
    bounded(WATCHDOG, || {
        let (a, b) = pair();
        let (a, b) = (Rc::new(a), Rc::new(b));
        let got = Builder::new()
            .clock(Clock::virtual_time())
            .run(move || {
                for round in 0..40 {
                    let mut tasks: Vec<Task<usize>> = Vec::new();
                    for i in 0..30 {
                        let b = b.clone();
                        tasks.push(if i % 3 == 0 {
                            // A writer that fills b's buffer: it parks.
                            runtime::spawn(move || {
                                let chunk = vec![1u8; 64 * 1024];
                                let mut total = 0;
                                loop {
                                    total += b.write(&chunk)?;
                                    if total > 16 * 1024 * 1024 {
                                        return Ok(total);
                                    }
                                }
                            })
                        } else {
                            runtime::spawn(move || {
                                let mut buf = [0; 1];
                                Ok(read_within(&b, &mut buf, Duration::from_millis(i as u64))
                                    .unwrap_or(0))
                            })
                        });
                    }
                    runtime::sleep(Duration::ZERO)?;
                    for (i, t) in tasks.iter().enumerate() {
                        if (i + round) % 2 == 0 {
                            t.cancel();
                        }
                    }
                    runtime::sleep(Duration::from_millis(1))?;
                    for t in &tasks {
                        t.cancel();
                    }
                    for t in &tasks {
                        match t.join() {
                            Err(e) if e.is_cancelled() => {}
                            Ok(_) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    // Drain what the writers put in flight, so b's buffer
                    // has room again.
                    let mut buf = vec![0; 1 << 20];
                    while read_within(&a, &mut buf, Duration::from_millis(1)).is_some_and(|n| n > 0)
                    {
                    }
                }
                let reader = {
                    let b = b.clone();
                    runtime::spawn(move || {
                        let mut buf = [0; 5];
                        b.read_exact(&mut buf)?;
                        Ok(buf)
                    })
                };
                runtime::sleep(Duration::ZERO)?;
                a.write_all(b"after")?;
                reader.join()
            })
            .unwrap();
        assert_eq!(&got, b"after");
    });
}

// Allocations, counted per thread.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

/// What a reader does in a round before it parks for the next byte.
#[derive(Clone, Copy, PartialEq)]
enum Before {
    /// Nothing.
    Nothing,
    /// Sleeps half a millisecond: no byte comes meanwhile.
    Nap,
    /// Sleeps a millisecond and a half: a byte comes meanwhile (an event
    /// that finds its line of readers empty), which it then reads.
    IdleEvent,
}

/// Allocations on this thread over `rounds` rounds of a reader (the main
/// task) on a stream a writer task feeds one byte a millisecond (virtual
/// clock). In each round the reader parks once and is woken by the byte.
fn reader_allocations(before_park: Before, rounds: usize) -> u64 {
    let (a, b) = pair();
    Builder::new()
        .clock(Clock::virtual_time())
        .run(move || {
            let writer: Task<()> = runtime::spawn(move || {
                loop {
                    runtime::sleep(Duration::from_millis(1))?;
                    b.write_all(b"x")?;
                }
            });
            let mut buf = [0; 1];
            a.read_exact(&mut buf)?; // in step with the writer
            let mut round = |measured: bool| -> Result<u64, Error> {
                let before = allocations();
                match before_park {
                    Before::Nothing => {}
                    Before::Nap => runtime::sleep(Duration::from_micros(500))?,
                    Before::IdleEvent => {
                        runtime::sleep(Duration::from_micros(1_500))?;
                        a.read_exact(&mut buf)?;
                    }
                }
                a.read_exact(&mut buf)?; // parks until the next byte
                Ok(if measured { allocations() - before } else { 0 })
            };
            for _ in 0..20 {
                round(false)?;
            }
            let mut total = 0;
            for _ in 0..rounds {
                total += round(true)?;
            }
            writer.cancel();
            Ok(total)
        })
        .unwrap()
}

/// The change's claim: a socket wait allocates nothing (its line keeps its
/// buffer). It holds for a reader that is parked whenever its bytes come,
/// also one that sleeps on a timer between its waits.
#[test]
fn a_reader_parked_whenever_its_bytes_come_allocates_nothing() {
    let allocated = bounded(WATCHDOG, || reader_allocations(Before::Nothing, 200));
    assert_eq!(allocated, 0, "allocations over 200 parked waits");
    let allocated = bounded(WATCHDOG, || reader_allocations(Before::Nap, 200));
    assert_eq!(allocated, 0, "allocations over 200 parked waits after naps");
}

/// The same claim when an event of the stream finds nobody waiting (its
/// bytes came while the reader slept): the next wait must still allocate
/// nothing. `Readiness::wake` moves the line out (`mem::take`) before it
/// looks whether it is empty, and an empty line returns early, dropping
/// the buffer it moved out: the next wait allocates a new one.
#[test]
fn a_wait_after_an_event_that_found_nobody_waiting_allocates_nothing() {
    let allocated = bounded(WATCHDOG, || reader_allocations(Before::IdleEvent, 200));
    assert_eq!(allocated, 0, "allocations over 200 waits, each after an idle event");
}
