//! Schedule-exploration benchmark (`gencoro::testing`): gencoro and shuttle
//! run the same scenario under the same number of random schedules,
//! measured in the same group; the figure to read is the ratio
//! gencoro / shuttle (`bash benches/ratios.sh` prints it).
//!
//! The scenario: `main` spawns 10 tasks, each of which yields 10 times
//! (100 suspensions in all), and waits for all of them. One iteration runs
//! it under [`SCHEDULES`] (1,000) random schedules:
//!
//! * `gencoro`: `gencoro::testing::check_seeded(seed, 1000, scenario)`
//!   with the default [`Checker`](gencoro::testing::Checker) settings. Each
//!   schedule is a whole schedule-driven run: a fresh event loop on the
//!   virtual clock, `main` and the 10 tasks spawned on pooled stacks, a
//!   yield being `runtime::sleep(Duration::ZERO)` (gencoro's plain yield),
//!   the wait a `runtime::gather`, every pick among the ready tasks drawn
//!   from the seed's random walk, the choices recorded, no trace. The
//!   property holds, so all 1,000 schedules run. The seed is the same in
//!   every iteration.
//! * `shuttle`: `shuttle::check_random(f, 1000)` (shuttle 0.9), where `f`
//!   spawns 10 `shuttle::thread`s that each call
//!   `shuttle::thread::yield_now()` 10 times, and joins each. Shuttle's
//!   random scheduler picks the next thread at every yield; its threads are
//!   corosensei coroutines too. Its seed is drawn afresh by each call.
//!
//! Both sides run on one OS thread. The group's throughput is set to 1,000
//! elements per iteration, so criterion's `thrpt` line is the number of
//! schedules per second; by hand, schedules/s = 1000 / (time per iteration
//! in seconds), e.g. 16.7 ms per iteration is 60,000 schedules/s.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gencoro::runtime::{self, Error};
use gencoro::testing;

/// Schedules run per iteration, on each side.
const SCHEDULES: usize = 1_000;
const TASKS: usize = 10;
const YIELDS_PER_TASK: usize = 10;
/// The seed of gencoro's random walk.
const SEED: u64 = 0x5EED_000E;

/// gencoro's scenario: 10 tasks yielding 10 times each, gathered.
fn gencoro_scenario() -> Result<(), Error> {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            runtime::spawn(|| {
                for _ in 0..YIELDS_PER_TASK {
                    runtime::sleep(Duration::ZERO)?;
                }
                Ok(())
            })
        })
        .collect();
    runtime::gather(tasks)?;
    Ok(())
}

/// shuttle's scenario: the same with shuttle's threads.
fn shuttle_scenario() {
    let threads: Vec<_> = (0..TASKS)
        .map(|_| {
            shuttle::thread::spawn(|| {
                for _ in 0..YIELDS_PER_TASK {
                    shuttle::thread::yield_now();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn explore(c: &mut Criterion) {
    let mut group = c.benchmark_group("explore");
    // An iteration takes tens of milliseconds: 10 samples are enough, and
    // keep the whole bench well under a minute.
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(SCHEDULES as u64));
    group.bench_function("gencoro", |b| {
        b.iter(|| {
            let explored = testing::check_seeded(SEED, SCHEDULES, gencoro_scenario)
                .expect("the property holds under every schedule");
            assert_eq!(explored.schedules_run, SCHEDULES);
            explored
        })
    });
    group.bench_function("shuttle", |b| {
        b.iter(|| shuttle::check_random(shuttle_scenario, SCHEDULES))
    });
    group.finish();
}

criterion_group!(benches, explore);
criterion_main!(benches);
