//! The two examples of `gencoro::testing`, run as a user runs them: built
//! with the `testing` feature, their output checked line by line.

#![cfg(feature = "testing")]

use std::path::{Path, PathBuf};
use std::process::Command;

use gencoro::testing::Schedule;

#[path = "common/examples.rs"]
mod examples;

/// The binary of example `name`, built (with the other) with the
/// `testing` feature.
fn example(name: &str) -> PathBuf {
    examples::example(&["find_race", "trace_timeline"], &["testing"], name)
}

fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(example(name)).args(args).output().expect("the example runs");
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn line_after<'a>(output: &'a str, prefix: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}...` in:\n{output}"))
}

#[test]
fn find_race_finds_the_race_with_one_deviation_replays_it_and_fixes_it() {
    let output = run("find_race", &[]);
    assert_eq!(output.lines().next(), Some("under fifo: the property holds"), "{output}");
    assert_eq!(
        line_after(&output, "  the balance went below zero: "),
        "-20",
        "both withdrawals went through"
    );
    let schedule: Schedule = line_after(&output, "minimal schedule: ").parse().unwrap();
    assert_eq!(schedule.deviations(), 1, "{output}");
    assert_eq!(line_after(&output, "deviations from fifo: "), "1");
    // The timeline names both customers and shows each one's end.
    let header = line_after(&output, "    time   step |");
    assert!(header.contains("alice") && header.contains("bob"), "{header}");
    assert!(output.contains("replay: identical trace\n"), "{output}");
    let fixed = line_after(&output, "with the lock: the property held under ");
    let count: usize = fixed.split_whitespace().next().unwrap().parse().unwrap();
    assert!(count >= 1, "{fixed}");
    assert!(fixed.ends_with("schedules (at most 3 deviations)"), "{fixed}");
}

#[test]
fn trace_timeline_prints_the_crawl_and_its_timeline_and_writes_chrome_json() {
    let dir = std::env::temp_dir().join(format!("gencoro-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("crawl.json");
    let output = run("trace_timeline", &["--trace", file.to_str().unwrap()]);
    // The crawl's own lines, as CPython prints them for seed 002's gather
    // mode (tests/seeds/crawl-gather.expected, without its timing line).
    let expected = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seeds/crawl-gather.expected"),
    )
    .unwrap();
    let program: Vec<&str> = expected.lines().filter(|l| !l.starts_with("elapsed")).collect();
    let printed: Vec<&str> = output.lines().take(program.len()).collect();
    assert_eq!(printed, program);
    // One column per task; the last event is the main task's end at 4 s.
    let header = line_after(&output, "    time   step |");
    for url in ["url_1", "url_2", "url_3", "url_4"] {
        assert!(header.contains(url), "{header}");
    }
    let rows: Vec<&str> = output.lines().filter(|l| l.contains("s ") && l.contains('|')).collect();
    let last = rows.last().expect("timeline rows");
    assert!(last.trim_start().starts_with("4.000s"), "{last}");
    assert!(last.contains("done"), "{last}");
    assert!(output.ends_with(&format!("trace written to {}\n", file.display())), "{output}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().expect("traceEvents");
    let names: Vec<&str> = events
        .iter()
        .filter(|e| e["ph"] == "M")
        .filter_map(|e| e["args"]["name"].as_str())
        .collect();
    assert_eq!(names, ["Task-1", "url_1", "url_2", "url_3", "url_4"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
