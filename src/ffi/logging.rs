//! Logging for apps: `init_logging(level, sink)` forwards syncvault's tracing events to a
//! `LogSink` the app implements (os_log on iOS, logcat on Android). Events below the level are
//! dropped in Rust before they cross the FFI. Panics are logged too (uniffi still turns them into
//! errors). Nothing secret is ever logged: no password, key, token, code or callback URL.

use std::cell::Cell;
use std::fmt::Write;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn of(level: &Level) -> LogLevel {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            Level::TRACE => LogLevel::Trace,
        }
    }
}

/// Implemented by the app; called from syncvault's threads, so it must be cheap and thread-safe.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

struct Installed {
    level: LogLevel,
    sink: Arc<dyn LogSink>,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);

thread_local! {
    /// Set while a sink runs, so a sink that calls back into syncvault cannot recurse.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

fn wanted(level: &Level) -> bool {
    let installed = SINK.read().unwrap_or_else(|p| p.into_inner());
    installed
        .as_ref()
        .is_some_and(|i| LogLevel::of(level) <= i.level)
}

/// Renders an event's message and fields as one line.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

struct FfiLayer;

impl<S: Subscriber> Layer<S> for FfiLayer {
    // The level can change at run time: decide per event, not once per call site.
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        wanted(metadata.level())
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if IN_SINK.with(Cell::get) {
            return;
        }
        let sink = {
            let installed = SINK.read().unwrap_or_else(|p| p.into_inner());
            match installed.as_ref() {
                Some(i) if LogLevel::of(event.metadata().level()) <= i.level => Arc::clone(&i.sink),
                _ => return,
            }
        };
        let mut line = Line::default();
        event.record(&mut line);
        IN_SINK.with(|f| f.set(true));
        sink.log(
            LogLevel::of(event.metadata().level()),
            event.metadata().target().to_string(),
            line.0,
        );
        IN_SINK.with(|f| f.set(false));
    }
}

/// Sends syncvault's log events at `level` and above to `sink`. Call it once at start-up; calling
/// it again replaces the level and the sink. If the process already has a global tracing
/// subscriber (a Rust host app), that one keeps receiving the events and the sink gets none.
#[uniffi::export]
pub fn init_logging(level: LogLevel, sink: Arc<dyn LogSink>) {
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = Some(Installed { level, sink });
    static INSTALL: OnceLock<()> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(FfiLayer);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            return;
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!("panic{location}");
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps only this test thread's events (other unit tests log from their own threads).
    struct Collect(std::thread::ThreadId, Mutex<Vec<(LogLevel, String)>>);

    impl Collect {
        fn new() -> Arc<Self> {
            Arc::new(Collect(std::thread::current().id(), Mutex::default()))
        }
        fn seen(&self) -> Vec<(LogLevel, String)> {
            self.1.lock().unwrap().clone()
        }
    }

    impl LogSink for Collect {
        fn log(&self, level: LogLevel, _target: String, message: String) {
            if std::thread::current().id() != self.0 {
                return;
            }
            self.1.lock().unwrap().push((level, message));
            // A sink that logs itself must not recurse.
            tracing::error!("from inside the sink");
        }
    }

    #[test]
    fn filters_by_level_in_rust_and_replaces_the_sink() {
        let sink = Collect::new();
        init_logging(LogLevel::Warn, sink.clone());
        tracing::info!("dropped before the FFI");
        tracing::warn!(pages = 3, "kept");
        tracing::debug!("dropped too");
        assert_eq!(
            sink.seen(),
            vec![(LogLevel::Warn, "kept pages=3".to_string())]
        );
        let second = Collect::new();
        init_logging(LogLevel::Info, second.clone());
        tracing::info!("now kept");
        assert_eq!(second.seen().len(), 1);
        assert_eq!(sink.seen().len(), 1);
    }
}
