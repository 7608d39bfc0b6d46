// Hand-written (not generated): Synchronize as a Kotlin Flow over the generated SyncObserver, so
// an app collects progress in a ViewModel scope and cancelling that scope stops the Rust side.
package dev.syncvault

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.job
import kotlinx.coroutines.launch

/** What a running Synchronize reports: progress while it runs, then its report once. */
sealed interface SyncEvent {
    /** The latest progress; a slow collector sees only the newest (progress is conflated). */
    data class Progress(val progress: SyncProgress) : SyncEvent

    /** The Synchronize finished; always the last event of a successful flow. */
    data class Finished(val report: SyncReport) : SyncEvent
}

/**
 * Runs [SyncClient.synchronize] when collected and emits its progress, then [SyncEvent.Finished].
 *
 * Errors end the flow with the [SyncException] (e.g. `SignInRequired`, `Network`). Cancelling the
 * collector cancels the Synchronize in Rust through a [CancelHandle] (coroutine cancellation
 * alone would leave it running): what was applied stays, and the next Synchronize resumes.
 * Progress is conflated; the final event is never dropped.
 */
fun SyncClient.synchronizeFlow(): Flow<SyncEvent> = callbackFlow {
    val cancel = CancelHandle()
    // The handle is freed once the producer and its child are done, never while in use.
    coroutineContext.job.invokeOnCompletion { cancel.close() }
    val observer = object : SyncObserver {
        override fun onProgress(progress: SyncProgress) {
            trySend(SyncEvent.Progress(progress))
        }
    }
    launch {
        try {
            send(SyncEvent.Finished(synchronize(observer, cancel)))
            channel.close()
        } catch (e: Throwable) {
            channel.close(e)
        }
    }
    awaitClose { cancel.cancel() }
}.buffer(Channel.CONFLATED)
