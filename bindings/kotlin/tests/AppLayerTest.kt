// The whole flow as an Android app writes it, through the hand-written layer shipped in the
// package: `use {}` closes the client, Synchronize runs as a Flow (progress, then the report;
// cancelling the collector cancels the Rust side), and biometric unlock through a
// PlatformKeyStore that seals the secret the way AndroidKeystoreKeyStore does (IV + AES-GCM).
package dev.syncvault.tests

import dev.syncvault.*
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking

/** Android Keystore's shape on the JVM: AES keys held here, IV + ciphertext kept by syncvault. */
internal class JvmKeyStore : PlatformKeyStore {
    val keys = ConcurrentHashMap<String, SecretKey>()
    /** What the next "biometric prompt" ends with; null = the person authenticated. */
    @Volatile var nextPromptFails: SyncException? = null
    @Volatile var prompts = 0

    override suspend fun sealSecret(keyAlias: String, secret: ByteArray): ByteArray {
        prompt()
        val key = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        keys[keyAlias] = key
        val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, key) }
        val iv = cipher.iv
        return byteArrayOf(iv.size.toByte()) + iv + cipher.doFinal(secret)
    }

    override suspend fun openSecret(keyAlias: String, sealed: ByteArray): ByteArray {
        val key = keys[keyAlias] ?: throw SyncException.PlatformKeyInvalidated()
        prompt()
        val ivLength = sealed[0].toInt()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 1, ivLength))
        return cipher.doFinal(sealed, 1 + ivLength, sealed.size - 1 - ivLength)
    }

    override suspend fun deleteSecret(keyAlias: String) {
        keys.remove(keyAlias)
    }

    private fun prompt() {
        prompts++
        nextPromptFails?.let {
            nextPromptFails = null
            throw it
        }
    }
}

fun appLayerTests(suite: Suite) {
    suite.test("app layer: use {}, Synchronize as a Flow, biometric unlock, close") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            val dir = tempDir("app").toString()
            val keys = JvmKeyStore()
            val client = SyncClient.withOptions(dir, fastOptions.copy(syncPageSize = 250u))
            client.use {
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("ada@contoso.example")
                    val events = client.synchronizeFlow().toList()
                    val finished = events.last() as? SyncEvent.Finished ?: error("last event: ${events.last()}")
                    assertEquals(3000uL, finished.report.recordsDownloaded, "downloaded")
                    val progress = events.dropLast(1).map { (it as SyncEvent.Progress).progress }
                    check(progress.any { it.phase == SyncPhase.DOWNLOADING && it.recordsDone > 0uL }) {
                        "no download progress in $progress"
                    }

                    client.enablePlatformUnlock(pw("password1"), keys)
                    check(client.accountState().platformUnlockEnabled) { "not enabled" }
                    assertEquals(1, keys.keys.size, "keys")
                    client.lock()
                    // A locked client's Synchronize fails through the flow, typed.
                    assertThrows<SyncException.Locked> { client.synchronizeFlow().toList() }
                    keys.nextPromptFails = SyncException.PlatformKeyCancelled()
                    assertThrows<SyncException.PlatformKeyCancelled> { client.unlockWithPlatformKey(keys) }
                    check(client.accountState().locked) { "unlocked by a cancelled prompt" }
                    check(client.accountState().platformUnlockEnabled) { "a cancel must not disable it" }
                    client.unlockWithPlatformKey(keys)
                    assertEquals(3000uL, client.total(), "records after biometric unlock")
                }
            }
            // Closed deterministically: the object is gone, the files are not.
            assertThrows<IllegalStateException> { client.dataDir() }

            SyncClient.withOptions(dir, fastOptions).use { again ->
                runBlocking {
                    // Biometrics re-enrolled: the key is gone. Typed error, slot removed, password works.
                    keys.keys.clear()
                    assertThrows<SyncException.PlatformKeyInvalidated> { again.unlockWithPlatformKey(keys) }
                    check(!again.accountState().platformUnlockEnabled) { "slot kept after invalidation" }
                    assertThrows<SyncException.PlatformUnlockNotEnabled> { again.unlockWithPlatformKey(keys) }
                    again.unlock(pw("password1"))
                    assertEquals(3000uL, again.total(), "records after password unlock")
                    // Off again: the key store's key is deleted with the slot.
                    again.enablePlatformUnlock(pw("password1"), keys)
                    again.disablePlatformUnlock(keys)
                    check(keys.keys.isEmpty()) { "key left behind: ${keys.keys.keys}" }
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("a cancelled coroutine's observer hears nothing more and no further page comes") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            SyncClient.withOptions(tempDir("coroutinecancel").toString(), fastOptions.copy(syncPageSize = 100u)).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("grace@contoso.example")
                    val calls = AtomicInteger()
                    val lastDone = AtomicLong()
                    val observer = object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {
                            calls.incrementAndGet()
                            lastDone.set(progress.recordsDone.toLong())
                        }
                    }
                    val job = launch(Dispatchers.Default) { client.synchronize(observer, null) }
                    while (lastDone.get() < 300) delay(2)
                    job.cancelAndJoin()
                    val atCancel = calls.get()
                    val doneAtCancel = lastDone.get()
                    delay(1500)
                    assertEquals(atCancel, calls.get(), "progress callbacks after the cancel returned")
                    // The page being applied may finish; no further one is requested.
                    val held = client.total().toLong()
                    check(held <= doneAtCancel + 100) { "$held records held, $doneAtCancel reported at the cancel" }
                    val resumed = client.synchronize(observer, null)
                    assertEquals(3000uL, client.total(), "the next Synchronize resumes")
                    check(resumed.recordsDownloaded.toLong() >= 3000 - held) { "resumed with ${resumed.recordsDownloaded}" }
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("app layer: cancelling the Flow's collector cancels the Synchronize in Rust") {
        val (server, orgUrl) = startServer("--records", "3000")
        try {
            SyncClient.withOptions(tempDir("flowcancel").toString(), fastOptions.copy(syncPageSize = 100u)).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    client.loginWith("grace@contoso.example")
                    // `first` stops collecting at 500 records: the flow must stop the Rust side.
                    client.synchronizeFlow().first {
                        it is SyncEvent.Progress && it.progress.recordsDone >= 500uL
                    }
                    // One Synchronize at a time: this one starts once the cancelled one stopped.
                    val resumed = client.synchronizeFlow().toList().last() as SyncEvent.Finished
                    val downloaded = resumed.report.recordsDownloaded
                    // Had the first kept running, it would have fetched everything and left 0.
                    check(downloaded in 1uL until 2600uL) { "resumed with $downloaded records" }
                    assertEquals(3000uL, client.total(), "all records")
                }
            }
        } finally {
            server.destroy()
        }
    }
}
