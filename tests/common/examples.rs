//! Builds the examples a test file runs, once per test binary, with the
//! test's own profile, so the test runs the real programs; and helpers for
//! the examples that serve.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;

/// A child process killed (and waited for) when dropped, however the test
/// ends, unless it has ended already.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Reads the first line of an `echo_server` in serve mode (started with
/// its stdout piped), `listening on ADDR`, and returns `ADDR`.
pub fn listening_address(server: &mut Child) -> String {
    let mut first = String::new();
    BufReader::new(server.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut first)
        .expect("the server prints its address");
    first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("not the address line: {first:?}"))
        .to_owned()
}

/// Builds `names` (with `features` enabled) the first time it is called in
/// this test binary, and returns the path of example `name`'s binary.
/// Every call of one test binary must pass the same `names` and `features`.
pub fn example(names: &[&str], features: &[&str], name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let profile_dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary has a path");
        let profile_dir =
            exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_owned();
        let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => panic!("unexpected profile directory {profile_dir:?}"),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--profile", &profile, "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(profile_dir.parent().expect("target/"));
        if !features.is_empty() {
            build.args(["--features", &features.join(",")]);
        }
        for name in names {
            build.args(["--example", name]);
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the examples failed: {status}");
        profile_dir
    });
    profile_dir.join("examples").join(name)
}
