//! A check-then-act race that asyncio's own order hides, found by exploring
//! schedules, shrunk to one deviation, replayed, drawn, and fixed.
//!
//! ```text
//! cargo run --example find_race --features testing
//! ```
//!
//! Alice and Bob share an account of 100 and each withdraws 60. Each checks
//! the balance, then talks to the bank (a suspension, `sleep(0)`), then
//! debits. Bob logs in first, which takes a suspension of its own, so under
//! asyncio's FIFO order Alice always debits before Bob checks, and Bob is
//! refused: the balance never goes below zero. In Python:
//!
//! ```python
//! async def withdraw(account, amount, log_in_first):
//!     if log_in_first:
//!         await asyncio.sleep(0)
//!     if account.balance >= amount:          # check
//!         await asyncio.sleep(0)             # talk to the bank
//!         account.balance -= amount          # act
//! ```
//!
//! One different order of the ready tasks lets both pass the check. The
//! example finds it with `testing::check`, prints the report (the minimal
//! schedule and its timeline), replays the schedule and compares the trace,
//! then fixes the race with a `Lock` held from the check to the debit and
//! shows the property holding under every schedule with up to three
//! deviations (`testing::check_exhaustive(3)`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use gencoro::runtime::{self, Error, TaskBuilder};
use gencoro::sync::Lock;
use gencoro::testing::{self, Checker};

/// The shared account.
struct Account {
    balance: Cell<i64>,
    /// Held from the check to the debit in the fixed version.
    lock: Lock,
}

/// Checks, talks to the bank, debits: the racy version.
fn withdraw(account: &Account, amount: i64) -> Result<bool, Error> {
    if account.balance.get() >= amount {
        runtime::sleep(Duration::ZERO)?; // talk to the bank
        account.balance.set(account.balance.get() - amount);
        return Ok(true);
    }
    Ok(false)
}

/// The same under the account's lock.
fn withdraw_locked(account: &Account, amount: i64) -> Result<bool, Error> {
    let _guard = account.lock.acquire()?;
    withdraw(account, amount)
}

/// The scenario: Alice and Bob each withdraw 60 from 100; the property is
/// that the balance never goes below zero.
fn scenario(locked: bool) -> impl Fn() -> Result<(), String> + 'static {
    move || {
        let account = Rc::new(Account { balance: Cell::new(100), lock: Lock::new() });
        let customers = [("alice", false), ("bob", true)].map(|(name, log_in_first)| {
            let account = account.clone();
            TaskBuilder::new().name(name).spawn(move || {
                if log_in_first {
                    runtime::sleep(Duration::ZERO)?; // log in
                }
                if locked { withdraw_locked(&account, 60) } else { withdraw(&account, 60) }
            })
        });
        let customers: Vec<_> =
            customers.into_iter().collect::<Result<_, _>>().map_err(|e| e.to_string())?;
        runtime::gather(customers).map_err(|e| e.to_string())?;
        match account.balance.get() {
            balance if balance >= 0 => Ok(()),
            balance => Err(format!("the balance went below zero: {balance}")),
        }
    }
}

fn main() {
    // asyncio's own order is fine...
    let fifo = testing::replay(&testing::Schedule::fifo(), scenario(false));
    println!("under fifo: {}", if fifo.passed() { "the property holds" } else { "FAILS" });

    // ...but some interleavings are not. Search with proptest (a fixed seed
    // so the example prints the same lines every time; no regression file).
    let checker = Checker::new().proptest_seed(0).persist_failures(false);
    let failure = match checker.check(scenario(false)) {
        Ok(explored) => {
            println!("no race found: {explored}");
            std::process::exit(1);
        }
        Err(failure) => failure,
    };
    print!("{failure}");

    // The schedule is all it takes to see the same run again.
    let schedule: testing::Schedule = failure.schedule().to_string().parse().unwrap();
    let again = testing::replay(&schedule, scenario(false));
    if again.trace() == failure.trace() && !again.passed() {
        println!("replay: identical trace");
    } else {
        println!("replay: DIFFERENT trace");
        std::process::exit(1);
    }

    // The fix: hold the account's lock from the check to the debit.
    match testing::check_exhaustive(3, scenario(true)) {
        Ok(explored) => println!("with the lock: {explored} (at most 3 deviations)"),
        Err(failure) => {
            println!("with the lock, still failing:\n{failure}");
            std::process::exit(1);
        }
    }
}
