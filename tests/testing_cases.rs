#![cfg(feature = "testing")]
//! `gencoro::testing::check` honours `PROPTEST_CASES`, and
//! `Checker::cases` overrides it. The variable is read once per process, so
//! the search runs in a child process of this test binary, with the
//! variable set there.

use std::process::Command;
use std::time::Duration;

use gencoro::runtime::{self, Error};
use gencoro::testing::Checker;

const CHILD: &str = "child_reports_how_many_schedules_check_ran";
/// Set by the parent to make the child call `Checker::cases`.
const OVERRIDE: &str = "GENCORO_TESTING_CASES_OVERRIDE";

/// Three tasks yielding a few times: a scenario that always holds.
fn scenario() -> Result<(), String> {
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            runtime::spawn(|| -> Result<(), Error> {
                for _ in 0..3 {
                    runtime::sleep(Duration::ZERO)?;
                }
                Ok(())
            })
        })
        .collect();
    runtime::gather(tasks).map(drop).map_err(|e| e.to_string())
}

#[test]
#[ignore = "run by check_honours_proptest_cases, in a child process with PROPTEST_CASES set"]
fn child_reports_how_many_schedules_check_ran() {
    let mut checker = Checker::new().persist_failures(false).proptest_seed(3);
    if let Ok(cases) = std::env::var(OVERRIDE) {
        checker = checker.cases(cases.parse().unwrap());
    }
    let explored = checker.check(scenario).unwrap();
    println!("schedules_run={}", explored.schedules_run);
}

/// Runs the child with `PROPTEST_CASES=cases` (and the override, if any);
/// how many schedules its search ran.
fn schedules_run_in_child(cases: u32, override_cases: Option<u32>) -> usize {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", CHILD, "--ignored", "--nocapture", "--test-threads=1"])
        .env("PROPTEST_CASES", cases.to_string())
        .env_remove(OVERRIDE);
    if let Some(n) = override_cases {
        command.env(OVERRIDE, n.to_string());
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
        .lines()
        .find_map(|l| l.split_once("schedules_run=").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("the child printed no count:\n{stdout}"))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap()
}

#[test]
fn check_honours_proptest_cases() {
    // The FIFO run, then one schedule per case.
    assert_eq!(schedules_run_in_child(3, None), 4);
    assert_eq!(schedules_run_in_child(17, None), 18);
}

#[test]
fn checker_cases_overrides_proptest_cases() {
    assert_eq!(schedules_run_in_child(3, Some(9)), 10);
}
