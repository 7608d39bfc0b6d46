// The sample app walked through the seed's flow in a real window (run under Xvfb by
// scripts/sample-app-tests): first run with the password twice, sign-in at the provider's login
// page, the initial sync of 10,000 records, a search, an offline edit, a conflict with another
// device resolved, lock and unlock, settings. Widgets are found by name in process and driven on
// the UI thread; each screen is captured from the screen itself (java.awt.Robot) into docs/app/.
package dev.syncvault.sample.test

import dev.syncvault.FieldValue
import dev.syncvault.RecordSyncState
import dev.syncvault.SyncClient
import dev.syncvault.SyncObserver
import dev.syncvault.SyncProgress
import dev.syncvault.AuthorizationUi
import dev.syncvault.sample.AppConfig
import dev.syncvault.sample.Browser
import dev.syncvault.sample.FieldApp
import dev.syncvault.sample.Screen
import dev.syncvault.sample.UiWatchdog
import dev.syncvault.sample.findNamed
import dev.syncvault.tests.devLogin
import dev.syncvault.tests.fastOptions
import dev.syncvault.tests.startServer
import dev.syncvault.tests.tempDir
import java.awt.Component
import java.awt.Rectangle
import java.awt.Robot
import java.awt.event.KeyEvent
import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import javax.imageio.ImageIO
import javax.swing.AbstractButton
import javax.swing.JFileChooser
import java.awt.Color
import java.awt.Font
import java.awt.GradientPaint
import java.awt.image.BufferedImage
import javax.swing.JLabel
import javax.swing.JList
import javax.swing.JTabbedPane
import javax.swing.SwingUtilities
import javax.swing.text.JTextComponent
import kotlin.system.exitProcess
import kotlinx.coroutines.runBlocking

private const val PASSWORD = "field-app-1"

class Walk(private val app: FieldApp, private val shots: File) {
    fun <T> ui(block: () -> T): T {
        if (SwingUtilities.isEventDispatchThread()) return block()
        var result: Result<T>? = null
        SwingUtilities.invokeAndWait { result = runCatching(block) }
        return result!!.getOrThrow()
    }

    fun find(name: String): Component? = ui { findNamed(app.frame, name) }

    fun get(name: String): Component = find(name) ?: fail("no widget named $name on screen ${app.current}")

    fun fail(why: String): Nothing {
        val banner = ui { (findNamed(app.frame, "banner") as? JLabel)?.text }
        throw AssertionError("$why (banner: $banner)")
    }

    fun waitFor(what: String, timeoutMs: Long = 60_000, condition: () -> Boolean) {
        val end = System.currentTimeMillis() + timeoutMs
        while (!ui { runCatching(condition).getOrDefault(false) }) {
            if (System.currentTimeMillis() > end) fail("timed out waiting for $what on screen ${app.current}")
            Thread.sleep(30)
        }
    }

    fun type(name: String, text: String) = ui { (get(name) as JTextComponent).text = text }

    fun click(name: String) = ui { (get(name) as AbstractButton).doClick(0) }

    fun text(name: String): String = ui {
        when (val c = get(name)) {
            is JLabel -> c.text
            is AbstractButton -> c.text
            is JTextComponent -> c.text
            else -> error("$name has no text")
        }
    }.replace(Regex("<[^>]+>"), "").replace("&amp;", "&").replace("&lt;", "<")

    /** Shows the entity tab at [index] (0 accounts, 1 contacts, 2 activities). */
    fun tab(index: Int) = ui { (get("entityTabs") as JTabbedPane).selectedIndex = index }

    /** Presses Synchronize and waits until the run has ended. */
    fun synchronize() {
        click("synchronize")
        waitFor("the Synchronize to end") { !app.syncing }
    }

    fun waitText(name: String, contains: String, timeoutMs: Long = 60_000) =
        waitFor("'$contains' in $name", timeoutMs) { findNamed(app.frame, name) != null && text(name).contains(contains) }

    /** The window as it is on the (virtual) screen, after pending paints. */
    fun shot(file: String) {
        ui { app.frame.repaint() }
        Thread.sleep(400)
        ui { }
        val bounds = ui { Rectangle(app.frame.locationOnScreen, app.frame.size) }
        ImageIO.write(Robot().createScreenCapture(bounds), "png", File(shots, "$file.png"))
        println("sample app: screenshot ${File(shots, "$file.png").path} (${app.current})")
    }
}

/**
 * Credentials mode on a second install: the organization's user name and password instead of the
 * provider's page; a wrong password is said on the screen, the right one syncs.
 */
private fun credentialsWalk(orgUrl: String, shots: File, accounts: Int) {
    val app = FieldApp(AppConfig(dataDir = tempDir("sample-credentials").toString(), options = fastOptions))
    try {
        SwingUtilities.invokeAndWait { app.start() }
        val w = Walk(app, shots)
        w.waitFor("the first-run screen") { findNamed(app.frame, "orgUrl") != null }
        w.type("orgUrl", orgUrl)
        w.waitText("orgUrlFeedback", "Contoso Field Service")
        w.ui { (w.get("modeCredentials") as AbstractButton).isSelected = true }
        w.type("password", PASSWORD)
        w.type("confirmation", PASSWORD)
        w.click("continue")
        w.waitFor("the credentials screen") { app.current == Screen.CREDENTIALS && findNamed(app.frame, "username") != null }
        w.type("username", "ada@contoso.example")
        w.type("orgPassword", "not-her-password")
        w.click("signIn")
        w.waitText("credentialsFeedback", "not right")
        w.type("orgPassword", "ada-credentials")
        w.click("signIn")
        w.waitText("accountCount", "%,d accounts".format(java.util.Locale.US, accounts), 120_000)
        w.waitFor("the Synchronize to end") { !app.syncing }
    } finally {
        SwingUtilities.invokeAndWait { app.frame.dispose() }
    }
}

/** A second device of the same person, for the conflict: the real client, signed in headlessly. */
private fun otherDevice(orgUrl: String): SyncClient {
    val client = SyncClient.withOptions(tempDir("other-device").toString(), fastOptions)
    runBlocking {
        client.setupOfflinePassword(orgUrl, dev.syncvault.UserMode.OAUTH, PASSWORD.toByteArray(), PASSWORD.toByteArray())
        client.setAuthorizationUi(object : AuthorizationUi {
            override fun redirectUri() = "dev.syncvault.app:/oauth/callback"
            override suspend fun authorize(url: String) = devLogin(url, "ada@contoso.example")
        })
    }
    return client
}

/** Selects row [index] of the named list and presses Enter, as the person would. */
private fun openRow(w: Walk, list: String, index: Int) = w.ui {
    val l = w.get(list) as JList<*>
    l.selectedIndex = index
    l.dispatchEvent(KeyEvent(l, KeyEvent.KEY_PRESSED, System.currentTimeMillis(), 0, KeyEvent.VK_ENTER, '\n'))
}

/** The file chooser the app opened, if one is showing. */
private fun chooser(): JFileChooser? = java.awt.Window.getWindows().filter { it.isShowing }
    .firstNotNullOfOrNull { w -> findChooser(w) }

private fun findChooser(c: Component): JFileChooser? {
    if (c is JFileChooser) return c
    if (c is java.awt.Container) c.components.forEach { child -> findChooser(child)?.let { return it } }
    return null
}

/** A photo-sized image: a sky, a building, a label. */
private fun testPhoto(caption: String = "Site office"): BufferedImage {
    val image = BufferedImage(640, 480, BufferedImage.TYPE_INT_RGB)
    val g = image.createGraphics()
    g.paint = GradientPaint(0f, 0f, Color(0x87, 0xCE, 0xEB), 0f, 480f, Color(0xF0, 0xF8, 0xFF))
    g.fillRect(0, 0, 640, 480)
    g.color = Color(0x8B, 0x45, 0x13)
    g.fillRect(200, 200, 240, 280)
    g.color = Color.DARK_GRAY
    g.font = Font(Font.SANS_SERIF, Font.BOLD, 36)
    g.drawString(caption, 200, 180)
    g.dispose()
    return image
}

private val quiet = object : SyncObserver {
    override fun onProgress(progress: SyncProgress) {}
}

fun main(args: Array<String>) {
    val records = System.getenv("SAMPLE_RECORDS")?.toInt() ?: 10_000
    val shots = File(args.firstOrNull() ?: "docs/app").apply { mkdirs() }
    val (server, orgUrl) = startServer("--records", records.toString())
    var app: FieldApp? = null
    val code = try {
        // The "system browser": shows the provider's page to the person (here: fills in the
        // development provider's form) and follows its redirect to the app's loopback listener.
        val firstPage = CountDownLatch(1)
        val pageOpen = CountDownLatch(1)
        val personSignsIn = CountDownLatch(1)
        val pages = java.util.concurrent.atomic.AtomicInteger()
        val browser = Browser { url ->
            if (pages.incrementAndGet() == 1) {
                firstPage.countDown() // the person looks, and presses Cancel in the app
            } else {
                Thread {
                    pageOpen.countDown()
                    personSignsIn.await(120, TimeUnit.SECONDS)
                    val callback = devLogin(url, "ada@contoso.example")
                    HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI(callback)).GET().build(), HttpResponse.BodyHandlers.discarding())
                }.start()
            }
        }
        val config = AppConfig(
            dataDir = tempDir("sample-app").toString(),
            // Attachments others add wait for "Download", as a large video would.
            options = fastOptions.copy(deviceName = "Field app (UI test)", attachmentAutoDownloadMaxBytes = 0uL),
            browser = browser,
        )
        val started = System.nanoTime()
        val a = FieldApp(config).also { app = it }
        SwingUtilities.invokeAndWait {
            UiWatchdog.install()
            a.start()
        }
        val w = Walk(a, shots)
        w.waitFor("the first-run screen") { findNamed(a.frame, "orgUrl") != null }
        val firstScreenMs = (System.nanoTime() - started) / 1e6
        UiWatchdog.reset()

        // First run: the address checked as typed, the password policy, the password twice.
        w.type("orgUrl", "ftp://contoso.example")
        w.waitText("orgUrlFeedback", "https://")
        w.type("orgUrl", orgUrl)
        w.waitText("orgUrlFeedback", "Contoso Field Service")
        w.type("password", "short")
        w.waitText("passwordFeedback", "more")
        w.type("password", PASSWORD)
        w.type("confirmation", "field-app-2")
        w.waitText("passwordFeedback", "not the same")
        w.type("confirmation", PASSWORD)
        w.waitText("passwordFeedback", "match")
        w.shot("01-first-run")

        // Sign in: the app waits for the browser, with Cancel.
        w.click("continue")
        check(firstPage.await(60, TimeUnit.SECONDS)) { "the login page never opened" }
        w.waitFor("the waiting state") { a.current == Screen.SIGN_IN }
        w.click("cancelSignIn")
        w.waitText("banner", "cancelled")
        w.waitFor("the lists after the cancelled sign-in") { a.current == Screen.RECORDS && !a.syncing }
        w.click("synchronize")
        check(pageOpen.await(60, TimeUnit.SECONDS)) { "the login page did not open again" }
        w.waitFor("the waiting state") { a.current == Screen.SIGN_IN }
        w.shot("02-sign-in")
        val signedIn = System.nanoTime()
        personSignsIn.countDown()

        // The initial sync: every list full.
        val accounts = records / 10
        val contacts = records * 4 / 10
        val activities = records - accounts - contacts
        fun n(v: Int) = "%,d".format(java.util.Locale.US, v)
        w.waitText("accountCount", "${n(accounts)} accounts", 300_000)
        w.waitFor("the full lists and the end of the Synchronize", 300_000) {
            !a.syncing && a.records.tab("contact") != null && a.records.tab("activity") != null
        }
        w.tab(1)
        w.waitText("contactCount", "${n(contacts)} contacts")
        w.tab(2)
        w.waitText("activityCount", "${n(activities)} activities")
        val fullListMs = (System.nanoTime() - signedIn) / 1e6
        w.tab(0)
        w.waitText("syncStatus", "Synchronized at")
        w.shot("03-accounts")

        // Search as you type.
        w.tab(1)
        w.type("contactSearch", "Grace")
        w.waitText("contactCount", "match")
        w.waitFor("contacts matching Grace") {
            val rows = a.records.tab("contact")!!.model.rows
            rows.isNotEmpty() && rows.all { r -> r.fields.values.any { (it as? FieldValue.Text)?.value?.contains("Grace") == true } }
        }
        w.shot("04-search")

        // An offline edit of the first account.
        w.tab(0)
        val account = w.ui { a.records.tab("account")!!.model.rows.first() }
        openRow(w, "accountList", 0)
        w.waitText("recordState", "In step")
        w.waitFor("the phone field") { (findNamed(a.frame, "field_phone") as? JTextComponent)?.text?.isNotEmpty() == true }
        w.shot("05-record")
        w.type("field_employees", "many")
        w.click("save")
        w.waitText("problem_employees", "whole number")
        w.type("field_employees", "120")
        w.type("field_phone", "+1 555 0101 (site office)")
        w.click("save")
        w.waitText("recordState", "Pending")

        // A photo from a file, through the app's file chooser.
        val photo = File(tempDir("photo").toFile(), "site-photo.png")
        ImageIO.write(testPhoto(), "png", photo)
        SwingUtilities.invokeLater { (findNamed(a.frame, "addPhoto") as AbstractButton).doClick(0) }
        w.waitFor("the file chooser") { chooser() != null }
        w.ui {
            val chooser = chooser()!!
            chooser.selectedFile = photo
            chooser.approveSelection()
        }
        w.waitFor("the photo's thumbnail, visible") {
            val thumb = findNamed(a.frame, "thumb_site-photo.png") as? JLabel
            thumb?.icon != null && thumb.height >= 32 && thumb.visibleRect.height >= 32
        }
        w.shot("06-pending")
        w.click("back")
        w.waitFor("the pending badge in the list") {
            a.records.tab("account")!!.model.rows.first { it.id == account.id }.syncState is RecordSyncState.Pending
        }
        w.shot("07-list-pending")

        // Meanwhile the same person changes the same phone on another device.
        val other = otherDevice(orgUrl)
        other.use {
            runBlocking {
                it.synchronize(quiet)
                it.updateRecord("account", account.id, mapOf("phone" to FieldValue.Text("+1 555 0202 (front desk)")))
                it.synchronize(quiet)
            }

            // Synchronize: the employees edit merges, the phone waits for the person.
            w.synchronize()
            w.waitText("openIssues", "Issues (1)")
            w.click("openIssues")
            w.waitFor("the conflict") { findNamed(a.frame, "keepMine0") != null }
            w.shot("08-conflict")
            w.click("keepMine0")
            w.waitFor("no issue left") { findNamed(a.frame, "noIssues") != null }
            w.click("issuesBack")
            w.synchronize()
            w.waitFor("the account in step") {
                a.records.tab("account")!!.model.rows.first { it.id == account.id }.syncState is RecordSyncState.Synced
            }
            runBlocking {
                it.synchronize(quiet)
                val there = it.getRecord("account", account.id)!!
                check(there.fields["phone"] == FieldValue.Text("+1 555 0101 (site office)")) { "the other device has ${there.fields["phone"]}" }
                check(there.fields["employees"] == FieldValue.Integer(120)) { "the other device has ${there.fields["employees"]}" }
                val attached = it.attachments("account", account.id).single()
                it.downloadAttachment(attached.id, quiet)
                val bytes = it.readAttachment(attached.id, 0u, photo.length().toUInt() + 1u)
                check(bytes.contentEquals(photo.readBytes())) { "the photo differs on the other device (${bytes.size} bytes)" }
                // The other device adds a meter reading; this one downloads it on demand.
                val meter = java.io.ByteArrayOutputStream().also { out -> ImageIO.write(testPhoto("Meter 0421"), "png", out) }.toByteArray()
                it.addAttachment("account", account.id, "meter-reading.png", "image/png", meter)
                it.synchronize(quiet)
            }
        }
        w.synchronize()
        openRow(w, "accountList", 0)
        w.waitFor("the download button") { findNamed(a.frame, "download_meter-reading.png") != null }
        w.click("download_meter-reading.png")
        w.waitFor("the downloaded reading's thumbnail") {
            (findNamed(a.frame, "thumb_meter-reading.png") as? JLabel)?.icon != null
        }
        w.shot("09-download")
        w.click("back")

        // A change the organization refuses: it stays, marked, until the person decides.
        w.tab(1)
        openRow(w, "contactList", 0)
        w.waitFor("the email field") { (findNamed(a.frame, "field_email") as? JTextComponent)?.text?.isNotEmpty() == true }
        val email = w.text("field_email")
        w.type("field_email", "not an email address")
        w.click("save")
        w.waitText("recordState", "Pending")
        w.click("back")
        w.synchronize()
        w.waitText("openIssues", "Issues (1)")
        w.click("openIssues")
        w.waitFor("the refused change") { findNamed(a.frame, "discard0") != null }
        w.shot("10-refused")
        w.click("discard0")
        w.waitFor("no issue left") { findNamed(a.frame, "noIssues") != null }
        w.click("issuesBack")
        w.waitFor("the organization's email back") {
            a.records.tab("contact")!!.model.rows.first().fields["email"] == FieldValue.Text(email)
        }
        w.tab(0)

        // Lock, a wrong password, unlock.
        w.click("lock")
        w.waitFor("the lock screen") { a.current == Screen.LOCK && findNamed(a.frame, "unlockPassword") != null }
        w.type("unlockPassword", "not-the-password")
        w.click("unlock")
        w.waitText("unlockFeedback", "attempts left")
        w.shot("11-lock")
        w.type("unlockPassword", PASSWORD)
        w.click("unlock")
        w.waitFor("the lists again") { a.current == Screen.RECORDS }
        w.waitText("accountCount", "${n(accounts)} accounts")

        // Settings.
        w.click("openSettings")
        w.waitText("signedInAs", "ada@contoso.example")
        w.shot("12-settings")

        // A new offline password, and it is the one that unlocks from now on.
        w.type("oldPassword", PASSWORD)
        w.type("newPassword", "field-app-2")
        w.type("newPasswordAgain", "field-app-3")
        w.click("changePassword")
        w.waitText("changePasswordFeedback", "not the same")
        w.type("newPasswordAgain", "field-app-2")
        w.click("changePassword")
        w.waitText("changePasswordFeedback", "was changed")

        // Sign out keeps the data; the next Synchronize brings the login page back.
        w.click("signOut")
        w.waitText("signedInAs", "Not signed in")
        w.click("settingsBack")
        w.waitText("accountCount", "${n(accounts)} accounts")
        val pagesBefore = pages.get()
        w.click("synchronize")
        w.waitFor("the Synchronize after signing in again") { !a.syncing && pages.get() > pagesBefore }
        w.waitText("syncStatus", "Synchronized at")
        w.click("lock")
        w.waitFor("the lock screen") { a.current == Screen.LOCK }
        w.type("unlockPassword", "field-app-2")
        w.click("unlock")
        w.waitFor("the lists with the new password") { a.current == Screen.RECORDS }

        val longest = UiWatchdog.longestMs
        println(
            "sample app: first screen in %.0f ms; sign-in to full lists of %s records in %.0f ms; longest UI-thread event %.1f ms (%s)"
                .format(java.util.Locale.US, firstScreenMs, n(records), fullListMs, longest, UiWatchdog.longestEvent),
        )
        credentialsWalk(orgUrl, shots, accounts)
        println("sample app: walk passed")
        0
    } catch (e: Throwable) {
        println("sample app: FAILED: ${e::class.simpleName}: ${e.message}")
        e.printStackTrace()
        1
    } finally {
        app?.let { a -> SwingUtilities.invokeAndWait { a.frame.dispose() } }
        server.destroy()
    }
    exitProcess(code)
}
