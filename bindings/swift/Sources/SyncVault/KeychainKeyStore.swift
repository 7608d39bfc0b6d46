// Hand-written (not generated): biometric unlock over the Keychain.
import Foundation
import LocalAuthentication
import Security

/// Biometric unlock on iOS and macOS. The secret syncvault hands over is kept as a Keychain item
/// that only the current Face ID / Touch ID enrollment can read, on this device only, and only
/// while a passcode is set. Re-enrolling biometrics makes the item unreadable: syncvault then
/// turns biometric unlock off (`PlatformKeyInvalidated`) and the person uses the password.
/// The Keychain keeps the secret, so there is nothing for syncvault to keep (empty `Data`).
public final class KeychainKeyStore: PlatformKeyStore, @unchecked Sendable {
    private let service: String
    private let reason: String

    /// `reason` is the text of the biometric prompt ("Unlock your offline data").
    public init(reason: String, service: String = "dev.syncvault.platform-unlock") {
        self.reason = reason
        self.service = service
    }

    public func sealSecret(keyAlias: String, secret: Data) async throws -> Data {
        var cfError: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, .biometryCurrentSet, &cfError
        ) else {
            let detail = cfError.map { $0.takeRetainedValue().localizedDescription } ?? "unknown"
            throw SyncError.PlatformKeyUnavailable(reason: "no biometric access control: \(detail)")
        }
        SecItemDelete(query(keyAlias) as CFDictionary)
        var add = query(keyAlias)
        add[kSecValueData as String] = secret
        add[kSecAttrAccessControl as String] = access
        let status = SecItemAdd(add as CFDictionary, nil)
        guard status == errSecSuccess else { throw unavailable(status) }
        return Data()
    }

    public func openSecret(keyAlias: String, sealed: Data) async throws -> Data {
        let context = LAContext()
        context.localizedReason = reason
        var read = query(keyAlias)
        read[kSecReturnData as String] = true
        read[kSecMatchLimit as String] = kSecMatchLimitOne
        read[kSecUseAuthenticationContext as String] = context
        // SecItemCopyMatching blocks while the biometric prompt is up: never on the main thread.
        let (status, item) = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                var result: CFTypeRef?
                let status = SecItemCopyMatching(read as CFDictionary, &result)
                continuation.resume(returning: (status, result))
            }
        }
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else { throw SyncError.PlatformKeyInvalidated }
            return data
        case errSecUserCanceled:
            throw SyncError.PlatformKeyCancelled
        case errSecItemNotFound:
            throw SyncError.PlatformKeyInvalidated
        default:
            throw unavailable(status)
        }
    }

    public func deleteSecret(keyAlias: String) async throws {
        let status = SecItemDelete(query(keyAlias) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else { throw unavailable(status) }
    }

    private func query(_ keyAlias: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: keyAlias,
            // The iOS-style keychain on macOS too (required for access control flags).
            kSecUseDataProtectionKeychain as String: true,
        ]
    }

    private func unavailable(_ status: OSStatus) -> SyncError {
        let text = SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
        return SyncError.PlatformKeyUnavailable(reason: text)
    }
}
