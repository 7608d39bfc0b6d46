// Hand-written (not generated): syncvault's log events into the unified log (os_log).
import os

/// Forwards syncvault's events to `Logger(subsystem:category:)`. The level filter runs in Rust
/// before anything crosses the FFI. syncvault never logs secrets, so messages are marked public
/// (otherwise the unified log redacts every dynamic string on a device).
public final class OSLogSink: LogSink, @unchecked Sendable {
    private let logger: Logger

    public init(subsystem: String = "dev.syncvault", category: String = "syncvault") {
        logger = Logger(subsystem: subsystem, category: category)
    }

    public func log(level: LogLevel, target: String, message: String) {
        switch level {
        case .error: logger.error("\(target, privacy: .public): \(message, privacy: .public)")
        case .warn: logger.warning("\(target, privacy: .public): \(message, privacy: .public)")
        case .info: logger.info("\(target, privacy: .public): \(message, privacy: .public)")
        case .debug: logger.debug("\(target, privacy: .public): \(message, privacy: .public)")
        case .trace: logger.trace("\(target, privacy: .public): \(message, privacy: .public)")
        }
    }

    /// Call once at launch; calling again replaces the level and the sink.
    public static func install(level: LogLevel = .info, subsystem: String = "dev.syncvault") {
        initLogging(level: level, sink: OSLogSink(subsystem: subsystem))
    }
}
