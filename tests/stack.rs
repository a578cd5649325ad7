//! Process-level tests of the stack pool: overflow reporting, threads that
//! exit with stacks still lent out, the guard-page modes and the layout of a
//! million stacks, stack reuse, and the `scale` example's output.
//!
//! Under AddressSanitizer (`.ci/sanitize` sets `GENCORO_UNDER_ASAN=1`), the
//! tests that measure the process's memory or exhaust its mappings say they
//! are skipped and pass.
//!
//! Tests that crash a process or change process-wide state run in a child:
//! either an example binary, or this test binary re-run with
//! [`CHILD_ENV`] set and `--exact <test name>`, so that only the child does
//! the dangerous part.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use gencoro::stack::{self, DEFAULT_STACK_SIZE, GuardMode, StackError};
use gencoro::{Generator, GeneratorBuilder, ResumeError, Step, Yielder};

/// Set in a child process to the name of the test it runs as the child.
const CHILD_ENV: &str = "GENCORO_STACK_TEST_CHILD";

/// Examples the tests run.
const EXAMPLES: [&str; 2] = ["stack_overflow", "scale"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `target/<profile>`: the test binary lives in `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary is in a directory");
    assert_eq!(deps.file_name(), Some(OsStr::new("deps")), "unexpected test binary path {exe:?}");
    deps.parent().expect("deps is inside the profile directory").to_path_buf()
}

/// The path of an example binary, built for this test binary's profile.
///
/// `cargo test` builds the examples before running tests, but `cargo test
/// --test stack` does not, and a binary left over from an earlier build may
/// be stale; so the examples are built once here (a no-op when fresh).
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let profile_dir = profile_dir();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut target_dir = profile_dir.parent().expect("the profile directory is in target/");
        // Built for an explicit target (as `.ci/sanitize` does), the profile
        // directory is `target/<triple>/<profile>`; the nested build
        // inherits CARGO_BUILD_TARGET and lands there too.
        if let Some(triple) = std::env::var_os("CARGO_BUILD_TARGET") {
            assert_eq!(target_dir.file_name(), Some(triple.as_os_str()), "{profile_dir:?}");
            target_dir = target_dir.parent().expect("target/<triple> is inside target/");
        }
        let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("unexpected profile directory {profile_dir:?}"),
        };
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--profile", profile, "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        for example in EXAMPLES {
            build.args(["--example", example]);
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
    });
    let path = profile_dir.join("examples").join(name);
    assert!(path.is_file(), "example binary {path:?} missing after the build");
    path
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether this process is the child running `test`.
fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|name| name == test)
}

/// Says, past libtest's output capture, that `test` did not run and why.
fn skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "test {test}: skipped: {why}");
}

/// Whether this run is under AddressSanitizer (`.ci/sanitize` sets
/// `GENCORO_UNDER_ASAN`); if so, says that `test` is skipped and why.
fn under_asan(test: &str, why: &str) -> bool {
    let asan = std::env::var_os("GENCORO_UNDER_ASAN").is_some_and(|v| v == "1");
    if asan {
        skip(test, &format!("under AddressSanitizer: {why}"));
    }
    asan
}

/// Why tests that measure the process's memory do not run under ASan.
const ASAN_OWNS_MEMORY: &str =
    "its allocator, quarantine and fake stacks dominate the process's address space and RSS";

/// Re-runs this test binary with only `test`, as the child, and returns
/// what it did.
fn run_child(test: &str) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    run(Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test))
}

/// Re-runs this test binary with only `test`, as the child; checks that the
/// test ran and passed there, and returns its stdout.
fn run_as_child(test: &str) -> String {
    let output = run_child(test);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "child {test} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child did not run exactly {test}:\n{stdout}"
    );
    stdout
}

/// The value of the first `key=<value>` in `stdout`, up to the end of its
/// line. (The child's lines may follow libtest's `test <name> ... `.)
fn reported<'a>(stdout: &'a str, key: &str) -> &'a str {
    let key = format!("{key}=");
    stdout
        .lines()
        .find_map(|line| Some(line.split_once(&key)?.1))
        .unwrap_or_else(|| panic!("no {key}= line in:\n{stdout}"))
}

#[path = "common/pool_stats.rs"]
mod pool_stats;
use pool_stats::pool;

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("/proc/sys/vm/max_map_count is readable")
        .trim()
        .parse()
        .expect("vm.max_map_count is a number")
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable").lines().count()
}

/// A generator suspended at its first yield, which yields `i`. Its stack
/// is taken when it starts, so that is where a missing stack shows.
fn suspended(i: usize) -> Result<Generator<usize>, StackError> {
    let g = GeneratorBuilder::new().build(move |co| {
        co.yield_(i);
    })?;
    match g.start() {
        Ok(step) => assert_eq!(step, Step::Yielded(i)),
        Err(ResumeError::NoStack(e)) => {
            assert!(g.state() == gencoro::State::Created, "a failed start leaves it created");
            return Err(e);
        }
        Err(e) => panic!("generator {i}: {e}"),
    }
    Ok(g)
}

/// Makes suspended generators until a stack cannot be had, up to `bound`.
/// Returns the generators and the error, which must be `MapCountLimit`.
fn fill_until_map_count_limit(bound: usize) -> (Vec<Generator<usize>>, StackError) {
    // Reserve up front: once the map count is exhausted, growing a large
    // `Vec` (which mmaps) would fail.
    let mut held = Vec::with_capacity(bound);
    for i in 0..bound {
        match suspended(i) {
            Ok(g) => held.push(g),
            Err(e) => {
                assert!(
                    matches!(e, StackError::MapCountLimit { .. }),
                    "generator {i}: expected MapCountLimit, got {e:?}: {e}"
                );
                return (held, e);
            }
        }
    }
    panic!("made {bound} generators without reaching vm.max_map_count ({})", max_map_count());
}

/// Checks the map-count error and that the process carries on: every held
/// generator still resumes to its end, and freed stacks are reused.
fn check_map_count_limit(held: Vec<Generator<usize>>, error: &StackError) {
    let fit = held.len();
    let StackError::MapCountLimit { live_stacks } = *error else { unreachable!() };
    assert_eq!(live_stacks, fit, "live_stacks in the error: {error:?}");
    let message = error.to_string();
    assert!(message.contains("vm.max_map_count"), "Display does not mention it: {message}");
    assert!(message.contains(&fit.to_string()), "Display lacks the stack count: {message}");
    println!("stacks_fit={fit}");
    println!("error={message}");

    let mapped = pool(DEFAULT_STACK_SIZE).stacks_mapped;
    for (i, g) in held.iter().enumerate() {
        assert_eq!(g.resume().unwrap(), Step::Returned(()), "generator {i}");
    }
    drop(held);
    let after = pool(DEFAULT_STACK_SIZE);
    assert_eq!(after.stacks_in_use, 0);
    assert_eq!(after.stacks_free, fit);
    // With the stacks back in the pool, allocation works again and maps
    // nothing new.
    let again: Vec<_> = (0..100).map(|i| suspended(i).expect("a pooled stack")).collect();
    assert_eq!(pool(DEFAULT_STACK_SIZE).stacks_mapped, mapped);
    drop(again);
}

// ---------------------------------------------------------------------------
// Stack overflow
// ---------------------------------------------------------------------------

/// Runs the `stack_overflow` example and checks that it died of `SIGABRT`
/// from gencoro's overflow handler, naming `expected_size`.
fn check_overflow(args: &[&str], expected_size: usize) {
    let output = run(Command::new(example("stack_overflow")).args(args));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let context = format!("status {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    assert!(!output.status.success(), "{context}");
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "not killed by SIGABRT: {context}");
    assert!(stdout.contains(&format!("stack size: {expected_size} bytes")), "{context}");
    assert!(stderr.contains("gencoro: coroutine stack overflow"), "{context}");
    assert!(stderr.contains(&format!("its {expected_size}-byte stack")), "{context}");
    assert!(stderr.contains("guard page at 0x"), "{context}");
    assert!(!stdout.contains("unreachable"), "{context}");
}

#[test]
fn overflow_in_a_generator_aborts_with_the_overflow_message() {
    check_overflow(&[], DEFAULT_STACK_SIZE);
}

#[test]
fn overflow_message_names_a_custom_stack_size() {
    check_overflow(&["65536"], 64 * 1024);
}

#[test]
fn overflow_message_names_the_rounded_stack_size() {
    // 50,000 bytes are rounded up to whole pages; the message reports the
    // size the generator really has.
    let rounded = GeneratorBuilder::new()
        .stack_size(50_000)
        .build(|co: &gencoro::Yielder<()>| co.yield_(()))
        .unwrap()
        .stack_size();
    assert!(rounded >= 50_000 && rounded % stack::page_size() == 0, "{rounded}");
    check_overflow(&["50000"], rounded);
}

// ---------------------------------------------------------------------------
// Threads that exit with stacks still lent out
// ---------------------------------------------------------------------------

/// More threads than the overflow table used to have slots (4,096).
const EXITING_THREADS: usize = 5_000;

/// Uses a kilobyte of stack per call, without bound. `black_box` keeps the
/// frame and the recursion from being optimised away.
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    let frame = std::hint::black_box([depth as u8; 1024]);
    let below = recurse(std::hint::black_box(depth + 1));
    below.wrapping_add(u64::from(frame[(depth % 1024) as usize]))
}

/// In a child: overflows a fresh generator's stack, which must abort the
/// process with gencoro's message. Prints `overflowing` first.
fn overflow_now() -> ! {
    let g: Generator<u64> = Generator::new(|co| {
        co.yield_(0);
        co.yield_(recurse(0));
    });
    g.start().unwrap();
    println!("overflowing");
    let result = g.resume();
    panic!("the recursion returned {result:?}");
}

/// Checks that a child ran to `overflowing` and then died of gencoro's
/// overflow report (`SIGABRT`), not a bare `SIGSEGV`.
fn check_child_overflow_reported(output: &Output) {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let context = format!("status {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    assert!(stdout.contains("overflowing"), "the child did not get to the overflow: {context}");
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "not killed by SIGABRT: {context}");
    assert!(stderr.contains("gencoro: coroutine stack overflow"), "{context}");
    assert!(stderr.contains(&format!("its {DEFAULT_STACK_SIZE}-byte stack")), "{context}");
}

/// Counts the bodies whose destructors ran.
static BODIES_CLOSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct CountOnDrop;

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        BODIES_CLOSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

thread_local! {
    /// Initialised before the thread's stack pool, so destroyed after it:
    /// the generator in it returns its stack once the pool is gone.
    static HELD: std::cell::RefCell<Option<Generator<usize>>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts `EXITING_THREADS` threads, one after the other, each of which
/// ends with a suspended generator in a thread-local destroyed after the
/// thread's stack pool. Checks every generator was closed at thread exit.
fn exit_threads_with_stacks_in_thread_locals() {
    let before = BODIES_CLOSED.load(std::sync::atomic::Ordering::Relaxed);
    for i in 0..EXITING_THREADS {
        std::thread::spawn(move || {
            // First touch: registers HELD's destructor before the pool's.
            HELD.with(|held| assert!(held.borrow().is_none()));
            let g = Generator::new(move |co| {
                let _sentinel = CountOnDrop;
                co.yield_(i);
            });
            assert_eq!(g.start().unwrap(), Step::Yielded(i));
            HELD.with(|held| *held.borrow_mut() = Some(g));
        })
        .join()
        .expect("the thread ran");
    }
    let closed = BODIES_CLOSED.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(closed, EXITING_THREADS, "generators closed at thread exit");
}

/// Starts `EXITING_THREADS` threads, one after the other, each of which
/// leaks a suspended generator for good (`mem::forget`).
fn exit_threads_with_forgotten_stacks() {
    for i in 0..EXITING_THREADS {
        std::thread::spawn(move || std::mem::forget(suspended(i).expect("a stack")))
            .join()
            .expect("the thread ran");
    }
}

/// A size from `/proc/self/status`, in bytes: `VmSize` (address space),
/// `VmRSS` (resident memory), `VmPTE` (page tables).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status:\n{status}"));
    kib * 1024
}

/// Bytes of address space this process has mapped.
fn address_space() -> usize {
    status_bytes("VmSize")
}

#[test]
fn stacks_returned_after_their_threads_pool_is_gone_are_unmapped() {
    check_exiting_threads_unmap(
        "stacks_returned_after_their_threads_pool_is_gone_are_unmapped",
        exit_threads_with_stacks_in_thread_locals,
    );
}

/// In child process `name` (the test of that name), runs `exit_threads`
/// twice, the first time to warm up thread creation (malloc arenas,
/// glibc's stack cache), and checks that the second time the address space
/// grew by less than an eighth of what leaking each thread's chunk would
/// cost: each thread maps a chunk of 8 stacks (over 1 MiB), so leaking
/// them would grow it by over 5 GiB.
fn check_exiting_threads_unmap(name: &str, exit_threads: fn()) {
    if under_asan(name, ASAN_OWNS_MEMORY) {
        return;
    }
    if is_child(name) {
        exit_threads();
        let before = address_space();
        exit_threads();
        let grown = address_space().saturating_sub(before);
        let leak = EXITING_THREADS * 8 * usable_stride();
        println!("address_space_growth={grown} leak_would_be={leak}");
        assert!(grown < leak / 8, "{grown} bytes more mapped after {EXITING_THREADS} threads");
        return;
    }
    let stdout = run_as_child(name);
    let grown = reported(&stdout, "address_space_growth");
    eprintln!("address space growth over {EXITING_THREADS} exiting threads: {grown}");
}

/// Threads that end right after running generators to completion: the
/// stack freed last waits out of the pool (the hot stack) when the thread
/// exits, and must be unmapped with the rest of its chunk.
#[test]
fn threads_ending_with_the_stack_they_freed_last_unmap_it() {
    check_exiting_threads_unmap(
        "threads_ending_with_the_stack_they_freed_last_unmap_it",
        exit_threads_after_running_generators,
    );
}

/// Starts `EXITING_THREADS` threads, one after the other, each of which
/// runs three generators to completion and ends with the last stack it
/// freed kept out of its pool (the hot stack).
fn exit_threads_after_running_generators() {
    for i in 0..EXITING_THREADS {
        std::thread::spawn(move || {
            for round in 0..3 {
                let g: Generator<usize, (), usize> = Generator::new(move |co| {
                    co.yield_(i);
                    round
                });
                assert_eq!(g.resume().unwrap(), Step::Yielded(i));
                assert_eq!(g.resume().unwrap(), Step::Returned(round));
            }
            // The hot stack is free, so nothing is lent out.
            let stats = pool(DEFAULT_STACK_SIZE);
            assert_eq!((stats.stacks_in_use, stats.stacks_free), (0, 1), "{stats:?}");
        })
        .join()
        .expect("the thread ran");
    }
}

/// A thread started with `pthread_create`, not by `std`: it has no
/// alternate signal stack until gencoro gives it one.
fn run_foreign_thread() {
    extern "C" fn body(_: *mut libc::c_void) -> *mut libc::c_void {
        let g = suspended(7).expect("a stack");
        assert_eq!(g.resume().unwrap(), Step::Returned(()));
        std::ptr::null_mut()
    }
    let mut thread: libc::pthread_t = 0;
    // SAFETY: `body` is a valid thread entry point that ignores its
    // argument; the default attributes are used.
    let created =
        unsafe { libc::pthread_create(&mut thread, std::ptr::null(), body, std::ptr::null_mut()) };
    assert_eq!(created, 0, "pthread_create");
    // SAFETY: `thread` was just created and is joined once.
    assert_eq!(unsafe { libc::pthread_join(thread, std::ptr::null_mut()) }, 0, "pthread_join");
}

/// Resident bytes of this process.
fn resident() -> usize {
    status_bytes("VmRSS")
}

#[test]
fn overflow_is_reported_after_threads_register_chunks_all_at_once() {
    const NAME: &str = "overflow_is_reported_after_threads_register_chunks_all_at_once";
    const THREADS: usize = 8;
    const SIZES: usize = 100;
    if is_child(NAME) {
        // Each thread maps one chunk per stack size, all threads at once,
        // and leaks a stack in each: 800 chunks registered concurrently,
        // several times the overflow table's first segment.
        let start = std::sync::Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    start.wait();
                    for k in 0..SIZES {
                        let size = stack::MIN_STACK_SIZE + k * stack::page_size();
                        let g: Generator<()> = GeneratorBuilder::new()
                            .stack_size(size)
                            .build(|co| co.yield_(()))
                            .expect("a stack");
                        g.start().unwrap();
                        std::mem::forget(g);
                    }
                });
            }
        });
        overflow_now();
    }
    check_child_overflow_reported(&run_child(NAME));
}

#[test]
fn a_thread_that_exits_with_a_stack_leaked_releases_its_free_stacks_memory() {
    const NAME: &str = "a_thread_that_exits_with_a_stack_leaked_releases_its_free_stacks_memory";
    const STACKS: usize = 4_000;
    if under_asan(NAME, ASAN_OWNS_MEMORY) {
        return;
    }
    if is_child(NAME) {
        let before = resident();
        std::thread::spawn(|| {
            // Touch STACKS stacks, a page each at least, and free them all...
            let held: Vec<_> = (0..STACKS).map(|i| suspended(i).expect("a stack")).collect();
            drop(held);
            assert_eq!(pool(DEFAULT_STACK_SIZE).stacks_free, STACKS);
            // ...but one, leaked for good: the pool cannot unmap its chunk.
            std::mem::forget(suspended(0).expect("a pooled stack"));
        })
        .join()
        .expect("the thread ran");
        let kept = resident().saturating_sub(before);
        let touched = STACKS * stack::page_size();
        println!("resident_growth={kept} touched={touched}");
        assert!(kept < touched / 4, "{kept} bytes stay resident after the thread exited");
        return;
    }
    let stdout = run_as_child(NAME);
    let kept = reported(&stdout, "resident_growth");
    eprintln!("resident after a thread exited with {STACKS} free stacks and one leaked: {kept}");
}

#[test]
fn overflow_in_a_thread_not_started_by_std_is_reported() {
    const NAME: &str = "overflow_in_a_thread_not_started_by_std_is_reported";
    if is_child(NAME) {
        extern "C" fn body(_: *mut libc::c_void) -> *mut libc::c_void {
            overflow_now()
        }
        let mut thread: libc::pthread_t = 0;
        // SAFETY: as in `run_foreign_thread`.
        let created = unsafe {
            libc::pthread_create(&mut thread, std::ptr::null(), body, std::ptr::null_mut())
        };
        assert_eq!(created, 0, "pthread_create");
        // SAFETY: `thread` was just created and is joined once.
        unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
        panic!("the overflowing thread ended");
    }
    check_child_overflow_reported(&run_child(NAME));
}

#[test]
fn threads_not_started_by_std_do_not_leak_their_signal_stacks() {
    const NAME: &str = "threads_not_started_by_std_do_not_leak_their_signal_stacks";
    const THREADS: usize = 2_000;
    if under_asan(NAME, ASAN_OWNS_MEMORY) {
        return;
    }
    if is_child(NAME) {
        // Warm up: glibc caches the stacks of joined threads.
        (0..100).for_each(|_| run_foreign_thread());
        let before = address_space();
        (0..THREADS).for_each(|_| run_foreign_thread());
        let grown = address_space().saturating_sub(before);
        // Each thread got a 64 KiB alternate signal stack.
        let leak = THREADS * 64 * 1024;
        println!("address_space_growth={grown} leak_would_be={leak}");
        assert!(grown < leak / 4, "{grown} bytes more mapped after {THREADS} threads");
        return;
    }
    let stdout = run_as_child(NAME);
    let grown = reported(&stdout, "address_space_growth");
    eprintln!("address space growth over {THREADS} foreign threads: {grown}");
}

/// Bytes per default-size stack, guard included.
fn usable_stride() -> usize {
    DEFAULT_STACK_SIZE + stack::page_size()
}

#[test]
fn overflow_is_reported_after_thousands_of_threads_exit_with_stacks_lent_out() {
    const NAME: &str = "overflow_is_reported_after_thousands_of_threads_exit_with_stacks_lent_out";
    if is_child(NAME) {
        exit_threads_with_stacks_in_thread_locals();
        overflow_now();
    }
    check_child_overflow_reported(&run_child(NAME));
}

#[test]
fn overflow_is_reported_after_thousands_of_threads_leak_stacks_forever() {
    const NAME: &str = "overflow_is_reported_after_thousands_of_threads_leak_stacks_forever";
    if is_child(NAME) {
        exit_threads_with_forgotten_stacks();
        overflow_now();
    }
    check_child_overflow_reported(&run_child(NAME));
}

// ---------------------------------------------------------------------------
// Guard modes
// ---------------------------------------------------------------------------

/// Above this, filling the real map count would take gigabytes.
const MAX_TESTED_MAP_COUNT: usize = 262_144;

/// The memory mappings the test may let the pools add in the capped
/// fallback test: about 10,000 stacks with `mprotect` guards.
const MAPPING_CAP: usize = 20_000;

#[test]
fn mprotect_fallback_reports_map_count_limit() {
    const NAME: &str = "mprotect_fallback_reports_map_count_limit";
    if is_child(NAME) {
        // Force the pre-6.13 guard path, and make the pools' share of the
        // map count run out after MAPPING_CAP mappings, whatever this
        // machine's vm.max_map_count.
        stack::force_mprotect_guards();
        stack::cap_mappings_for_tests(Some(MAPPING_CAP));
        let maps_before = map_count();
        let (held, error) = fill_until_map_count_limit(MAPPING_CAP);
        let stats = pool(DEFAULT_STACK_SIZE);
        assert_eq!(stats.guard_mode, GuardMode::Mprotect);
        // A chunk is one mapping and each guard splits it: two more. The
        // stack refused was the first that did not fit in the cap.
        let used = stats.chunks + 2 * held.len();
        assert!((MAPPING_CAP - 1..=MAPPING_CAP).contains(&used), "{used} mappings used: {stats:?}");
        // The kernel saw the splits the cap counted.
        let grown = map_count() - maps_before;
        assert!(grown >= 2 * held.len(), "only {grown} more maps for {} stacks", held.len());
        check_map_count_limit(held, &error);
        return;
    }
    let stdout = run_as_child(NAME);
    let fit: usize = reported(&stdout, "stacks_fit").parse().expect("a count");
    let error = reported(&stdout, "error");
    eprintln!("mprotect fallback: {fit} stacks fit in {MAPPING_CAP} mappings: {error}");
}

#[test]
fn mprotect_fallback_reports_the_kernels_map_count_limit() {
    const NAME: &str = "mprotect_fallback_reports_the_kernels_map_count_limit";
    let limit = max_map_count();
    if limit > MAX_TESTED_MAP_COUNT {
        // mprotect_fallback_reports_map_count_limit covers the path with a
        // capped budget.
        skip(NAME, &format!("vm.max_map_count is {limit}, too high to exhaust in a test"));
        return;
    }
    if under_asan(NAME, "AddressSanitizer needs memory mappings of its own") {
        return;
    }
    if is_child(NAME) {
        // Force the pre-6.13 guard path and fill the real map count.
        stack::force_mprotect_guards();
        let (held, error) = fill_until_map_count_limit(limit);
        assert_eq!(pool(DEFAULT_STACK_SIZE).guard_mode, GuardMode::Mprotect);
        // Each mprotect guard splits the chunk mapping: guard + stack.
        assert!(map_count() + 100 >= limit, "only {} maps at the limit {limit}", map_count());
        check_map_count_limit(held, &error);
        return;
    }
    let stdout = run_as_child(NAME);
    let fit: usize = reported(&stdout, "stacks_fit").parse().expect("a count");
    let error = reported(&stdout, "error");
    eprintln!("mprotect fallback: {fit} stacks fit under vm.max_map_count={limit}: {error}");
    // Two mappings per stack (guard + usable), less what the process had.
    assert!(fit <= limit / 2, "{fit} stacks fit, more than half of {limit}");
    assert!(fit >= limit / 2 - 1000, "only {fit} stacks fit under {limit}");
}

/// How many of this process's memory mappings overlap one of `ranges`
/// (sorted, disjoint `[low, high)` ranges).
fn mappings_overlapping(ranges: &[(usize, usize)]) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps is readable");
    maps.lines()
        .filter(|line| {
            let span = line.split_whitespace().next().expect("an address range");
            let (low, high) = span.split_once('-').expect("low-high");
            let low = usize::from_str_radix(low, 16).expect("hex");
            let high = usize::from_str_radix(high, 16).expect("hex");
            // The first range ending above `low` overlaps if it starts
            // below `high`.
            let i = ranges.partition_point(|&(_, end)| end <= low);
            ranges.get(i).is_some_and(|&(start, _)| start < high)
        })
        .count()
}

#[test]
fn a_million_stacks_lay_out_in_a_few_hundred_mappings() {
    const NAME: &str = "a_million_stacks_lay_out_in_a_few_hundred_mappings";
    const COUNT: usize = 1_000_000;
    if is_child(NAME) {
        let started = std::time::Instant::now();
        let probe = stack::RawStack::allocate(DEFAULT_STACK_SIZE).expect("one stack");
        let mode = pool(DEFAULT_STACK_SIZE).guard_mode;
        println!("guard_mode={mode:?}");
        if mode == GuardMode::Mprotect {
            // This kernel lacks MADV_GUARD_INSTALL: the fallback must hit
            // the limit and report it, long before COUNT.
            drop(probe);
            let (held, error) = fill_until_map_count_limit(max_map_count());
            check_map_count_limit(held, &error);
            return;
        }
        let mut held = Vec::with_capacity(COUNT);
        held.push(probe);
        for i in 1..COUNT {
            let stack = stack::RawStack::allocate(DEFAULT_STACK_SIZE)
                .unwrap_or_else(|e| panic!("stack {i}: {e}"));
            held.push(stack);
        }
        let laid_out = started.elapsed();
        let stats = pool(DEFAULT_STACK_SIZE);
        assert_eq!(stats.guard_mode, GuardMode::GuardInstall);
        assert_eq!((stats.stacks_in_use, stats.stacks_mapped), (COUNT, COUNT));

        // Every stack: `size` usable bytes above one guard page, and no
        // two stacks (guards included) overlap.
        let page = stack::page_size();
        let mut ranges: Vec<(usize, usize)> = held
            .iter()
            .map(|s| {
                assert_eq!(s.base() - s.limit(), DEFAULT_STACK_SIZE, "{s:?}");
                assert_eq!(s.limit() - s.guard(), page, "{s:?}");
                (s.guard(), s.base())
            })
            .collect();
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "stacks overlap: {:x?} and {:x?}", pair[0], pair[1]);
        }
        // Guards do not split mappings: the stacks lie in as many mappings
        // as there are chunks, or fewer where the kernel merged neighbours.
        let maps = mappings_overlapping(&ranges);
        assert!(maps <= stats.chunks, "{COUNT} stacks in {maps} mappings: {stats:?}");
        // A sample of stacks is writable from top to bottom.
        for s in held.iter().step_by(COUNT / 1000) {
            for addr in [s.limit(), s.base() - 1] {
                // SAFETY: `addr` is in the usable part of a stack this test
                // holds and nothing runs on.
                unsafe { std::ptr::write_volatile(addr as *mut u8, 0xa5) };
            }
        }
        drop(held);
        let after = pool(DEFAULT_STACK_SIZE);
        assert_eq!((after.stacks_in_use, after.stacks_free), (0, COUNT));
        println!(
            "layout={COUNT} stacks in {maps} mappings, {} chunks, laid out in {} ms; \
             page tables {} KiB, resident {} KiB",
            stats.chunks,
            laid_out.as_millis(),
            status_bytes("VmPTE") / 1024,
            resident() / 1024,
        );
        return;
    }
    let stdout = run_as_child(NAME);
    if reported(&stdout, "guard_mode") == "Mprotect" {
        eprintln!("this kernel lacks MADV_GUARD_INSTALL; checked the fallback's error instead");
    } else {
        eprintln!("{}", reported(&stdout, "layout"));
    }
}

// ---------------------------------------------------------------------------
// Reuse
// ---------------------------------------------------------------------------

#[test]
fn finished_and_dropped_generators_reuse_stacks() {
    let before = pool(DEFAULT_STACK_SIZE);
    for round in 0..5_000 {
        // Run to completion.
        let g: Generator<usize, (), usize> = Generator::new(move |co| {
            co.yield_(round);
            co.yield_(round + 1);
            round * 2
        });
        assert_eq!(g.resume().unwrap(), Step::Yielded(round));
        assert_eq!(g.resume().unwrap(), Step::Yielded(round + 1));
        assert_eq!(g.resume().unwrap(), Step::Returned(round * 2));

        // Dropped while suspended (unwound), and dropped unstarted.
        let suspended = suspended(round).unwrap();
        let unstarted: Generator<usize> = Generator::new(|co| co.yield_(0));

        // Delegation: two stacks at once.
        let outer: Generator<usize, (), usize> = Generator::new(move |co| {
            let inner = Generator::new(move |co| {
                co.yield_(round);
                round
            });
            co.yield_from(&inner).unwrap()
        });
        assert_eq!(outer.resume().unwrap(), Step::Yielded(round));
        assert_eq!(outer.resume().unwrap(), Step::Returned(round));
        drop((suspended, unstarted));
    }
    let after = pool(DEFAULT_STACK_SIZE);
    assert_eq!(after.stacks_in_use, before.stacks_in_use, "{after:?}");
    assert!(
        after.stacks_mapped - before.stacks_mapped <= 4,
        "20,000 generators mapped {} new stacks: {after:?}",
        after.stacks_mapped - before.stacks_mapped
    );
}

// ---------------------------------------------------------------------------
// The scale example
// ---------------------------------------------------------------------------

#[test]
fn scale_example_reports_rss_per_generator() {
    if under_asan("scale_example_reports_rss_per_generator", ASAN_OWNS_MEMORY) {
        return;
    }
    let output = run(Command::new(example("scale")).args(["--generators", "20000"]));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let context = format!("status {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    assert!(output.status.success(), "{context}");
    let last = stdout.lines().last().expect("some output");
    let bytes = last
        .strip_prefix("generators=20000 rss_bytes_per_generator=")
        .unwrap_or_else(|| panic!("bad last line {last:?}: {context}"));
    assert!(!bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit()), "{last:?}");
    let bytes: u64 = bytes.parse().expect("an integer");
    // Every suspended generator touched at least one stack page, and none
    // came close to its whole 128 KiB stack.
    let page = stack::page_size() as u64;
    assert!((page / 2..64 * 1024).contains(&bytes), "{bytes} bytes per generator: {context}");
}

#[test]
fn scale_example_reports_rss_per_task() {
    if under_asan("scale_example_reports_rss_per_task", ASAN_OWNS_MEMORY) {
        return;
    }
    let output = run(Command::new(example("scale")).args(["--tasks", "20000", "--virtual"]));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let context = format!("status {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", output.status);
    assert!(output.status.success(), "{context}");
    let last = stdout.lines().last().expect("some output");
    let rest = last
        .strip_prefix("tasks=20000 rss_bytes_per_task=")
        .unwrap_or_else(|| panic!("bad last line {last:?}: {context}"));
    let (bytes, elapsed) = rest
        .split_once(" elapsed_ms=")
        .unwrap_or_else(|| panic!("no elapsed_ms in {last:?}: {context}"));
    for field in [bytes, elapsed] {
        assert!(!field.is_empty() && field.bytes().all(|b| b.is_ascii_digit()), "{last:?}");
    }
    let bytes: u64 = bytes.parse().expect("an integer");
    // Every task touched at least one stack page while suspended, and none
    // came close to its whole 128 KiB stack.
    let page = stack::page_size() as u64;
    assert!((page / 2..64 * 1024).contains(&bytes), "{bytes} bytes per task: {context}");
}

/// Stack sizes are rounded up to the page size and kept exactly; a size
/// the address space cannot hold with its guard page is refused at
/// creation with `SizeOverflow`, never truncated.
#[test]
fn stack_sizes_round_to_pages_and_absurd_ones_are_refused() {
    let page = 4096;
    for (asked, kept) in
        [(100 * 1024, 100 * 1024), (100 * 1024 + 1, 101 * 1024), (1 << 30, 1 << 30)]
    {
        let g = GeneratorBuilder::new().stack_size(asked).build(|_: &Yielder<()>| ()).unwrap();
        assert_eq!(g.stack_size() % page, 0);
        assert!(g.stack_size() >= kept, "asked {asked}, got {}", g.stack_size());
        assert!(g.stack_size() < kept + page, "asked {asked}, got {}", g.stack_size());
    }
    for asked in [usize::MAX - page, usize::MAX] {
        match GeneratorBuilder::new().stack_size(asked).build(|_: &Yielder<()>| ()) {
            Err(StackError::SizeOverflow(_)) => {}
            other => panic!("{asked} bytes: {:?}", other.map(|g| g.stack_size())),
        }
    }
}
