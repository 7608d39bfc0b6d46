// The lock screen: the offline password opens the data; wrong attempts are counted, and at the
// limit the data on this device is erased (the organization still has it).
package dev.syncvault.sample

import dev.syncvault.SyncException
import java.awt.BorderLayout
import javax.swing.JPanel
import javax.swing.JPasswordField

class LockScreen(private val app: FieldApp) : JPanel(BorderLayout()), Shown {
    private val password = JPasswordField().named("unlockPassword")
    private val feedback = paragraph(" ", name = "unlockFeedback")
    private val unlock = button("Unlock", "unlock", primary = true) { submit() }
    private val limit = app.config.options.maxFailedAttempts

    init {
        password.addActionListener { submit() }
        add(header("Field Service"), BorderLayout.NORTH)
        add(
            Column()
                .row(label("Locked", Style.title), 12)
                .row(label("Offline password"), 4)
                .row(password, 8)
                .row(unlock, 8)
                .row(feedback, 12)
                .row(
                    paragraph(
                        "After $limit wrong passwords in a row the data on this device is erased, with " +
                            "changes not yet synchronized. What the organization holds stays: sign in " +
                            "again and it downloads again.",
                    ),
                ),
            BorderLayout.CENTER,
        )
    }

    override fun shown() {
        app.launch {
            val failed = app.client.accountState().failedAttempts
            feedback.text = if (failed > 0u) html("${limit - failed} attempts left.") else " "
            feedback.foreground = Style.danger
            password.requestFocusInWindow()
        }
    }

    private fun submit() {
        val secret = String(password.password).toByteArray(Charsets.UTF_8)
        unlock.isEnabled = false
        feedback.text = "Opening…"
        feedback.foreground = Style.muted
        app.launch {
            try {
                app.client.unlock(secret)
                password.text = ""
                feedback.text = " "
                app.opened()
            } catch (e: SyncException) {
                password.text = ""
                feedback.text = html(Messages.of(e))
                feedback.foreground = Style.danger
                if (e is SyncException.VaultWiped || (e is SyncException.WrongPassword && e.attemptsLeft == 0u)) {
                    app.show(Screen.FIRST_RUN)
                    app.notify(Messages.of(SyncException.VaultWiped()), error = true)
                }
            } finally {
                secret.fill(0)
                unlock.isEnabled = true
            }
        }
    }
}
