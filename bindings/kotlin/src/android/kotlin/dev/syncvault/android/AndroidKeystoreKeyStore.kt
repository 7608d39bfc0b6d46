// Hand-written, Android only: biometric unlock over the Android Keystore and androidx.biometric.
// Compiled by the Gradle build (not by the desktop-JVM tests, which have no android.jar).
package dev.syncvault.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import androidx.biometric.BiometricManager
import androidx.biometric.BiometricPrompt
import androidx.core.content.ContextCompat
import androidx.fragment.app.FragmentActivity
import dev.syncvault.PlatformKeyStore
import dev.syncvault.SyncException
import java.security.GeneralSecurityException
import java.security.KeyStore
import javax.crypto.AEADBadTagException
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.withContext

/**
 * Biometric unlock on Android: an AES-256-GCM key in the Android Keystore that needs a strong
 * biometric for every use and dies when biometrics are re-enrolled. syncvault's secret is
 * encrypted with it; the IV and ciphertext are what syncvault keeps in its vault header, so
 * nothing needs storing here.
 *
 * [activity] returns the activity that shows the prompt (the one in front when called).
 */
class AndroidKeystoreKeyStore(
    private val activity: () -> FragmentActivity,
    private val promptTitle: String,
    private val promptSubtitle: String? = null,
    private val negativeButtonText: String = "Use password",
) : PlatformKeyStore {

    override suspend fun sealSecret(keyAlias: String, secret: ByteArray): ByteArray {
        val cipher = keystoreCall {
            Cipher.getInstance(TRANSFORMATION).apply { init(Cipher.ENCRYPT_MODE, createKey(keyAlias)) }
        }
        val authenticated = authenticate(cipher)
        val iv = authenticated.iv
        val sealed = keystoreCall { authenticated.doFinal(secret) }
        return byteArrayOf(iv.size.toByte()) + iv + sealed
    }

    override suspend fun openSecret(keyAlias: String, sealed: ByteArray): ByteArray {
        val key = keystoreCall { loadKey(keyAlias) } ?: throw SyncException.PlatformKeyInvalidated()
        val ivLength = sealed.firstOrNull()?.toInt() ?: 0
        if (ivLength <= 0 || sealed.size < 1 + ivLength + TAG_BYTES) {
            throw SyncException.PlatformKeyInvalidated()
        }
        val cipher = keystoreCall {
            Cipher.getInstance(TRANSFORMATION).apply {
                init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BYTES * 8, sealed, 1, ivLength))
            }
        }
        val authenticated = authenticate(cipher)
        return keystoreCall { authenticated.doFinal(sealed, 1 + ivLength, sealed.size - 1 - ivLength) }
    }

    override suspend fun deleteSecret(keyAlias: String) {
        keystoreCall { keyStore().deleteEntry(keyAlias) }
    }

    private fun keyStore(): KeyStore = KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    private fun loadKey(alias: String): SecretKey? = keyStore().getKey(alias, null) as SecretKey?

    private fun createKey(alias: String): SecretKey {
        val spec = KeyGenParameterSpec.Builder(
            alias,
            KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT,
        )
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setKeySize(256)
            .setUserAuthenticationRequired(true)
            .setInvalidatedByBiometricEnrollment(true)
            .apply {
                if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                    setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                } else {
                    @Suppress("DEPRECATION")
                    setUserAuthenticationValidityDurationSeconds(-1)
                }
            }
            .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, ANDROID_KEYSTORE)
            .apply { init(spec) }
            .generateKey()
    }

    /** Shows the system prompt bound to [cipher]; the cipher can be used once it returns. */
    private suspend fun authenticate(cipher: Cipher): Cipher = withContext(Dispatchers.Main) {
        suspendCancellableCoroutine { continuation ->
            val host = activity()
            val callback = object : BiometricPrompt.AuthenticationCallback() {
                override fun onAuthenticationSucceeded(result: BiometricPrompt.AuthenticationResult) {
                    val authenticated = result.cryptoObject?.cipher
                    if (!continuation.isActive) return
                    if (authenticated != null) {
                        continuation.resume(authenticated)
                    } else {
                        continuation.resumeWithException(
                            SyncException.PlatformKeyUnavailable("no cipher after authentication"),
                        )
                    }
                }

                override fun onAuthenticationError(errorCode: Int, errString: CharSequence) {
                    if (!continuation.isActive) return
                    val error = when (errorCode) {
                        BiometricPrompt.ERROR_USER_CANCELED,
                        BiometricPrompt.ERROR_NEGATIVE_BUTTON,
                        BiometricPrompt.ERROR_CANCELED,
                        -> SyncException.PlatformKeyCancelled()
                        else -> SyncException.PlatformKeyUnavailable(errString.toString())
                    }
                    continuation.resumeWithException(error)
                }
                // onAuthenticationFailed (a finger that does not match): the prompt stays up.
            }
            val prompt = BiometricPrompt(host, ContextCompat.getMainExecutor(host), callback)
            val info = BiometricPrompt.PromptInfo.Builder()
                .setTitle(promptTitle)
                .apply { promptSubtitle?.let { setSubtitle(it) } }
                .setNegativeButtonText(negativeButtonText)
                .setAllowedAuthenticators(BiometricManager.Authenticators.BIOMETRIC_STRONG)
                .build()
            prompt.authenticate(info, BiometricPrompt.CryptoObject(cipher))
            continuation.invokeOnCancellation { prompt.cancelAuthentication() }
        }
    }

    /** Keystore failures become the typed errors syncvault understands. */
    private suspend fun <T> keystoreCall(block: () -> T): T = withContext(Dispatchers.IO) {
        try {
            block()
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw SyncException.PlatformKeyInvalidated()
        } catch (e: AEADBadTagException) {
            throw SyncException.PlatformKeyInvalidated()
        } catch (e: GeneralSecurityException) {
            // e.g. no biometric enrolled when the key is created.
            throw SyncException.PlatformKeyUnavailable(e.javaClass.simpleName + ": " + e.message)
        } catch (e: IllegalStateException) {
            // Some releases throw this from generateKey() when no biometric is enrolled.
            throw SyncException.PlatformKeyUnavailable(e.javaClass.simpleName + ": " + e.message)
        }
    }

    private companion object {
        const val ANDROID_KEYSTORE = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val TAG_BYTES = 16
    }
}
