//! Threads of this process by their kernel id, read from `/proc`: so a
//! test can check that the threads it used are gone, or what CPU time one
//! used, while other tests run threads of their own in parallel. Used as
//! `#[path = "common/threads.rs"] mod threads;`.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// The kernel id of the calling thread (`/proc/thread-self` is a link to
/// `<pid>/task/<tid>`).
pub fn tid() -> u64 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    let name = link.file_name().and_then(|n| n.to_str()).expect("<pid>/task/<tid>");
    name.parse().expect("a numeric tid")
}

/// Whether the thread with kernel id `tid` still exists in this process.
pub fn thread_alive(tid: u64) -> bool {
    Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// CPU time the thread with kernel id `tid` of this process has used (the
/// first field of its `schedstat`: nanoseconds on a CPU); zero once the
/// thread is gone.
pub fn cpu_time_of(tid: u64) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) else {
        return Duration::ZERO;
    };
    let ns: u64 = stat.split_whitespace().next().and_then(|f| f.parse().ok()).expect("a number");
    Duration::from_nanos(ns)
}

/// CPU time the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    cpu_time_of(tid())
}
