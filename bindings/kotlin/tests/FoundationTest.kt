// The exported foundation slice, called from Kotlin exactly as an Android app would.
package dev.syncvault.tests

import dev.syncvault.*
import java.util.Collections
import kotlinx.coroutines.runBlocking

fun foundationTests(suite: Suite) {
    suite.test("normalize_organization_url canonicalizes") {
        assertEquals("https://contoso.example.com", normalizeOrganizationUrl("  Contoso.Example.COM/ "))
        assertEquals("http://127.0.0.1:8080", normalizeOrganizationUrl("http://127.0.0.1:8080/"))
    }

    suite.test("an insecure URL is a typed exception with the problem") {
        val e = assertThrows<SyncException.InvalidOrganizationUrl> {
            normalizeOrganizationUrl("http://contoso.example.com")
        }
        assertEquals(UrlProblem.INSECURE_SCHEME, e.problem, "problem")
        check(e.reason.contains("loopback")) { "reason: ${e.reason}" }
    }

    suite.test("an empty data directory is InvalidInput") {
        assertThrows<SyncException.InvalidInput> { SyncClient("  ") }
    }

    suite.test("async account_state crosses the FFI on tokio") {
        val dir = tempDir("state")
        SyncClient(dir.toString()).use { client ->
            val state = runBlocking { client.accountState() }
            assertEquals(false, state.configured, "configured")
            assertEquals(dir.toString(), client.dataDir(), "data dir")
        }
    }

    suite.test("a Kotlin SyncObserver is called from Rust, then a typed error") {
        val seen = Collections.synchronizedList(mutableListOf<SyncProgress>())
        val observer = object : SyncObserver {
            override fun onProgress(progress: SyncProgress) {
                seen += progress
            }
        }
        SyncClient(tempDir("sync").toString()).use { client ->
            assertThrows<SyncException.NotConfigured> {
                runBlocking { client.synchronize(observer) }
            }
        }
        check(seen.isNotEmpty()) { "the observer was never called" }
        assertEquals(SyncPhase.PREPARING, seen.first().phase, "first phase")
    }

    suite.test("library version is reported") {
        check(syncvaultVersion().matches(Regex("""\d+\.\d+\.\d+.*"""))) { syncvaultVersion() }
    }
}
