// The whole flow as an iOS app writes it, through the hand-written layer, against the reference
// server started as a process (`syncvault serve`; macOS only: SYNCVAULT_BIN names the harness
// binary, built with `cargo build -p syncvault-harness`). Mirrors bindings/kotlin/tests.
// Not run on the project's CI machine (no Swift toolchain there): docs/mobile.md.
import Foundation
import XCTest
@testable import SyncVault

private func pw(_ s: String) -> Data { Data(s.utf8) }

private let fastOptions = ClientOptions(kdfMemoryKib: 19456, kdfIterations: 2, kdfParallelism: 1)

/// Starts `syncvault serve` on a free port; returns the process and the organization URL.
private func startServer(_ extra: [String]) throws -> (Process, String) {
    guard let bin = ProcessInfo.processInfo.environment["SYNCVAULT_BIN"] else {
        throw XCTSkip("SYNCVAULT_BIN is not set")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: bin)
    process.arguments = ["--json", "serve", "--addr", "127.0.0.1:0"] + extra
    let stdout = Pipe()
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    var line = Data()
    while let byte = try stdout.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
        line.append(byte)
    }
    let json = try JSONSerialization.jsonObject(with: line) as? [String: Any]
    guard let url = json?["org_url"] as? String else { throw SyncVaultTestError("no org_url") }
    return (process, url)
}

private struct SyncVaultTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Refuses redirects so the provider's callback URL can be read.
private final class NoRedirects: NSObject, URLSessionTaskDelegate {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest) async -> URLRequest? { nil }
}

/// The login page, submitted headlessly as the person would in ASWebAuthenticationSession.
private final class DevLoginUi: AuthorizationUi, @unchecked Sendable {
    let email: String
    init(email: String) { self.email = email }

    func redirectUri() -> String { "dev.syncvault.app:/oauth/callback" }

    func authorize(url: String) async throws -> String {
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        let (page, _) = try await session.data(from: URL(string: url)!)
        let html = String(decoding: page, as: UTF8.self)
        guard let range = html.range(of: #"name="request_id" value="([^"]+)""#, options: .regularExpression) else {
            throw SyncVaultTestError("no login form")
        }
        let requestId = html[range].split(separator: "\"")[3]
        var form = URLComponents()
        form.queryItems = [
            URLQueryItem(name: "request_id", value: String(requestId)),
            URLQueryItem(name: "username", value: email),
            URLQueryItem(name: "password", value: "demo"),
            URLQueryItem(name: "action", value: "login"),
        ]
        var post = URLRequest(url: URL(string: String(url.split(separator: "?")[0]))!)
        post.httpMethod = "POST"
        post.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "content-type")
        post.httpBody = Data((form.percentEncodedQuery ?? "").utf8)
        let (_, response) = try await session.data(for: post)
        guard let location = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "location") else {
            throw SyncVaultTestError("no redirect")
        }
        return location
    }
}

/// The Keychain's shape without biometrics: secrets kept in memory; a prompt outcome can be set.
private final class MemoryKeyStore: PlatformKeyStore, @unchecked Sendable {
    private let lock = NSLock()
    var secrets: [String: Data] = [:]
    var nextPromptFails: SyncError?

    func sealSecret(keyAlias: String, secret: Data) async throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        secrets[keyAlias] = secret
        return Data()
    }

    func openSecret(keyAlias: String, sealed: Data) async throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        if let failure = nextPromptFails {
            nextPromptFails = nil
            throw failure
        }
        guard let secret = secrets[keyAlias] else { throw SyncError.PlatformKeyInvalidated }
        return secret
    }

    func deleteSecret(keyAlias: String) async throws {
        lock.lock()
        defer { lock.unlock() }
        secrets.removeValue(forKey: keyAlias)
    }
}

private func tempDir() -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("syncvault-swift-\(UUID().uuidString)")
    return url.path
}

private func total(_ client: SyncClient) async throws -> UInt64 {
    var sum: UInt64 = 0
    for entity in ["account", "contact", "activity"] { sum += try await client.countRecords(entity: entity) }
    return sum
}

final class SyncVaultTests: XCTestCase {
    func testWholeFlowThroughTheStreamAndBiometricUnlock() async throws {
        let (server, orgUrl) = try startServer(["--records", "3000"])
        defer { server.terminate() }
        let client = try SyncClient.withOptions(dataDir: tempDir(), options: fastOptions)
        try await client.setupOfflinePassword(
            organizationUrl: orgUrl, userMode: .oauth, password: pw("password1"), confirmation: pw("password1"))
        client.setAuthorizationUi(ui: DevLoginUi(email: "ada@contoso.example"))

        var events: [SyncEvent] = []
        for try await event in client.synchronizeStream() { events.append(event) }
        guard case .finished(let report)? = events.last else { return XCTFail("last event: \(String(describing: events.last))") }
        XCTAssertEqual(report.recordsDownloaded, 3000)
        XCTAssertTrue(events.dropLast().allSatisfy { if case .progress = $0 { return true } else { return false } })

        let keys = MemoryKeyStore()
        try await client.enablePlatformUnlock(password: pw("password1"), keyStore: keys)
        let enabled = try await client.accountState().platformUnlockEnabled
        XCTAssertTrue(enabled)
        try await client.lock()
        do {
            for try await _ in client.synchronizeStream() {}
            XCTFail("a locked client synchronized")
        } catch SyncError.Locked {}
        keys.nextPromptFails = .PlatformKeyCancelled
        do {
            try await client.unlockWithPlatformKey(keyStore: keys)
            XCTFail("unlocked by a cancelled prompt")
        } catch SyncError.PlatformKeyCancelled {}
        try await client.unlockWithPlatformKey(keyStore: keys)
        let afterUnlock = try await total(client)
        XCTAssertEqual(afterUnlock, 3000)

        keys.secrets.removeAll()
        try await client.lock()
        do {
            try await client.unlockWithPlatformKey(keyStore: keys)
            XCTFail("unlocked without a key")
        } catch SyncError.PlatformKeyInvalidated {}
        let disabled = try await client.accountState().platformUnlockEnabled
        XCTAssertFalse(disabled)
        try await client.unlock(password: pw("password1"))
    }

    func testEndingTheStreamEarlyCancelsTheSynchronizeInRust() async throws {
        let (server, orgUrl) = try startServer(["--records", "3000"])
        defer { server.terminate() }
        let options = ClientOptions(kdfMemoryKib: 19456, kdfIterations: 2, kdfParallelism: 1, syncPageSize: 100)
        let client = try SyncClient.withOptions(dataDir: tempDir(), options: options)
        try await client.setupOfflinePassword(
            organizationUrl: orgUrl, userMode: .oauth, password: pw("password1"), confirmation: pw("password1"))
        client.setAuthorizationUi(ui: DevLoginUi(email: "grace@contoso.example"))
        for try await event in client.synchronizeStream() {
            if case .progress(let p) = event, p.recordsDone >= 500 { break }
        }
        // One Synchronize at a time: this one starts once the cancelled one stopped.
        var downloaded: UInt64 = 0
        for try await event in client.synchronizeStream() {
            if case .finished(let report) = event { downloaded = report.recordsDownloaded }
        }
        XCTAssertTrue((1..<2600).contains(downloaded), "resumed with \(downloaded) records")
        let all = try await total(client)
        XCTAssertEqual(all, 3000)
    }
}
