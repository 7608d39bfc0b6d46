// The live view from the JVM through the shipped Flow layer (LiveData.kt) against the reference
// server: a query Flow fills during the first Synchronize, a local edit shows at once as pending,
// a change the server refuses shows as a sync error with its code until discarded, the status
// Flow follows, and a cancelled collector's watch stops delivering.
package dev.syncvault.tests

import dev.syncvault.*
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.util.concurrent.atomic.AtomicInteger

fun liveDataTests(suite: Suite) {
    suite.test("live data: query, record and status Flows follow a sync, an edit and a sync error") {
        // 20 accounts, 80 contacts, 100 activities, downloaded 25 a page.
        val (server, orgUrl) = startServer("--records", "200")
        try {
            val options = fastOptions.copy(syncPageSize = 25u, watchIntervalMs = 0u)
            SyncClient.withOptions(tempDir("live").toString(), options).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("ada@contoso.example")
                    val sizes = mutableListOf<Int>()
                    val contacts = launch(Dispatchers.Default) {
                        client.queryFlow("contact").collect { synchronized(sizes) { sizes += it.size } }
                    }
                    withTimeout(10_000) { client.queryFlow("contact").first { it.isEmpty() } }

                    client.synchronize(object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {}
                    })
                    withTimeout(10_000) { client.queryFlow("contact").first { it.size == 80 } }
                    withTimeout(10_000) { while (synchronized(sizes) { sizes.lastOrNull() } != 80) delay(5) }
                    val seen = synchronized(sizes) { sizes.toList() }
                    check(seen.zipWithNext().all { (a, b) -> a <= b }) { "sizes shrank: $seen" }
                    assertEquals(80uL, withTimeout(10_000) { client.countFlow("contact").first() }, "count")

                    // A local edit: pending at once, on the record Flow and in pendingChanges().
                    val id = "c000000003"
                    client.updateRecord("contact", id, mapOf("email" to FieldValue.Text("not an address")))
                    val pending = withTimeout(10_000) {
                        client.recordFlow("contact", id).first { it?.syncState is RecordSyncState.Pending }
                    }
                    assertEquals(RecordSyncState.Pending(listOf("email"), false), pending?.syncState, "state")
                    assertEquals(listOf(id), client.pendingChanges().map { it.recordId }, "pending list")

                    // The server refuses it: a sync error with its code, the person's value kept.
                    val report = client.synchronize(object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {}
                    })
                    assertEquals(1uL, report.syncErrors, "sync errors in the report")
                    val status = withTimeout(10_000) { client.syncStatusFlow().first { it.syncErrors == 1uL } }
                    assertEquals(SyncActivity.Idle, status.activity, "activity")
                    assertEquals(null, status.lastError, "no failure")
                    val error = client.syncErrors().single()
                    assertEquals(RejectionCode.INVALID_VALUE, error.code, "code")
                    val shown = withTimeout(10_000) {
                        client.recordFlow("contact", id).first { it?.syncState is RecordSyncState.Error }
                    }
                    assertEquals(FieldValue.Text("not an address"), shown?.fields?.get("email"), "kept")

                    // Discard: the server's version comes back, the status clears.
                    client.discardSyncError(error.id)
                    withTimeout(10_000) { client.syncStatusFlow().first { it.syncErrors == 0uL } }
                    val back = client.getRecord("contact", id)
                    assertEquals(RecordSyncState.Synced, back?.syncState, "synced again")

                    // A cancelled collector: its watch delivers nothing more.
                    contacts.cancel()
                    contacts.join()
                    val deliveries = AtomicInteger()
                    val counting = launch(Dispatchers.Default) {
                        client.queryFlow("contact").collect { deliveries.incrementAndGet() }
                    }
                    withTimeout(10_000) { while (deliveries.get() == 0) delay(5) }
                    counting.cancel()
                    counting.join()
                    val before = synchronized(sizes) { sizes.size } to deliveries.get()
                    client.updateRecord("contact", id, mapOf("phone" to FieldValue.Text("+1 555 0100")))
                    delay(300)
                    assertEquals(before, synchronized(sizes) { sizes.size } to deliveries.get(), "deliveries after cancel")
                }
            }
        } finally {
            server.destroy()
        }
    }
}
