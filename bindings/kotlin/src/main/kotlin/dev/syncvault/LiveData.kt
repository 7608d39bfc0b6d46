// Hand-written (not generated): the live view as Kotlin Flows over the generated watch
// observers. Collect them in a ViewModel scope (e.g. `stateIn`): each collector starts one watch
// in Rust, gets the current value at once and a new one after every commit that may change it,
// and cancelling the collector cancels and frees the watch.
package dev.syncvault

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/**
 * Bridges one watch to a conflated Flow: deliveries come from a syncvault worker thread, a slow
 * collector sees the newest value only, and the watch is cancelled and closed when the collector
 * goes. A failed read ends the flow with its [SyncException].
 */
private fun <T> watchFlow(start: (send: (T) -> Unit, fail: (SyncException) -> Unit) -> QueryWatch): Flow<T> =
    callbackFlow {
        val watch = start({ trySend(it) }, { close(it) })
        awaitClose {
            watch.cancel()
            watch.close()
        }
    }.buffer(Channel.CONFLATED)

/** The records of [entity] matching [query], again after every change to them. */
fun SyncClient.queryFlow(entity: String, query: RecordQuery = RecordQuery()): Flow<List<SyncRecord>> =
    watchFlow { send, fail ->
        watchQuery(entity, query, object : QueryObserver {
            override fun onRecords(records: List<SyncRecord>) = send(records)
            override fun onError(error: SyncException) = fail(error)
        })
    }

/** One record (null: not on the device, or deleted). */
fun SyncClient.recordFlow(entity: String, id: String): Flow<SyncRecord?> =
    watchFlow { send, fail ->
        watchRecord(entity, id, object : RecordObserver {
            override fun onRecord(record: SyncRecord?) = send(record)
            override fun onError(error: SyncException) = fail(error)
        })
    }

/** How many records of [entity] are on the device. */
fun SyncClient.countFlow(entity: String): Flow<ULong> =
    watchFlow { send, fail ->
        watchCount(entity, object : CountObserver {
            override fun onCount(count: ULong) = send(count)
            override fun onError(error: SyncException) = fail(error)
        })
    }

/** The sync status (activity, last error, what waits), for a status line or a badge. */
fun SyncClient.syncStatusFlow(): Flow<SyncStatus> =
    watchFlow { send, _ ->
        watchSyncStatus(object : SyncStatusObserver {
            override fun onStatus(status: SyncStatus) = send(status)
        })
    }
