//! Printing results and errors the way docs/harness.md promises: human text, or JSON with --json.

use serde_json::{Value, json};
use syncvault::SyncError;

/// Why a harness command failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Bad command-line use (exit status 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl HarnessError {
    /// Exit status: 2 for usage errors, 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            HarnessError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// `{"error": {"kind": ..., "message": ..., ...case fields}}`.
    pub fn to_json(&self) -> Value {
        let message = self.to_string();
        let mut error = match self {
            HarnessError::Sync(err) => sync_error_fields(err),
            HarnessError::Usage(_) => json!({"kind": "Usage"}),
            HarnessError::Io(_) => json!({"kind": "Storage"}),
        };
        error["message"] = Value::String(message);
        json!({ "error": error })
    }
}

/// The case's stable name (`SyncError::kind`) and the fields an app would act on.
fn sync_error_fields(err: &SyncError) -> Value {
    use SyncError::*;
    let mut error = json!({"kind": err.kind()});
    match err {
        WrongPassword { attempts_left } => error["attempts_left"] = json!(attempts_left),
        WeakPassword { min_length } => error["min_length"] = json!(min_length),
        InvalidOrganizationUrl { problem, .. } => error["problem"] = json!(format!("{problem:?}")),
        UserModeNotAllowed { mode } => error["mode"] = json!(mode),
        Server { status, .. } => error["status"] = json!(status),
        _ => {}
    }
    error
}

/// Reports a failure on stderr in the chosen format.
pub fn print_error(err: &HarnessError, json_mode: bool) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = if json_mode {
        writeln!(stderr, "{}", err.to_json())
    } else {
        writeln!(stderr, "error: {err}")
    };
}

/// Prints command results: a JSON value on stdout with --json, else human text.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// A closed stdout (a script that stopped reading) is not an error worth a panic.
    pub fn result(&self, value: &Value, text: &str) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(stdout, "{value}")
        } else {
            writeln!(stdout, "{text}")
        };
        let _ = stdout.flush();
    }
}
