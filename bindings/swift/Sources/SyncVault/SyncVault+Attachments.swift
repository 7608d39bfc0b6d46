// Hand-written (not generated): attachments with Foundation types. The content stays encrypted in
// syncvault's files; `attachmentData` reads it in pieces, `exportAttachment(id:to:)` writes an
// explicit plaintext copy where the app asks (to share it).
import Foundation

extension SyncClient {
    /// Attaches the file at `fileURL` (a photo from the camera) to a record; syncvault keeps its
    /// own encrypted copy, so the app may delete its file afterwards.
    public func addAttachment(
        entity: String, recordId: String, fileURL: URL, mime: String, name: String? = nil
    ) async throws -> Attachment {
        try await addAttachmentFromPath(
            entity: entity, recordId: recordId, name: name ?? fileURL.lastPathComponent,
            mime: mime, path: fileURL.path)
    }

    /// Attaches `data` (a signature drawn on screen) to a record.
    public func addAttachment(
        entity: String, recordId: String, data: Data, name: String, mime: String
    ) async throws -> Attachment {
        try await addAttachment(
            entity: entity, recordId: recordId, name: name, mime: mime, bytes: data)
    }

    /// The whole content, read 1 MiB at a time (`SyncError.NotDownloaded` when it is not on the
    /// device: call `downloadAttachment` first; `SyncError.Corrupted` when its file was tampered
    /// with).
    public func attachmentData(id: String) async throws -> Data {
        var data = Data()
        while true {
            let piece = try await readAttachment(
                id: id, offset: UInt64(data.count), length: 1 << 20)
            if piece.isEmpty { return data }
            data.append(piece)
        }
    }

    /// Writes the decrypted content to `url` (a plaintext copy syncvault does not track).
    public func exportAttachment(id: String, to url: URL) async throws {
        try await exportAttachment(id: id, path: url.path)
    }
}
