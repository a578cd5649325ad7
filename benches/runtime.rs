//! Event-loop benchmarks. Each group holds gencoro and its baselines doing
//! the same work, measured in the same run, so the figure to read is the
//! ratio gencoro / baseline (`bash benches/ratios.sh` prints them).
//!
//! What one iteration includes on each side:
//!
//! * `gencoro`: a whole `Builder::run` on the virtual clock, which creates
//!   the loop (a `Core`, a channel for outside work), spawns `main` as a
//!   task on a pooled stack, runs it, and tears the loop down. That is how
//!   the loop is used: there is no long-lived runtime object to reuse. The
//!   loop's setup is a few allocations; stacks come from the thread's pool,
//!   warm after the first iteration.
//! * `tokio` / `tokio_paused`: one `Runtime::block_on` on a current-thread
//!   runtime built once, outside the timing loop (building one spawns
//!   nothing, but allocates its driver and scheduler; including it would
//!   penalise tokio for setup a program pays once). `block_on`'s future plays
//!   the role of gencoro's `main` task.
//! * `raw_floor`: the simplest scheduler that can do the same observable work
//!   on stackful coroutines: raw corosensei, stacks (`DefaultStack`, as large
//!   as gencoro's) mapped once outside the timing loop and reused, a
//!   `VecDeque` for the run queue (a `BinaryHeap` of deadlines in the sleep
//!   groups), no cancellation, no error paths. It is the floor: what the work costs with nothing but context
//!   switches and the bookkeeping every scheduler needs.
//!
//! Groups:
//!
//! * `spawn_join`: spawn 1,000 tasks that return at once, then join each in
//!   turn.
//!   - `gencoro`: `runtime::spawn(|| Ok(()))` ×1,000, then `Task::join` each.
//!   - `tokio`: `tokio::spawn(async {})` ×1,000, then await each handle.
//!   - `raw_floor`: a task is a `Box<dyn FnOnce() -> usize>` pushed on a
//!     `VecDeque` (spawn); one coroutine on one reused stack pops and runs
//!     them in order, storing each result; then each result is read in
//!     spawn order (join). A task that never suspends needs no stack of its
//!     own, so this is the least any runtime could do.
//! * `yield`: 1,000 yields in all, 100 in each of 10 tasks, then join each.
//!   - `gencoro`: `runtime::sleep(Duration::ZERO)`.
//!   - `tokio`: `tokio::task::yield_now()`.
//!   - `raw_floor`: 10 corosensei coroutines on 10 reused stacks, driven
//!     round-robin from a `VecDeque` (resume, push back if it yielded); each
//!     returns a value, collected in spawn order.
//! * `virtual_sleep`: 10,000 tasks, task `i` sleeping `d[i]` ms, where `d`
//!   is a seeded shuffle of 0..10,000 (splitmix64 Fisher-Yates, the same
//!   permutation on both sides), then join each in spawn order. Timers are
//!   armed out of deadline order, so this measures the timer queue's general
//!   case.
//!   - `gencoro`: the virtual clock (jumps to the next deadline when idle).
//!   - `tokio_paused`: tokio with `start_paused(true)`, which auto-advances
//!     to the next timer when the runtime is idle.
//!   - `raw_floor`: 10,000 corosensei coroutines on 10,000 reused stacks;
//!     each runs to its sleep and suspends with its deadline into a
//!     `BinaryHeap` ordered by (deadline, spawn index); then each is resumed
//!     in that order and returns. Every task keeps a stack of its own while
//!     it sleeps, so this is what the work costs any stackful scheduler:
//!     two resumes per task over 10,000 stacks' worth of memory.
//! * `virtual_sleep_sorted`: the same with task `i` sleeping `i` ms, timers
//!   armed in deadline order (gencoro's timer queue keeps such runs in a
//!   FIFO). Same two members as `virtual_sleep`.
//! * `gather`: 1,000 tasks that each return their index at once, gathered
//!   into one `Vec`.
//!   - `gencoro`: `runtime::gather` of the 1,000 `Task`s.
//!   - `tokio`: `futures::future::join_all` of the 1,000 `JoinHandle`s.
//!   - `raw_floor`: as `spawn_join`'s, the results collected into a `Vec`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use gencoro::runtime::{self, Builder, Clock};
use gencoro::stack::DEFAULT_STACK_SIZE;

const SPAWN_TASKS: usize = 1_000;
const YIELD_TASKS: usize = 10;
const YIELDS_PER_TASK: usize = 100;
const SLEEP_TASKS: u64 = 10_000;
const GATHER_TASKS: usize = 1_000;
/// Seed of the `virtual_sleep` permutation.
const SLEEP_SEED: u64 = 0x5EED_0008;

fn gencoro_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
}

fn tokio_paused_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused tokio runtime")
}

fn raw_stack() -> DefaultStack {
    DefaultStack::new(DEFAULT_STACK_SIZE).expect("a corosensei stack")
}

/// The floor of `spawn_join` and `gather`: `n` tasks, each a boxed closure
/// returning its index, queued on a `VecDeque` (spawn), then run one after
/// another by one coroutine on the reused `stack`; their results, in spawn
/// order. A task that never suspends needs no stack of its own.
fn raw_run_boxed(stack: &mut Option<DefaultStack>, n: usize) -> Vec<usize> {
    let mut queue: VecDeque<Box<dyn FnOnce() -> usize>> = VecDeque::with_capacity(n);
    for i in 0..n {
        queue.push_back(Box::new(move || black_box(i)));
    }
    let mut co = Coroutine::with_stack(
        stack.take().expect("the stack is back"),
        move |_: &corosensei::Yielder<(), ()>, ()| {
            let mut results = Vec::with_capacity(queue.len());
            while let Some(task) = queue.pop_front() {
                results.push(task());
            }
            results
        },
    );
    let results = match co.resume(()) {
        CoroutineResult::Return(r) => r,
        CoroutineResult::Yield(()) => unreachable!("the tasks never suspend"),
    };
    *stack = Some(co.into_stack());
    results
}

/// One step of splitmix64 (Steele, Lea and Flood, 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 0..n in an order fixed by `seed` (Fisher-Yates on splitmix64; an index
/// below `i + 1` is the high half of a 64×64-bit product, whose bias is
/// negligible here).
fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut state = seed;
    for i in (1..v.len()).rev() {
        let j = ((u128::from(splitmix64(&mut state)) * (i as u128 + 1)) >> 64) as usize;
        v.swap(i, j);
    }
    v
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_join");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            gencoro_loop()
                .run(|| {
                    let v: Vec<_> = (0..SPAWN_TASKS).map(|_| runtime::spawn(|| Ok(()))).collect();
                    for t in &v {
                        t.join()?;
                    }
                    Ok(())
                })
                .unwrap()
        })
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v: Vec<_> = (0..SPAWN_TASKS).map(|_| tokio::spawn(async {})).collect();
                for t in v {
                    t.await.unwrap();
                }
            })
        })
    });
    let mut stack = Some(raw_stack());
    group.bench_function("raw_floor", |b| {
        b.iter(|| {
            let results = raw_run_boxed(&mut stack, SPAWN_TASKS);
            // Join: read each result in spawn order.
            let mut sum = 0;
            for r in &results {
                sum += black_box(*r);
            }
            assert_eq!(sum, SPAWN_TASKS * (SPAWN_TASKS - 1) / 2);
            sum
        })
    });
    group.finish();
}

fn yield_(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            gencoro_loop()
                .run(|| {
                    let v: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            runtime::spawn(|| {
                                for _ in 0..YIELDS_PER_TASK {
                                    runtime::sleep(Duration::ZERO)?;
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    for t in &v {
                        t.join()?;
                    }
                    Ok(())
                })
                .unwrap()
        })
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v: Vec<_> = (0..YIELD_TASKS)
                    .map(|_| {
                        tokio::spawn(async {
                            for _ in 0..YIELDS_PER_TASK {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in v {
                    t.await.unwrap();
                }
            })
        })
    });
    let mut stacks: Vec<DefaultStack> = (0..YIELD_TASKS).map(|_| raw_stack()).collect();
    group.bench_function("raw_floor", |b| {
        b.iter(|| {
            // Spawn: one coroutine per task, each on a reused stack.
            let mut queue: VecDeque<(usize, Coroutine<(), (), usize>)> =
                VecDeque::with_capacity(YIELD_TASKS);
            for id in 0..YIELD_TASKS {
                let stack = stacks.pop().expect("a free stack");
                let co =
                    Coroutine::with_stack(stack, move |y: &corosensei::Yielder<(), ()>, ()| {
                        for _ in 0..YIELDS_PER_TASK {
                            y.suspend(());
                        }
                        black_box(id)
                    });
                queue.push_back((id, co));
            }
            // Run: round-robin until every coroutine has returned.
            let mut results = [None; YIELD_TASKS];
            while let Some((id, mut co)) = queue.pop_front() {
                match co.resume(()) {
                    CoroutineResult::Yield(()) => queue.push_back((id, co)),
                    CoroutineResult::Return(r) => {
                        results[id] = Some(r);
                        stacks.push(co.into_stack());
                    }
                }
            }
            // Join: collect each result in spawn order.
            let mut sum = 0;
            for r in results {
                sum += r.expect("every task returned");
            }
            assert_eq!(sum, YIELD_TASKS * (YIELD_TASKS - 1) / 2);
            sum
        })
    });
    group.finish();
}

/// `virtual_sleep` and `virtual_sleep_sorted`: task `i` sleeps `millis[i]`.
fn sleep_group(c: &mut Criterion, name: &str, millis: Vec<u64>) {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    let expected_end = Duration::from_millis(millis.iter().copied().max().unwrap_or(0));
    let gencoro_millis: Rc<[u64]> = millis.iter().copied().collect();
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let clock = Clock::virtual_time();
            let millis = Rc::clone(&gencoro_millis);
            Builder::new()
                .clock(clock.clone())
                .run(move || {
                    let v: Vec<_> = millis
                        .iter()
                        .map(|&ms| {
                            runtime::spawn(move || runtime::sleep(Duration::from_millis(ms)))
                        })
                        .collect();
                    for t in &v {
                        t.join()?;
                    }
                    Ok(())
                })
                .unwrap();
            assert_eq!(clock.now(), expected_end);
            black_box(clock.now())
        })
    });
    let rt = tokio_paused_rt();
    group.bench_function("tokio_paused", |b| {
        b.iter(|| {
            rt.block_on(async {
                let start = tokio::time::Instant::now();
                let v: Vec<_> = millis
                    .iter()
                    .map(|&ms| tokio::spawn(tokio::time::sleep(Duration::from_millis(ms))))
                    .collect();
                for t in v {
                    t.await.unwrap();
                }
                let end = tokio::time::Instant::now();
                assert!(end - start >= expected_end);
                black_box(end)
            })
        })
    });
    let tasks = millis.len();
    let mut stacks: Vec<DefaultStack> = (0..tasks).map(|_| raw_stack()).collect();
    group.bench_function("raw_floor", |b| {
        b.iter(|| {
            // Spawn and run each task to its sleep: it suspends with its
            // deadline, and waits in a binary heap ordered by (deadline,
            // spawn index), the least a timer queue must do.
            let mut sleeping = Vec::with_capacity(tasks);
            let mut timers = BinaryHeap::with_capacity(tasks);
            for (id, &ms) in millis.iter().enumerate() {
                let stack = stacks.pop().expect("a free stack");
                let mut co =
                    Coroutine::with_stack(stack, move |y: &corosensei::Yielder<(), u64>, ()| {
                        y.suspend(ms);
                        black_box(id)
                    });
                match co.resume(()) {
                    CoroutineResult::Yield(deadline) => timers.push(Reverse((deadline, id))),
                    CoroutineResult::Return(_) => unreachable!("each task sleeps once"),
                }
                sleeping.push(Some(co));
            }
            // Run: time jumps to each deadline in turn; that task resumes
            // and returns.
            let mut results = vec![None; tasks];
            let mut now = 0;
            while let Some(Reverse((deadline, id))) = timers.pop() {
                now = deadline;
                let mut co = sleeping[id].take().expect("each task wakes once");
                match co.resume(()) {
                    CoroutineResult::Return(r) => results[id] = Some(r),
                    CoroutineResult::Yield(_) => unreachable!("a woken task returns"),
                }
                stacks.push(co.into_stack());
            }
            // Join: collect each result in spawn order.
            let mut sum = 0;
            for r in results {
                sum += r.expect("every task returned");
            }
            assert_eq!(sum, tasks * (tasks - 1) / 2);
            assert_eq!(Duration::from_millis(now), expected_end);
            black_box(sum)
        })
    });
    group.finish();
}

fn virtual_sleep(c: &mut Criterion) {
    sleep_group(c, "virtual_sleep", shuffled(SLEEP_TASKS, SLEEP_SEED));
}

fn virtual_sleep_sorted(c: &mut Criterion) {
    sleep_group(c, "virtual_sleep_sorted", (0..SLEEP_TASKS).collect());
}

fn gather(c: &mut Criterion) {
    let mut group = c.benchmark_group("gather");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let r = gencoro_loop()
                .run(|| {
                    let v: Vec<_> =
                        (0..GATHER_TASKS).map(|i| runtime::spawn(move || Ok(i))).collect();
                    runtime::gather(v)
                })
                .unwrap();
            assert_eq!(r.len(), GATHER_TASKS);
            black_box(r)
        })
    });
    let rt = tokio_rt();
    group.bench_function("tokio", |b| {
        b.iter(|| {
            let r = rt.block_on(async {
                let v: Vec<_> = (0..GATHER_TASKS).map(|i| tokio::spawn(async move { i })).collect();
                futures::future::join_all(v).await
            });
            assert_eq!(r.len(), GATHER_TASKS);
            black_box(r)
        })
    });
    let mut stack = Some(raw_stack());
    group.bench_function("raw_floor", |b| {
        b.iter(|| {
            // Gathering is collecting the results in spawn order.
            let r = raw_run_boxed(&mut stack, GATHER_TASKS);
            assert_eq!(r.len(), GATHER_TASKS);
            black_box(r)
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_join, yield_, virtual_sleep, virtual_sleep_sorted, gather);
criterion_main!(benches);
