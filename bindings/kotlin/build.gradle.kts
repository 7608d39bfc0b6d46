// dev.syncvault:syncvault — the Android library (AAR): the generated Kotlin bindings, the
// hand-written layer (Flow, logcat, Android Keystore), and libsyncvault.so for arm64-v8a,
// armeabi-v7a and x86_64 built by scripts/build-android with cargo-ndk.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    `maven-publish`
}

group = "dev.syncvault"
version = "0.1.0"

android {
    namespace = "dev.syncvault"
    compileSdk = 35

    defaultConfig {
        // setInvalidatedByBiometricEnrollment needs API 24.
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        // Generated bindings + the shared hand-written layer, and the Android-only sources.
        java.srcDirs("src/main/kotlin", "src/android/kotlin")
        jniLibs.srcDirs("src/main/jniLibs")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

// rustls-platform-verifier (the certificate verifier reqwest uses on Android) has a Kotlin part
// that must match the Rust crate's version exactly: read it from the workspace's Cargo.lock.
// (Its Maven repository is declared in settings.gradle.kts.)
val rustlsPlatformVerifierVersion: String = rootDir.resolve("../../Cargo.lock").readLines().let { lines ->
    val at = lines.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
    check(at >= 0) { "rustls-platform-verifier-android not found in Cargo.lock" }
    lines[at + 1].substringAfter('"').substringBefore('"')
}

dependencies {
    implementation("rustls:rustls-platform-verifier:$rustlsPlatformVerifierVersion")
    // The generated code's public types use JNA (Pointer) and coroutines (suspend, Flow).
    api("net.java.dev.jna:jna:5.15.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.biometric:biometric:1.1.0")
    implementation("androidx.fragment:fragment-ktx:1.8.5")
    implementation("androidx.core:core-ktx:1.13.1")
}

publishing {
    publications {
        register<MavenPublication>("release") {
            artifactId = "syncvault"
            afterEvaluate { from(components["release"]) }
        }
    }
}
