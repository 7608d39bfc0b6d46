// The app's one window and what it knows: the client, the screen shown, the running
// Synchronize. Screens call back into it to move on; every call into syncvault runs in a
// coroutine (syncvault's suspend functions never block the UI thread) and lands back on it.
package dev.syncvault.sample

import dev.syncvault.ClientOptions
import dev.syncvault.SyncClient
import dev.syncvault.SyncEvent
import dev.syncvault.SyncException
import dev.syncvault.UserMode
import dev.syncvault.synchronizeFlow
import java.awt.BorderLayout
import java.awt.CardLayout
import java.awt.Dimension
import javax.swing.BorderFactory
import javax.swing.JFrame
import javax.swing.JPanel
import javax.swing.WindowConstants
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/** What the app starts with: where its data lives, which organization to suggest, how to sign in. */
data class AppConfig(
    val dataDir: String,
    val suggestedOrgUrl: String? = null,
    val options: ClientOptions = ClientOptions(deviceName = "Field app (desktop)", appVersion = "sample 1.0"),
    val browser: Browser = Browser.system,
)

/** The screens, by the card name the window shows them under. */
enum class Screen { STARTING, FIRST_RUN, SIGN_IN, CREDENTIALS, LOCK, RECORDS, RECORD, ISSUES, SETTINGS }

class FieldApp(val config: AppConfig) {
    val scope = CoroutineScope(SupervisorJob() + Ui)
    val frame = JFrame("Field Service")
    private val cards = CardLayout()
    private val deck = JPanel(cards)
    private val banner = label(" ", Style.small, name = "banner").apply {
        border = BorderFactory.createEmptyBorder(6, 12, 6, 12)
    }
    lateinit var client: SyncClient
        private set
    var current = Screen.STARTING
        private set

    val authUi = BrowserAuthorizationUi(config.browser) { waiting -> if (waiting) show(Screen.SIGN_IN) else back() }
    private var beforeSignIn = Screen.RECORDS

    val records by lazy { RecordsScreen(this) }
    private val screens = mutableMapOf<Screen, JPanel>()

    /** Runs [block] in the app's scope; a failure shows in the banner in plain words. */
    fun launch(block: suspend CoroutineScope.() -> Unit): Job = scope.launch {
        try {
            block()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Throwable) {
            notify(Messages.of(e), error = true)
            if (e is SyncException.VaultWiped) show(Screen.FIRST_RUN)
        }
    }

    fun notify(text: String, error: Boolean = false) {
        banner.text = html(text)
        banner.foreground = if (error) Style.danger else Style.muted
    }

    /** Opens the window on the screen the account's state calls for. */
    fun start() {
        frame.defaultCloseOperation = WindowConstants.DISPOSE_ON_CLOSE
        frame.contentPane.layout = BorderLayout()
        frame.contentPane.add(deck, BorderLayout.CENTER)
        frame.contentPane.add(banner, BorderLayout.SOUTH)
        deck.add(Column().row(label("Starting…")), Screen.STARTING.name)
        frame.size = Dimension(480, 820)
        frame.setLocation(0, 0)
        frame.addWindowListener(object : java.awt.event.WindowAdapter() {
            override fun windowClosed(e: java.awt.event.WindowEvent) = close()
        })
        frame.isVisible = true
        Warmup.start()
        launch {
            client = withContext(Dispatchers.IO) { SyncClient.withOptions(config.dataDir, config.options) }
            client.setAuthorizationUi(authUi)
            val state = client.accountState()
            when {
                !state.configured -> show(Screen.FIRST_RUN)
                state.locked -> show(Screen.LOCK)
                else -> opened()
            }
        }
    }

    /** After setup or unlock: the lists, and a Synchronize when the person is signed in. */
    fun opened(syncNow: Boolean = false) {
        show(Screen.RECORDS)
        launch {
            if (syncNow || client.isSignedIn()) synchronize()
        }
    }

    fun show(screen: Screen) {
        if (screen == Screen.SIGN_IN || screen == Screen.CREDENTIALS) {
            if (current != Screen.SIGN_IN && current != Screen.CREDENTIALS) beforeSignIn = current
        }
        val panel = screens.getOrPut(screen) {
            build(screen).also { deck.add(it, screen.name) }
        }
        (panel as? Shown)?.shown()
        current = screen
        cards.show(deck, screen.name)
    }

    private fun back() = show(beforeSignIn)

    private fun build(screen: Screen): JPanel = when (screen) {
        Screen.STARTING -> Column()
        Screen.FIRST_RUN -> FirstRunScreen(this)
        Screen.SIGN_IN -> SignInScreen(this)
        Screen.CREDENTIALS -> CredentialsScreen(this)
        Screen.LOCK -> LockScreen(this)
        Screen.RECORDS -> records
        Screen.RECORD -> RecordScreen(this)
        Screen.ISSUES -> IssuesScreen(this)
        Screen.SETTINGS -> SettingsScreen(this)
    }

    fun openRecord(entity: String, id: String) {
        show(Screen.RECORD)
        (screens[Screen.RECORD] as RecordScreen).open(entity, id)
    }

    private var syncJob: Job? = null

    val syncing get() = syncJob?.isActive == true

    /** Synchronize: progress on the records screen, the outcome in the banner. */
    fun synchronize() {
        if (syncing) return
        syncJob = scope.launch {
            records.syncStarted()
            try {
                client.synchronizeFlow().collect { event ->
                    when (event) {
                        is SyncEvent.Progress -> records.progress(event.progress)
                        is SyncEvent.Finished -> {
                            records.finished()
                            notify(Reports.summary(event.report))
                        }
                    }
                }
            } catch (e: CancellationException) {
                notify("Synchronize was cancelled. What arrived is kept.")
                throw e
            } catch (e: SyncException.SignInRequired) {
                if (client.accountState().userMode == UserMode.CREDENTIALS) show(Screen.CREDENTIALS)
                notify(Messages.of(e), error = true)
            } catch (e: Throwable) {
                notify(Messages.of(e), error = true)
            } finally {
                records.syncEnded()
            }
        }
    }

    fun cancelSync() {
        authUi.cancel()
        syncJob?.cancel()
    }

    /** The window went: stop the work and free the client (it waits for a running Synchronize). */
    fun close() {
        scope.cancel()
        if (this::client.isInitialized) Thread { client.close() }.start()
    }
}

/** A screen that refreshes what it shows each time it comes to the front. */
interface Shown {
    fun shown()
}
