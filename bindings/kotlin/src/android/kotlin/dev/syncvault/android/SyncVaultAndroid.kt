// Hand-written, Android only: the one call an Android app makes before using syncvault.
package dev.syncvault.android

import android.content.Context

/**
 * On Android, syncvault checks server certificates with the platform's verifier (the system
 * trust store, user-installed and MDM CAs, revocation), which runs in the JVM: it needs the
 * application Context once per process. Call [init] in `Application.onCreate`, before any
 * `SyncClient`; without it every HTTPS request fails.
 */
object SyncVaultAndroid {
    @Volatile
    private var initialized = false

    /** Idempotent and thread-safe; keeps only the application context. */
    fun init(context: Context) {
        synchronized(this) {
            if (initialized) return
            // JNA loads the same library for the bindings; this makes its JNI entry visible.
            System.loadLibrary("syncvault")
            initPlatformVerifier(context.applicationContext)
            initialized = true
        }
    }

    @JvmStatic
    private external fun initPlatformVerifier(context: Context)
}
