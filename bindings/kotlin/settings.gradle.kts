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
    }
}

rootProject.name = "syncvault-android"
