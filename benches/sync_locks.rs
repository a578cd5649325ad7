//! Lock benchmarks, each against a baseline in the same group, so the figure
//! to read is the ratio gencoro / baseline (`bash benches/ratios.sh`).
//!
//! * `lock_contended`: 10 tasks each take one lock 1,000 times, yielding to
//!   the loop once while they hold it, so every other task queues for the
//!   lock at each turn and every release hands it to a waiter: 10,000
//!   contended acquisitions, each a wait and a wake-up.
//!   - `gencoro`: `sync::Lock::acquire` and its guard, the yield is
//!     `runtime::sleep(Duration::ZERO)`; one whole `Builder::run` on the
//!     virtual clock per iteration (the loop's setup is included, as in
//!     `benches/runtime.rs`).
//!   - `tokio_mutex`: `tokio::sync::Mutex::lock` and its guard, the yield is
//!     `tokio::task::yield_now()`; one `block_on` on a current-thread runtime
//!     built once, outside the timing loop. The mutex is in an `Arc`, as
//!     `tokio::spawn` wants `Send` futures.
//!
//! Both sides count the acquisitions under the lock and check the total.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gencoro::runtime::{self, Builder, Clock};
use gencoro::sync::Lock;

const TASKS: u64 = 10;
const ACQUISITIONS_PER_TASK: u64 = 1_000;

fn lock_contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_contended");
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let total = Builder::new()
                .clock(Clock::virtual_time())
                .run(|| {
                    let lock = Lock::new();
                    let count = Rc::new(Cell::new(0u64));
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|_| {
                            let (lock, count) = (lock.clone(), count.clone());
                            runtime::spawn(move || {
                                for _ in 0..ACQUISITIONS_PER_TASK {
                                    let _held = lock.acquire()?;
                                    count.set(count.get() + 1);
                                    runtime::sleep(Duration::ZERO)?;
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    for t in &tasks {
                        t.join()?;
                    }
                    Ok(count.get())
                })
                .unwrap();
            assert_eq!(total, TASKS * ACQUISITIONS_PER_TASK);
            black_box(total)
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime");
    group.bench_function("tokio_mutex", |b| {
        b.iter(|| {
            let total = rt.block_on(async {
                let lock = Arc::new(tokio::sync::Mutex::new(0u64));
                let tasks: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let lock = lock.clone();
                        tokio::spawn(async move {
                            for _ in 0..ACQUISITIONS_PER_TASK {
                                let mut held = lock.lock().await;
                                *held += 1;
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                *lock.lock().await
            });
            assert_eq!(total, TASKS * ACQUISITIONS_PER_TASK);
            black_box(total)
        })
    });
    group.finish();
}

criterion_group!(benches, lock_contended);
criterion_main!(benches);
