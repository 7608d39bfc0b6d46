// A full Synchronize from the JVM against the reference server (`syncvault serve --records N`):
// the login page through a Kotlin AuthorizationUi, progress callbacks, the local data API, an
// offline edit going up, and a cancel in the middle of the download followed by a resume.
package dev.syncvault.tests

import dev.syncvault.*
import kotlinx.coroutines.runBlocking

private class Recorder(val onEach: (SyncProgress) -> Unit = {}) : SyncObserver {
    val seen = mutableListOf<SyncProgress>()
    override fun onProgress(progress: SyncProgress) {
        synchronized(seen) { seen += progress }
        onEach(progress)
    }
}

private class Lines : LogSink {
    val lines = mutableListOf<Triple<LogLevel, String, String>>()
    override fun log(level: LogLevel, target: String, message: String) {
        synchronized(lines) { lines += Triple(level, target, message) }
    }
}

internal fun SyncClient.loginWith(email: String) = setAuthorizationUi(object : AuthorizationUi {
    override fun redirectUri() = "dev.syncvault.app:/oauth/callback"
    override suspend fun authorize(url: String): String = devLogin(url, email)
})

internal suspend fun SyncClient.total(): ULong =
    listOf("account", "contact", "activity").sumOf { countRecords(it) }

fun syncTests(suite: Suite) {
    suite.test("synchronize: progress, local data, an offline edit goes up") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            SyncClient.withOptions(tempDir("sync").toString(), fastOptions).use { client ->
                runBlocking {
                    val logs = Lines()
                    initLogging(LogLevel.INFO, logs)
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("ada@contoso.example")
                    val recorder = Recorder()
                    val report = client.synchronize(recorder)
                    assertEquals(3000uL, report.recordsDownloaded, "downloaded")
                    assertEquals(3000uL, client.total(), "records on the device")
                    val downloads = recorder.seen.filter { it.phase == SyncPhase.DOWNLOADING && it.recordsDone > 0uL }
                    check(downloads.isNotEmpty()) { "no download progress" }
                    assertEquals(3000uL, downloads.last().recordsDone, "last progress")
                    assertEquals(3000uL, downloads.first().recordsEstimated, "estimate")
                    assertEquals(SyncPhase.FINISHED, recorder.seen.last().phase, "last phase")
                    // The app's LogSink got syncvault's events, filtered in Rust, with no secret.
                    val logged = synchronized(logs.lines) { logs.lines.toList() }
                    check(logged.any { it.third.contains("synchronize finished") }) { "log: $logged" }
                    check(logged.any { it.third.contains("signed in") }) { "log: $logged" }
                    check(logged.all { it.first <= LogLevel.INFO }) { "levels: ${logged.map { it.first }}" }
                    check(logged.none { (_, _, m) -> m.contains("eyJ") || m.contains("password1") || m.contains("code=") }) {
                        "a secret in the log: $logged"
                    }
                    initLogging(LogLevel.ERROR, logs)

                    val found = client.searchRecords("contact", "hopper", 20u)
                    check(found.isNotEmpty()) { "search found nothing" }
                    val contact = found.first()
                    val title = FieldValue.Text("Edited on the JVM")
                    client.updateRecord("contact", contact.id, mapOf("job_title" to title))
                    assertEquals(1uL, client.pendingChangeCount(), "queued")
                    assertEquals(title, client.getRecord("contact", contact.id)?.fields?.get("job_title"), "local edit")
                    val second = client.synchronize(Recorder())
                    assertEquals(1uL, second.recordsUploaded, "uploaded")
                    assertEquals(0uL, client.pendingChangeCount(), "outbox empty")
                    assertEquals(contact.version + 1, client.getRecord("contact", contact.id)?.version, "new version")
                    assertThrows<SyncException.InvalidInput> {
                        client.updateRecord("contact", contact.id, mapOf("no_such_field" to title))
                    }
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("synchronize: cancel in the middle, then resume") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            val options = fastOptions.copy(syncPageSize = 100u)
            SyncClient.withOptions(tempDir("cancel").toString(), options).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("grace@contoso.example")
                    val cancel = CancelHandle()
                    val recorder = Recorder { p -> if (p.recordsDone >= 500uL) cancel.cancel() }
                    assertThrows<SyncException.Cancelled> { client.synchronize(recorder, cancel) }
                    val kept = client.total()
                    check(kept in 500uL until 3000uL) { "kept $kept" }
                    val report = client.synchronize(Recorder())
                    assertEquals(3000uL - kept, report.recordsDownloaded, "resumed")
                    assertEquals(3000uL, client.total(), "all records")
                }
            }
        } finally {
            server.destroy()
        }
    }
}
