// The offline vault from Kotlin: setup with the password twice, lock, wrong password, unlock,
// change password, wipe — each error a typed exception an app can act on.
package dev.syncvault.tests

import dev.syncvault.*
import kotlinx.coroutines.runBlocking


fun vaultTests(suite: Suite) {
    suite.test("setup refuses mismatched and weak passwords, then succeeds") {
        SyncClient(tempDir("setup").toString()).use { client ->
            runBlocking {
                assertThrows<SyncException.PasswordMismatch> {
                    client.setupOfflinePassword("contoso.example.com", UserMode.OAUTH, pw("password1"), pw("password2"))
                }
                val weak = assertThrows<SyncException.WeakPassword> {
                    client.setupOfflinePassword("contoso.example.com", UserMode.OAUTH, pw("short"), pw("short"))
                }
                assertEquals(8u, weak.minLength, "min length")
                assertThrows<SyncException.InvalidOrganizationUrl> {
                    client.setupOfflinePassword("http://contoso.example.com", UserMode.OAUTH, pw("password1"), pw("password1"))
                }
                assertEquals(false, client.accountState().configured, "nothing written yet")
                client.setupOfflinePassword("Contoso.Example.com", UserMode.OAUTH, pw("password1"), pw("password1"))
                val state = client.accountState()
                assertEquals(true, state.configured, "configured")
                assertEquals(false, state.locked, "unlocked after setup")
                assertEquals("https://contoso.example.com", state.organizationUrl, "org")
                assertEquals(UserMode.OAUTH, state.userMode, "user mode")
            }
        }
    }

    suite.test("lock, wrong password with attempts left, unlock, change, wipe") {
        val dir = tempDir("unlock").toString()
        SyncClient(dir).use { client ->
            runBlocking {
                client.setupOfflinePassword("contoso.example.com", UserMode.CREDENTIALS, pw("password1"), pw("password1"))
                client.lock()
                assertEquals(true, client.accountState().locked, "locked")
                val wrong = assertThrows<SyncException.WrongPassword> { client.unlock(pw("nope nope")) }
                assertEquals(9u, wrong.attemptsLeft, "attempts left")
            }
        }
        // A new client (app restart) still counts the failure.
        SyncClient(dir).use { client ->
            runBlocking {
                val wrong = assertThrows<SyncException.WrongPassword> { client.unlock(pw("still wrong")) }
                assertEquals(8u, wrong.attemptsLeft, "attempts left after restart")
                client.unlock(pw("password1"))
                assertEquals(0u, client.accountState().failedAttempts, "reset on success")
                client.changeOfflinePassword(pw("password1"), pw("password22"), pw("password22"))
                client.lock()
                assertThrows<SyncException.WrongPassword> { client.unlock(pw("password1")) }
                client.unlock(pw("password22"))
                client.wipe()
                assertEquals(false, client.accountState().configured, "wiped")
                assertThrows<SyncException.NotConfigured> { client.unlock(pw("password22")) }
            }
        }
    }

    suite.test("options below the KDF floor are refused") {
        assertThrows<SyncException.InvalidInput> {
            SyncClient.withOptions(tempDir("opts").toString(), ClientOptions(kdfMemoryKib = 1024u))
        }
    }
}
