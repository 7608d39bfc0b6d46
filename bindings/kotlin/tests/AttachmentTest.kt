// Attachments from the JVM against the reference server: a file added from a path goes up with
// the next Synchronize (progress in bytes), and a second client reads it back through
// AttachmentInputStream, byte for byte.
package dev.syncvault.tests

import dev.syncvault.*
import java.nio.file.Files
import kotlin.random.Random
import kotlinx.coroutines.runBlocking

private class Bytes : SyncObserver {
    val seen = mutableListOf<ULong>()
    override fun onProgress(progress: SyncProgress) {
        synchronized(seen) { seen += progress.bytes }
    }
}

fun attachmentTests(suite: Suite) {
    suite.test("attachments: add from a path, sync, read back on a second client") {
        val (server, orgUrl) = startServer("--records", "100")
        try {
            val content = Random(42).nextBytes(3 * 1024 * 1024 + 123)
            val photo = tempDir("photo").resolve("pump.jpg").toFile()
            photo.writeBytes(content)
            SyncClient.withOptions(tempDir("att1").toString(), fastOptions).use { one ->
                SyncClient.withOptions(tempDir("att2").toString(), fastOptions).use { two ->
                    runBlocking {
                        for (c in listOf(one, two)) {
                            c.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                            c.loginWith("ada@contoso.example")
                            c.synchronize(Bytes())
                        }
                        val account = one.queryRecords("account", RecordQuery()).first().id
                        val added = one.addAttachment("account", account, photo, "image/jpeg")
                        assertEquals(AttachmentState.LOCAL_ONLY, added.state, "state before sync")
                        assertEquals(content.size.toULong(), added.size, "size")
                        val up = Bytes()
                        val report = one.synchronize(up)
                        check(report.bytesUploaded >= content.size.toULong()) { "uploaded ${report.bytesUploaded}" }
                        check(up.seen.zipWithNext().all { (a, b) -> a <= b } && up.seen.last() >= content.size.toULong()) {
                            "upload progress in bytes: ${up.seen}"
                        }
                        assertEquals(AttachmentState.SYNCED, one.attachment(added.id).state, "state after sync")

                        val down = Bytes()
                        two.synchronize(down)
                        check(down.seen.last() >= content.size.toULong()) { "download progress: ${down.seen}" }
                        val listed = two.attachments("account", account)
                        assertEquals(listOf("pump.jpg"), listed.map { it.name }, "listed")
                        val read = two.openAttachment(added.id).use { it.readBytes() }
                        check(read.contentEquals(content)) { "read back ${read.size} bytes, differs" }
                        assertThrows<SyncException.InvalidInput> { two.readAttachment("no-such-id", 0uL, 10u) }
                        Files.delete(photo.toPath())
                    }
                }
            }
        } finally {
            server.destroy()
        }
    }
}
