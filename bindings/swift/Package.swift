// swift-tools-version:5.9
// SyncVault for iOS and macOS: the generated Swift bindings and a small hand-written layer
// (AsyncThrowingStream progress, os_log, Keychain biometric unlock) over SyncVaultFFI, the Rust
// core as a static-library XCFramework built by scripts/build-xcframework.
import PackageDescription

let package = Package(
    name: "SyncVault",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "SyncVault", targets: ["SyncVault"]),
    ],
    targets: [
        .binaryTarget(name: "SyncVaultFFI", path: "SyncVaultFFI.xcframework"),
        .target(
            name: "SyncVault",
            dependencies: ["SyncVaultFFI"],
            path: "Sources/SyncVault",
            linkerSettings: [.linkedFramework("Security"), .linkedFramework("SystemConfiguration")]
        ),
        .testTarget(
            name: "SyncVaultTests",
            dependencies: ["SyncVault"],
            path: "Tests/SyncVaultTests"
        ),
    ]
)
