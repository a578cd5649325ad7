//! Event-loop benchmarks. Each group pairs gencoro with tokio's
//! current-thread runtime doing the same work, measured in the same run, so
//! the figure to read is the ratio.
//!
//! What one iteration includes on each side:
//!
//! * gencoro: a whole `Builder::run`, which creates the loop (a `Core`, a
//!   channel for outside work), spawns `main` as a task on a pooled stack,
//!   runs it, and tears the loop down. That is how the loop is used: there
//!   is no long-lived runtime object to reuse. The loop's setup is a few
//!   allocations; stacks come from the thread's pool, warm after the first
//!   iteration.
//! * tokio: one `Runtime::block_on` on a current-thread runtime built once,
//!   outside the timing loop (building one spawns nothing, but allocates its
//!   driver and scheduler; including it would penalise tokio for setup a
//!   program pays once). `block_on`'s future plays the role of gencoro's
//!   `main` task.
//!
//! Groups:
//!
//! * `spawn_join`: spawn 1,000 no-op tasks, then join each in turn.
//! * `yield`: 1,000 yields in all, 100 in each of 10 tasks:
//!   `runtime::sleep(Duration::ZERO)` vs `tokio::task::yield_now()`.
//! * `virtual_sleep`: 10,000 tasks, task `i` sleeping `i` ms, on gencoro's
//!   virtual clock vs tokio with a paused clock (`start_paused`), which
//!   auto-advances to the next timer when the runtime is idle.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gencoro::runtime::{self, Builder, Clock};

const SPAWN_TASKS: usize = 1_000;
const YIELD_TASKS: usize = 10;
const YIELDS_PER_TASK: usize = 100;
const SLEEP_TASKS: u64 = 10_000;

fn gencoro_loop() -> Builder {
    Builder::new().clock(Clock::virtual_time())
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
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
    group.finish();
}

fn virtual_sleep(c: &mut Criterion) {
    let mut group = c.benchmark_group("virtual_sleep");
    group.sample_size(20);
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let clock = Clock::virtual_time();
            Builder::new()
                .clock(clock.clone())
                .run(|| {
                    let v: Vec<_> = (0..SLEEP_TASKS)
                        .map(|i| runtime::spawn(move || runtime::sleep(Duration::from_millis(i))))
                        .collect();
                    for t in &v {
                        t.join()?;
                    }
                    Ok(())
                })
                .unwrap();
            black_box(clock.now())
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused tokio runtime");
    group.bench_function("tokio_paused", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v: Vec<_> = (0..SLEEP_TASKS)
                    .map(|i| tokio::spawn(tokio::time::sleep(Duration::from_millis(i))))
                    .collect();
                for t in v {
                    t.await.unwrap();
                }
                black_box(tokio::time::Instant::now())
            })
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_join, yield_, virtual_sleep);
criterion_main!(benches);
