//! The sync report as docs/harness.md promises it, with the process's peak memory.

use serde_json::{Value, json};
use syncvault::SyncReport;

/// Peak resident memory of this process so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    // Linux: VmHWM in /proc; elsewhere 0 (the harness's contract is for this platform).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The report object (`records_downloaded`, `records_uploaded`, `conflicts`, `seconds`,
/// `records_per_second`, `peak_rss_bytes`, and more).
pub fn report_json(r: &SyncReport) -> Value {
    json!({
        "records_downloaded": r.records_downloaded,
        "records_removed": r.records_removed,
        "records_uploaded": r.records_uploaded,
        "conflicts": r.conflicts,
        "conflicts_pending": r.conflicts_pending,
        "rejected": r.rejected,
        "sync_errors": r.sync_errors,
        "pending_changes": r.pending_changes,
        "full_resync": r.full_resync,
        "bytes_downloaded": r.bytes_downloaded,
        "bytes_uploaded": r.bytes_uploaded,
        "seconds": r.seconds,
        "records_per_second": r.records_per_second,
        "peak_rss_bytes": peak_rss_bytes(),
    })
}

/// The same for people.
pub fn report_text(r: &SyncReport) -> String {
    format!(
        "downloaded {} records, removed {} that left your scope, uploaded {}, conflicts {} ({} waiting for you), rejected {} \
         ({} sync errors waiting for you), {} changes still queued\n{:.2} s, {:.0} records/s, peak memory {:.1} MB",
        r.records_downloaded,
        r.records_removed,
        r.records_uploaded,
        r.conflicts,
        r.conflicts_pending,
        r.rejected,
        r.sync_errors,
        r.pending_changes,
        r.seconds,
        r.records_per_second,
        peak_rss_bytes() as f64 / 1e6
    )
}

/// A progress bar on stderr (hidden when stderr is not a terminal or with --json).
pub struct ProgressBar(indicatif::ProgressBar);

impl ProgressBar {
    pub fn new(visible: bool) -> Self {
        let bar = if visible {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:12} [{bar:40}] {pos}/{len} {per_sec} {elapsed}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        ProgressBar(bar)
    }
}

impl syncvault::SyncObserver for ProgressBar {
    fn on_progress(&self, p: syncvault::SyncProgress) {
        use syncvault::SyncPhase::*;
        let phase = match p.phase {
            Preparing => "preparing",
            SigningIn => "signing in",
            Uploading => "uploading",
            Downloading => "downloading",
            Finished => "done",
        };
        self.0.set_message(phase);
        if let Some(total) = p.records_estimated {
            self.0.set_length(total);
        }
        self.0.set_position(p.records_done);
        if p.phase == Finished {
            self.0.finish_and_clear();
        }
    }
}
