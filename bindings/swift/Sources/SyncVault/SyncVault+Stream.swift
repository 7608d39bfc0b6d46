// Hand-written (not generated): Synchronize as an AsyncThrowingStream over the generated
// SyncObserver, so SwiftUI code iterates progress with `for try await`.
import Foundation

/// What a running Synchronize reports: progress while it runs, then its report once.
public enum SyncEvent: Sendable {
    /// The latest progress; a slow consumer sees only the newest.
    case progress(SyncProgress)
    /// The Synchronize finished; always the last element of a stream that did not throw.
    case finished(SyncReport)
}

/// Forwards the generated observer's callbacks (on a syncvault thread) into the stream.
private final class StreamObserver: SyncObserver, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<SyncEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<SyncEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: SyncProgress) {
        continuation.yield(.progress(progress))
    }
}

extension SyncClient {
    /// Runs `synchronize` and streams its progress, then `.finished(report)`.
    ///
    /// Errors end the stream with the `SyncError`. Ending the iteration early (a `break`, or the
    /// consuming Task being cancelled) cancels the Synchronize in Rust through a `CancelHandle`:
    /// Swift Task cancellation alone does not reach Rust. What was applied stays, and the next
    /// Synchronize resumes.
    public func synchronizeStream() -> AsyncThrowingStream<SyncEvent, Error> {
        // Newest-only: progress is a snapshot; `.finished` is yielded last so it is never dropped.
        AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let cancel = CancelHandle()
            let observer = StreamObserver(continuation)
            let task = Task {
                do {
                    let report = try await self.synchronize(observer: observer, cancel: cancel)
                    continuation.yield(.finished(report))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { @Sendable _ in
                cancel.cancel()
                task.cancel()
            }
        }
    }
}
