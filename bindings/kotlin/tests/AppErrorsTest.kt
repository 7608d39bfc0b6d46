// What an app written from docs/mobile.md meets: readable exception messages, a login page that
// throws, the account state while locked, and close() during a Synchronize.
package dev.syncvault.tests

import dev.syncvault.*
import java.io.IOException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit

fun appErrorTests(suite: Suite) {
    suite.test("every exception has a readable message") {
        assertEquals("the passwords do not match", SyncException.PasswordMismatch().message, "mismatch")
        assertEquals(
            "wrong offline password (9 attempts left)",
            SyncException.WrongPassword(9u).message,
            "wrong password",
        )
        val e = assertThrows<SyncException.InvalidOrganizationUrl> { normalizeOrganizationUrl("http://contoso.example.com") }
        check(e.message!!.startsWith("invalid organization URL: ")) { "message: ${e.message}" }
    }

    suite.test("a login page that throws is AuthorizationUiFailed, and a retry simply works") {
        val (server, orgUrl) = startServer()
        try {
            SyncClient.withOptions(tempDir("ui-fails").toString(), fastOptions).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.setAuthorizationUi(object : AuthorizationUi {
                        override fun redirectUri() = "dev.syncvault.app:/oauth/callback"
                        override suspend fun authorize(url: String): String = throw IOException("no browser")
                    })
                    assertThrows<SyncException.AuthorizationUiFailed> { client.synchronize(object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {}
                    }) }
                    client.loginWith("ada@contoso.example")
                    val report = client.synchronize(object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {}
                    })
                    assertEquals(1000uL, report.recordsDownloaded, "downloaded")
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("while locked, pending changes are unknown, not zero") {
        SyncClient.withOptions(tempDir("locked").toString(), fastOptions).use { client ->
            runBlocking {
                client.setupOfflinePassword("https://contoso.example.com", UserMode.OAUTH, pw("password1"), pw("password1"))
                assertEquals(0uL, client.accountState().pendingChanges, "unlocked")
                client.lock()
                val state = client.accountState()
                assertEquals(true, state.locked, "locked")
                assertEquals(null, state.pendingChanges, "unknown while locked")
            }
        }
    }

    suite.test("close() cancels a Synchronize in progress; the next client resumes") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            val dir = tempDir("close").toString()
            val options = fastOptions.copy(syncPageSize = 50u)
            val client = SyncClient.withOptions(dir, options)
            val downloading = CountDownLatch(1)
            runBlocking {
                client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                client.loginWith("ada@contoso.example")
                val run = async(Dispatchers.IO) {
                    runCatching {
                        client.synchronize(object : SyncObserver {
                            override fun onProgress(progress: SyncProgress) {
                                if (progress.phase == SyncPhase.DOWNLOADING && progress.recordsDone >= 100uL) downloading.countDown()
                            }
                        })
                    }
                }
                check(withContext(Dispatchers.IO) { downloading.await(60, TimeUnit.SECONDS) }) { "no download" }
                client.close()
                val outcome = run.await()
                check(outcome.exceptionOrNull() is SyncException.Cancelled) { "outcome: $outcome" }
            }
            SyncClient.withOptions(dir, fastOptions).use { again ->
                runBlocking {
                    again.unlock(pw("password1"))
                    val kept = again.total()
                    check(kept in 100uL until 3000uL) { "kept $kept" }
                    val report = again.synchronize(object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {}
                    })
                    assertEquals(3000uL - kept, report.recordsDownloaded, "resumed")
                }
            }
        } finally {
            server.destroy()
        }
    }
}
