//! The run's trace: every step, delivery, fault and outcome as one line. Its SHA-256 is the run's
//! fingerprint: two runs of one seed print the same hash, or the simulator is not deterministic.
//! Lines hold only what the seed decides (never a random id, a token or a time).

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

/// How many of the last lines a failure shows.
const TAIL: usize = 40;

/// The trace of one run.
pub struct Trace {
    hash: Sha256,
    lines: u64,
    tail: VecDeque<String>,
    /// Print every line as it comes (`--trace`).
    pub echo: bool,
}

impl Trace {
    pub fn new(echo: bool) -> Self {
        Trace {
            hash: Sha256::new(),
            lines: 0,
            tail: VecDeque::with_capacity(TAIL),
            echo,
        }
    }

    /// Adds one line.
    pub fn line(&mut self, line: String) {
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        self.lines += 1;
        if self.echo {
            println!("  {line}");
        }
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The hash so far, as 16 hex digits.
    pub fn hash(&self) -> String {
        let digest = self.hash.clone().finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }
}
