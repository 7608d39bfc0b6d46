// Settings: who is signed in, sign out, change the offline password, erase this device.
package dev.syncvault.sample

import dev.syncvault.SyncException
import java.awt.BorderLayout
import javax.swing.JOptionPane
import javax.swing.JPanel
import javax.swing.JPasswordField

class SettingsScreen(private val app: FieldApp) : JPanel(BorderLayout()), Shown {
    private val who = paragraph(" ", name = "signedInAs")
    private val organization = paragraph(" ", name = "organization")
    private val old = JPasswordField().named("oldPassword")
    private val new = JPasswordField().named("newPassword")
    private val again = JPasswordField().named("newPasswordAgain")
    private val feedback = paragraph(" ", name = "changePasswordFeedback")

    init {
        add(header("Settings", button("Back", "settingsBack") { app.show(Screen.RECORDS) }), BorderLayout.NORTH)
        add(
            Column()
                .row(label("Account", Style.title), 4)
                .row(who, 2)
                .row(organization, 8)
                .row(button("Sign out", "signOut") { signOut() }, 16)
                .row(label("Change the offline password", Style.title), 4)
                .row(label("Current password"), 2).row(old, 6)
                .row(label("New password"), 2).row(new, 6)
                .row(label("New password again"), 2).row(again, 6)
                .row(button("Change password", "changePassword") { changePassword() }, 4)
                .row(feedback, 16)
                .row(label("Erase this device", Style.title), 4)
                .row(paragraph("Removes the organization's data and your unsent changes from this device."), 4)
                .row(button("Erase…", "wipe") { wipe() }),
            BorderLayout.CENTER,
        )
    }

    override fun shown() {
        app.launch {
            val state = app.client.accountState()
            organization.text = html("Organization: ${state.organizationUrl ?: "unknown"}")
            who.text = html(
                if (!app.client.isSignedIn()) "Not signed in."
                else try {
                    val me = app.client.whoAmI()
                    "Signed in as ${me.name ?: me.email ?: "you"}" + (me.email?.let { " ($it)" } ?: "")
                } catch (e: SyncException) {
                    "Signed in (${Messages.of(e)})"
                }
            )
        }
    }

    private fun signOut() {
        app.cancelSync()
        app.launch {
            app.client.signOut(false)
            app.notify("Signed out. The data stays on this device; Synchronize signs in again.")
            shown()
        }
    }

    private fun changePassword() {
        val bytes = listOf(old, new, again).map { String(it.password).toByteArray(Charsets.UTF_8) }
        app.launch {
            try {
                app.client.changeOfflinePassword(bytes[0], bytes[1], bytes[2])
                listOf(old, new, again).forEach { it.text = "" }
                feedback.text = html("✓ The offline password was changed.")
                feedback.foreground = Style.ok
            } catch (e: SyncException) {
                feedback.text = html(Messages.of(e))
                feedback.foreground = Style.danger
            } finally {
                bytes.forEach { it.fill(0) }
            }
        }
    }

    private fun wipe() {
        val answer = JOptionPane.showConfirmDialog(
            this,
            "Erase the organization's data and your unsent changes from this device?",
            "Erase this device",
            JOptionPane.OK_CANCEL_OPTION,
            JOptionPane.WARNING_MESSAGE,
        )
        if (answer != JOptionPane.OK_OPTION) return
        app.cancelSync()
        app.launch {
            app.client.wipe()
            app.notify("This device was erased.")
            app.show(Screen.FIRST_RUN)
        }
    }
}
