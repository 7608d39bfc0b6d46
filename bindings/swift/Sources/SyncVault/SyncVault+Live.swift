// Hand-written (not generated): the live view as AsyncThrowingStreams over the generated watch
// observers, for SwiftUI (`for try await records in client.queryStream("contact")`). Each
// iteration starts one watch in Rust, gets the current value at once and a new one after every
// commit that may change it; ending the iteration (a `break`, the Task cancelled) cancels it.
// Not compiled here (no Swift toolchain): scripts/check-bindings checks the observer methods'
// signatures against the generated protocols.
import Foundation

/// Forwards a watch's deliveries (on a syncvault thread) into a newest-only stream.
private class WatchForwarder<Value>: @unchecked Sendable {
    let continuation: AsyncThrowingStream<Value, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<Value, Error>.Continuation) {
        self.continuation = continuation
    }

    func send(_ value: Value) {
        continuation.yield(value)
    }

    func onError(error: SyncError) {
        continuation.finish(throwing: error)
    }
}

private final class QueryForwarder: WatchForwarder<[SyncRecord]>, QueryObserver {
    func onRecords(records: [SyncRecord]) {
        send(records)
    }
}

private final class RecordForwarder: WatchForwarder<SyncRecord?>, RecordObserver {
    func onRecord(record: SyncRecord?) {
        send(record)
    }
}

private final class CountForwarder: WatchForwarder<UInt64>, CountObserver {
    func onCount(count: UInt64) {
        send(count)
    }
}

private final class StatusForwarder: WatchForwarder<SyncStatus>, SyncStatusObserver {
    func onStatus(status: SyncStatus) {
        send(status)
    }
}

/// Runs `start` with the stream's continuation and cancels the watch it returns when the
/// iteration ends; a `start` that throws ends the stream with that error.
private func watchStream<Value>(
    _ start: @escaping (AsyncThrowingStream<Value, Error>.Continuation) throws -> QueryWatch
) -> AsyncThrowingStream<Value, Error> {
    AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
        do {
            let watch = try start(continuation)
            continuation.onTermination = { @Sendable _ in watch.cancel() }
        } catch {
            continuation.finish(throwing: error)
        }
    }
}

extension SyncClient {
    /// The records of `entity` matching `query`, again after every change to them.
    public func queryStream(_ entity: String, query: RecordQuery = RecordQuery()) -> AsyncThrowingStream<[SyncRecord], Error> {
        watchStream { try self.watchQuery(entity: entity, query: query, observer: QueryForwarder($0)) }
    }

    /// One record (nil: not on the device, or deleted).
    public func recordStream(_ entity: String, id: String) -> AsyncThrowingStream<SyncRecord?, Error> {
        watchStream { self.watchRecord(entity: entity, id: id, observer: RecordForwarder($0)) }
    }

    /// How many records of `entity` are on the device.
    public func countStream(_ entity: String) -> AsyncThrowingStream<UInt64, Error> {
        watchStream { self.watchCount(entity: entity, observer: CountForwarder($0)) }
    }

    /// The sync status (activity, last error, what waits), for a status line or a badge.
    public func syncStatusStream() -> AsyncThrowingStream<SyncStatus, Error> {
        watchStream { self.watchSyncStatus(observer: StatusForwarder($0)) }
    }
}
