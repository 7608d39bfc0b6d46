// The main screen: Synchronize with its progress and the last outcome, and one tab per entity
// (accounts, contacts, activities, ...) with search as you type, counts and each row's sync state.
package dev.syncvault.sample

import dev.syncvault.SyncActivity
import dev.syncvault.SyncProgress
import dev.syncvault.SyncStatus
import dev.syncvault.syncStatusFlow
import java.awt.BorderLayout
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import javax.swing.BorderFactory
import javax.swing.JPanel
import javax.swing.JProgressBar
import javax.swing.JTabbedPane
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.collect

/** Entities the app knows how to present first; any others follow in the server's order. */
private val PREFERRED = listOf("account", "contact", "activity")

class RecordsScreen(private val app: FieldApp) : JPanel(BorderLayout()), Shown {
    private val syncButton = button("Synchronize", "synchronize", primary = true) {
        if (app.syncing) app.cancelSync() else app.synchronize()
    }
    private val progressBar = JProgressBar().named("syncProgress").apply { isStringPainted = true; string = "" }
    private val status = label(" ", Style.small, Style.muted, "syncStatus")
    private val issues = button("Issues", "openIssues") { app.show(Screen.ISSUES) }
    private val tabs = JTabbedPane().named("entityTabs")
    private val entityTabs = mutableMapOf<String, EntityTab>()
    private var statusWatch: Job? = null

    init {
        val syncBar = JPanel(BorderLayout(8, 4)).apply {
            border = BorderFactory.createEmptyBorder(8, 12, 8, 12)
            add(syncButton, BorderLayout.WEST)
            add(progressBar, BorderLayout.CENTER)
            add(status, BorderLayout.SOUTH)
        }
        val top = JPanel(BorderLayout()).apply {
            add(
                header(
                    "Field Service",
                    issues,
                    button("Settings", "openSettings") { app.show(Screen.SETTINGS) },
                    button("Lock", "lock") { lock() },
                ),
                BorderLayout.NORTH,
            )
            add(syncBar, BorderLayout.SOUTH)
        }
        add(top, BorderLayout.NORTH)
        add(tabs, BorderLayout.CENTER)
        progressBar.isVisible = false
    }

    override fun shown() {
        if (statusWatch?.isActive != true) {
            statusWatch = app.launch { app.client.syncStatusFlow().collect { show(it) } }
        }
        loadEntities()
    }

    private fun loadEntities() {
        app.launch {
            val entities = app.client.entities().sortedBy { PREFERRED.indexOf(it).let { i -> if (i < 0) 99 else i } }
            for (entity in entities) {
                if (entity in entityTabs || entity == "attachment") continue
                val tab = EntityTab(app, entity, app.client.entityFields(entity))
                entityTabs[entity] = tab
                tabs.addTab(Messages.entityLabel(entity), tab)
                tab.start()
            }
            if (entities.isEmpty() && !app.syncing) status.text = "Nothing on this device yet: press Synchronize."
        }
    }

    private val time = DateTimeFormatter.ofPattern("HH:mm").withZone(ZoneId.systemDefault())

    private fun show(s: SyncStatus) {
        val waiting = s.conflictsWaiting + s.syncErrors
        issues.text = if (waiting > 0uL) "Issues ($waiting)" else "Issues"
        issues.foreground = if (waiting > 0uL) Style.danger else null
        if (s.activity !is SyncActivity.Idle) return
        val parts = mutableListOf<String>()
        val error = s.lastError
        parts += when {
            error != null -> "Last Synchronize failed: ${Messages.of(error)}"
            s.lastSyncedAt != null -> "Synchronized at ${time.format(s.lastSyncedAt)}"
            else -> "Not synchronized yet"
        }
        if (s.pendingChanges > 0uL) parts += Messages.plural(s.pendingChanges, "change") + " waiting to go up"
        status.text = html(parts.joinToString(" · "))
        status.foreground = if (error != null) Style.danger else Style.muted
    }

    fun syncStarted() {
        syncButton.text = "Cancel"
        syncButton.name = "synchronize"
        progressBar.isVisible = true
        progressBar.isIndeterminate = true
        progressBar.string = "Starting…"
        status.text = "Synchronizing…"
    }

    fun progress(p: SyncProgress) {
        val estimate = p.recordsEstimated
        val phase = when (p.phase) {
            dev.syncvault.SyncPhase.PREPARING -> "Preparing"
            dev.syncvault.SyncPhase.SIGNING_IN -> "Signing in"
            dev.syncvault.SyncPhase.UPLOADING -> "Sending your changes"
            dev.syncvault.SyncPhase.DOWNLOADING -> "Receiving"
            dev.syncvault.SyncPhase.FINISHED -> "Finishing"
        }
        if (estimate != null && estimate > 0uL) {
            progressBar.isIndeterminate = false
            progressBar.maximum = estimate.toInt()
            progressBar.value = minOf(p.recordsDone, estimate).toInt()
            progressBar.string = "$phase: ${Messages.count(p.recordsDone)} of about ${Messages.count(estimate)}"
        } else {
            progressBar.isIndeterminate = true
            progressBar.string = if (p.recordsDone > 0uL) "$phase: ${Messages.count(p.recordsDone)}" else phase
        }
    }

    /** A Synchronize ended well: entities it brought get their tabs. */
    fun finished() = loadEntities()

    fun syncEnded() {
        syncButton.text = "Synchronize"
        progressBar.isVisible = false
        app.launch { show(app.client.syncStatus()) }
    }

    private fun lock() {
        app.cancelSync()
        app.launch {
            app.client.lock()
            app.show(Screen.LOCK)
        }
    }

    /** The test's view of the tabs: entity → its tab. */
    fun tab(entity: String): EntityTab? = entityTabs[entity]
}
