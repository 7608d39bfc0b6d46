//! Running the harness binary as a script would: `syncvault --dir DIR ARGS...` with `stdin`
//! written to it (passwords, one per line) and stdout/stderr piped.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_syncvault");

/// Starts the harness; the caller waits for it (or kills it).
pub fn spawn(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> Child {
    let mut child = Command::new(BIN)
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child
}
