// Sign-in: the waiting state while the provider's page is open in the browser (OAuth), and the
// organization's user name and password (credentials mode).
package dev.syncvault.sample

import dev.syncvault.SyncException
import java.awt.BorderLayout
import javax.swing.JPanel
import javax.swing.JPasswordField
import javax.swing.JProgressBar
import javax.swing.JTextField

class SignInScreen(private val app: FieldApp) : JPanel(BorderLayout()) {
    init {
        add(header("Sign in"), BorderLayout.NORTH)
        add(
            Column()
                .row(label("Continue in your browser", Style.title, name = "signInWaiting"), 12)
                .row(
                    paragraph(
                        "Your organization's sign-in page opened in your browser. Sign in there; this " +
                            "window continues by itself when you are done.",
                    ),
                    16,
                )
                .row(JProgressBar().apply { isIndeterminate = true }, 16)
                .row(button("Cancel", "cancelSignIn") { app.cancelSync() }),
            BorderLayout.CENTER,
        )
    }
}

class CredentialsScreen(private val app: FieldApp) : JPanel(BorderLayout()) {
    private val user = JTextField().named("username")
    private val password = JPasswordField().named("orgPassword")
    private val feedback = paragraph(" ", name = "credentialsFeedback")
    private val signIn = button("Sign in", "signIn", primary = true) { submit() }

    init {
        add(header("Sign in"), BorderLayout.NORTH)
        add(
            Column()
                .row(label("Your organization account", Style.title), 12)
                .row(label("User name"), 4)
                .row(user, 8)
                .row(label("Password (the organization's, not the offline one)"), 4)
                .row(password, 8)
                .row(feedback, 12)
                .row(signIn),
            BorderLayout.CENTER,
        )
    }

    private fun submit() {
        val secret = String(password.password).toByteArray(Charsets.UTF_8)
        signIn.isEnabled = false
        app.launch {
            try {
                app.client.signInWithCredentials(user.text.trim(), secret)
                password.text = ""
                app.opened(syncNow = true)
            } catch (e: SyncException) {
                // The organization answers a wrong name or password as "sign in required".
                val text = if (e is SyncException.SignInRequired) "The user name or password is not right." else Messages.of(e)
                feedback.text = html(text)
                feedback.foreground = Style.danger
            } finally {
                secret.fill(0)
                signIn.isEnabled = true
            }
        }
    }
}
