//! Where passwords come from: a TTY prompt without echo, or one line each from stdin with
//! `--password-stdin` (scripts, tests). Passwords are wiped from memory when dropped.

use std::io::BufRead;

use zeroize::Zeroizing;

use crate::output::HarnessError;

/// A source of passwords for one command.
pub enum Passwords {
    Stdin(std::io::StdinLock<'static>),
    Tty,
}

impl Passwords {
    pub fn new(from_stdin: bool) -> Self {
        if from_stdin {
            Passwords::Stdin(std::io::stdin().lock())
        } else {
            Passwords::Tty
        }
    }

    /// The next password; `prompt` is shown on a TTY only.
    pub fn next(&mut self, prompt: &str) -> Result<Zeroizing<Vec<u8>>, HarnessError> {
        self.next_optional(prompt)?
            .ok_or_else(|| HarnessError::Usage(format!("expected a password on stdin ({prompt})")))
    }

    /// The next password, or None when stdin has ended.
    pub fn next_optional(
        &mut self,
        prompt: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, HarnessError> {
        match self {
            Passwords::Stdin(lock) => {
                let mut line = Zeroizing::new(String::new());
                if lock.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                let trimmed = line.trim_end_matches(['\n', '\r']);
                Ok(Some(Zeroizing::new(trimmed.as_bytes().to_vec())))
            }
            Passwords::Tty => {
                let entered = Zeroizing::new(rpassword::prompt_password(format!("{prompt}: "))?);
                Ok(Some(Zeroizing::new(entered.as_bytes().to_vec())))
            }
        }
    }
}
