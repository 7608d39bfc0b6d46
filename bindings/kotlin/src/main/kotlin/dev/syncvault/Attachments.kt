// Hand-written (not generated): attachments as Java I/O. The content stays encrypted in
// syncvault's files; these read it through `readAttachment` in pieces, so a large video is never
// whole in memory.
package dev.syncvault

import java.io.File
import java.io.InputStream
import kotlinx.coroutines.runBlocking

/**
 * A stream over an attachment's decrypted content, read [chunkSize] bytes at a time. Reads block
 * the calling thread (InputStream's contract): use it on `Dispatchers.IO`, never the main thread.
 * A tampered file fails a read with [SyncException.Corrupted]; content not on the device with
 * [SyncException.NotDownloaded] (call `downloadAttachment` first).
 */
class AttachmentInputStream(
    private val client: SyncClient,
    private val id: String,
    private val chunkSize: Int = 1 shl 20,
) : InputStream() {
    private var offset = 0uL
    private var buffer = ByteArray(0)
    private var at = 0
    private var ended = false

    private fun fill(): Boolean {
        if (at < buffer.size) return true
        if (ended) return false
        buffer = runBlocking { client.readAttachment(id, offset, chunkSize.toUInt()) }
        at = 0
        offset += buffer.size.toULong()
        if (buffer.isEmpty()) ended = true
        return buffer.isNotEmpty()
    }

    override fun read(): Int = if (fill()) buffer[at++].toInt() and 0xff else -1

    override fun read(b: ByteArray, off: Int, len: Int): Int {
        if (len == 0) return 0
        if (!fill()) return -1
        val n = minOf(len, buffer.size - at)
        System.arraycopy(buffer, at, b, off, n)
        at += n
        return n
    }

    override fun available(): Int = buffer.size - at
}

/** The attachment's content as an [InputStream] (see [AttachmentInputStream]). */
fun SyncClient.openAttachment(id: String): InputStream = AttachmentInputStream(this, id)

/**
 * Attaches [file] (a photo the camera wrote) to a record: syncvault reads it in pieces and keeps
 * its own encrypted copy, so the app may delete [file] afterwards.
 */
suspend fun SyncClient.addAttachment(
    entity: String,
    recordId: String,
    file: File,
    mime: String,
    name: String = file.name,
): Attachment = addAttachmentFromPath(entity, recordId, name, mime, file.absolutePath)
