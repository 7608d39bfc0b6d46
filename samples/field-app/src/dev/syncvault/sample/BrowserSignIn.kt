// Sign-in for a desktop app: the provider's login page in the system browser and the redirect
// back to the app on a loopback listener (RFC 8252), through the core's AuthorizationUi. On
// Android the same interface opens a Custom Tab and receives the app-scheme redirect instead.
package dev.syncvault.sample

import dev.syncvault.AuthorizationUi
import dev.syncvault.LoopbackRedirect
import dev.syncvault.SyncException
import java.awt.Desktop
import java.net.URI
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.withContext

/** How long the app waits for the person at the provider's page. */
private const val LOGIN_WAIT_SECONDS = 600u

/** Opens [url] in the system browser (or the test's stand-in for one). */
fun interface Browser {
    fun open(url: String)

    companion object {
        /** The desktop's browser: java.awt.Desktop, else xdg-open. */
        val system = Browser { url ->
            if (Desktop.isDesktopSupported() && Desktop.getDesktop().isSupported(Desktop.Action.BROWSE)) {
                Desktop.getDesktop().browse(URI(url))
            } else {
                ProcessBuilder("xdg-open", url).start()
            }
        }
    }
}

/**
 * Called by syncvault whenever a Synchronize needs a sign-in. [waiting] shows and hides the app's
 * "continue in your browser" state; [cancel] ends a wait (the core also ends it when the
 * Synchronize is cancelled).
 */
class BrowserAuthorizationUi(
    private val browser: Browser,
    private val waiting: (Boolean) -> Unit,
) : AuthorizationUi {
    @Volatile private var listener: LoopbackRedirect? = null

    override fun redirectUri(): String = try {
        LoopbackRedirect.bind().also { listener = it }.redirectUri()
    } catch (e: SyncException) {
        "" // authorize() binds again and throws the typed error
    }

    override suspend fun authorize(url: String): String {
        val redirect = listener ?: LoopbackRedirect.bind()
        listener = redirect
        withContext(Ui) { waiting(true) }
        try {
            withContext(Dispatchers.IO) {
                try {
                    browser.open(url)
                } catch (e: Exception) {
                    throw SyncException.AuthorizationUiFailed("no browser could be opened")
                }
            }
            return redirect.waitForCallback(LOGIN_WAIT_SECONDS)
        } finally {
            listener = null
            redirect.close()
            withContext(NonCancellable + Ui) { waiting(false) }
        }
    }

    fun cancel() {
        listener?.cancel()
    }
}
