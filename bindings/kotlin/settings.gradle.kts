// The Android library on its own: `gradle assembleRelease` here builds the AAR once
// scripts/build-android has put the native libraries into src/main/jniLibs.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
        // The Kotlin part of rustls-platform-verifier (build.gradle.kts).
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
        }
    }
}

rootProject.name = "syncvault-android"
