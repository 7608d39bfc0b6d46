// The seed's first screen: the organization's address (checked as typed), how to sign in, and the
// offline password twice with the policy's feedback and the warning that it cannot be recovered.
package dev.syncvault.sample

import dev.syncvault.SyncException
import dev.syncvault.UserMode
import dev.syncvault.normalizeOrganizationUrl
import java.util.Arrays
import javax.swing.ButtonGroup
import javax.swing.JPasswordField
import javax.swing.JRadioButton
import javax.swing.JTextField
import javax.swing.Timer
import javax.swing.event.DocumentEvent
import javax.swing.event.DocumentListener
import java.awt.BorderLayout
import javax.swing.JPanel
import kotlinx.coroutines.Job

/** Calls [action] after every edit of the field. */
fun JTextField.onEdit(action: () -> Unit) = document.addDocumentListener(object : DocumentListener {
    override fun insertUpdate(e: DocumentEvent) = action()
    override fun removeUpdate(e: DocumentEvent) = action()
    override fun changedUpdate(e: DocumentEvent) = action()
})

class FirstRunScreen(private val app: FieldApp) : JPanel(BorderLayout()) {
    private val url = JTextField(app.config.suggestedOrgUrl ?: "").named("orgUrl")
    private val urlFeedback = paragraph(" ", name = "orgUrlFeedback")
    private val oauth = JRadioButton("Organization account (browser sign-in)", true).named("modeOauth")
    private val credentials = JRadioButton("Organization user name and password").named("modeCredentials")
    private val password = JPasswordField().named("password")
    private val confirmation = JPasswordField().named("confirmation")
    private val passwordFeedback = paragraph(" ", name = "passwordFeedback")
    private val continueButton = button("Continue", "continue", primary = true) { submit() }
    private var discovery: Job? = null
    private val discoverSoon = Timer(400) { discover() }.apply { isRepeats = false }
    private val minLength = app.config.options.minPasswordLength.toInt()

    init {
        ButtonGroup().apply { add(oauth); add(credentials) }
        val form = Column()
            .row(label("Set up this device", Style.title), 12)
            .row(label("Organization address"), 4)
            .row(url, 4)
            .row(urlFeedback, 12)
            .row(label("How you sign in"), 4)
            .row(oauth, 2)
            .row(credentials, 12)
            .row(label("Offline password"), 4)
            .row(password, 8)
            .row(label("The same password again"), 4)
            .row(confirmation, 4)
            .row(passwordFeedback, 8)
            .row(
                paragraph(
                    "This password encrypts the organization's data on this device, and you enter it " +
                        "to open the app. It cannot be recovered: if you forget it, the data on this " +
                        "device is erased and downloaded again after you sign in.",
                    Style.danger,
                ),
                16,
            )
            .row(continueButton)
        add(header("Field Service"), BorderLayout.NORTH)
        add(form, BorderLayout.CENTER)
        url.onEdit { checkUrl() }
        password.onEdit { checkPasswords() }
        confirmation.onEdit { checkPasswords() }
        checkUrl()
        checkPasswords()
    }

    /** Normalizes as typed (a pure, quick call), then asks the organization once typing stops. */
    private fun checkUrl() {
        discovery?.cancel()
        try {
            val normalized = normalizeOrganizationUrl(url.text)
            urlFeedback.text = html("Will connect to $normalized")
            urlFeedback.foreground = Style.muted
            discoverSoon.restart()
        } catch (e: SyncException.InvalidOrganizationUrl) {
            discoverSoon.stop()
            urlFeedback.text = html(Messages.urlProblem(e.problem))
            urlFeedback.foreground = if (url.text.isBlank()) Style.muted else Style.danger
        }
    }

    private fun discover() {
        discovery = app.launch {
            try {
                val info = app.client.discover(url.text)
                val modes = info.userModes
                oauth.isEnabled = "oauth" in modes
                credentials.isEnabled = "credentials" in modes
                if (!oauth.isEnabled && oauth.isSelected) credentials.isSelected = true
                if (!credentials.isEnabled && credentials.isSelected) oauth.isSelected = true
                urlFeedback.text = html("✓ ${info.name}")
                urlFeedback.foreground = Style.ok
            } catch (e: SyncException) {
                urlFeedback.text = html(Messages.of(e))
                urlFeedback.foreground = Style.danger
            }
        }
    }

    /** The policy as the person types: length first, then whether the two agree. */
    private fun checkPasswords() {
        val first = password.password
        val second = confirmation.password
        val length = String(first).codePointCount(0, first.size)
        val (text, color) = when {
            first.isEmpty() -> "At least $minLength characters." to Style.muted
            length < minLength -> "At least $minLength characters (${minLength - length} more)." to Style.danger
            second.isEmpty() -> "Now type it once more." to Style.muted
            !first.contentEquals(second) -> "The two passwords are not the same." to Style.danger
            else -> "✓ The passwords match." to Style.ok
        }
        Arrays.fill(first, '\u0000')
        Arrays.fill(second, '\u0000')
        passwordFeedback.text = html(text)
        passwordFeedback.foreground = color
    }

    private fun submit() {
        val mode = if (credentials.isSelected) UserMode.CREDENTIALS else UserMode.OAUTH
        val first = String(password.password).toByteArray(Charsets.UTF_8)
        val second = String(confirmation.password).toByteArray(Charsets.UTF_8)
        continueButton.isEnabled = false
        app.notify("Protecting the device with your password…")
        app.launch {
            try {
                app.client.setupOfflinePassword(url.text, mode, first, second)
                password.text = ""
                confirmation.text = ""
                app.notify("This device is set up.")
                if (mode == UserMode.CREDENTIALS) app.show(Screen.CREDENTIALS) else app.opened(syncNow = true)
            } catch (e: SyncException) {
                passwordFeedback.text = html(Messages.of(e))
                passwordFeedback.foreground = Style.danger
                app.notify(Messages.of(e), error = true)
            } finally {
                first.fill(0)
                second.fill(0)
                continueButton.isEnabled = true
            }
        }
    }
}
