// Conflicts and refused changes: what the person wrote beside the organization's value, and the
// decision (keep mine, keep theirs, retry, discard). Nothing the person wrote is dropped without
// their say.
package dev.syncvault.sample

import dev.syncvault.ConflictInfo
import dev.syncvault.ConflictResolution
import dev.syncvault.FieldValue
import dev.syncvault.SyncErrorInfo
import dev.syncvault.syncStatusFlow
import java.awt.BorderLayout
import java.awt.FlowLayout
import javax.swing.BorderFactory
import javax.swing.JPanel
import javax.swing.JScrollPane
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.collect

class IssuesScreen(private val app: FieldApp) : JPanel(BorderLayout()), Shown {
    private val body = ScrollColumn()
    private var watch: Job? = null

    init {
        add(header("Issues", button("Back", "issuesBack") { leave() }), BorderLayout.NORTH)
        add(JScrollPane(body).apply { border = null }, BorderLayout.CENTER)
    }

    override fun shown() {
        watch?.cancel()
        // The status changes whenever a conflict or refusal comes or goes: reload then.
        watch = app.launch { app.client.syncStatusFlow().collect { reload() } }
    }

    private fun leave() {
        watch?.cancel()
        app.show(Screen.RECORDS)
    }

    private suspend fun reload() {
        val conflicts = app.client.conflicts()
        val errors = app.client.syncErrors()
        body.removeAll()
        if (conflicts.isEmpty() && errors.isEmpty()) {
            body.row(label("Nothing to decide.", Style.title, name = "noIssues"), 8)
            body.row(paragraph("Every change made on this device is with the organization or waits for the next Synchronize."))
        }
        conflicts.forEachIndexed { i, c -> body.row(conflictCard(c, i, title(c.entity, c.recordId)), 16) }
        errors.forEachIndexed { i, e -> body.row(errorCard(e, i, title(e.entity, e.recordId)), 16) }
        body.revalidate()
        body.repaint()
    }

    /**
     * Field by field: the person's value beside the organization's. [both] names the fields changed
     * on both sides (they are why it waits); the others only the person changed.
     */
    private fun compare(fields: Set<String>, mine: Map<String, FieldValue>, theirs: Map<String, FieldValue>?, both: Set<String>): JPanel {
        val column = Column(0)
        for (f in fields.sortedBy { if (it in both) 0 else 1 }) {
            val note = if (f in both) " — changed on both sides" else " — only you changed it"
            column.row(label(Messages.fieldLabel(f) + note, Style.small.deriveFont(java.awt.Font.BOLD)), 2)
            column.row(paragraph("Yours: " + Messages.value(mine[f]), Style.pending, font = Style.small), 0)
            val server = if (theirs == null) "(deleted)" else Messages.value(theirs[f])
            column.row(paragraph("Organization's: $server", java.awt.Color.BLACK, font = Style.small), 6)
        }
        return column
    }

    private fun card(title: String, text: String, grid: JPanel, vararg actions: javax.swing.JButton) =
        JPanel(BorderLayout(0, 6)).apply {
            border = BorderFactory.createCompoundBorder(
                BorderFactory.createLineBorder(Style.muted),
                BorderFactory.createEmptyBorder(8, 8, 8, 8),
            )
            add(Column(0).row(label(html(title), Style.body.deriveFont(java.awt.Font.BOLD)), 2).row(paragraph(text)), BorderLayout.NORTH)
            add(grid, BorderLayout.CENTER)
            add(JPanel(FlowLayout(FlowLayout.LEFT, 4, 0)).apply { actions.forEach { add(it) } }, BorderLayout.SOUTH)
        }

    private fun conflictCard(c: ConflictInfo, i: Int, title: String): JPanel {
        val name = Messages.entityLabel(c.entity).dropLast(1).lowercase()
        val what = if (c.localDeleted) "You deleted this $name; someone changed it meanwhile."
        else "You and someone else changed this $name. Choose whose values to keep."
        return card(
            "Conflict: $title",
            what,
            compare(c.localFields.keys, c.localFields, c.serverFields, bothChanged(c)),
            button("Keep mine", "keepMine$i", primary = true) { resolve(c, ConflictResolution.KeepLocal) },
            button("Keep organization's", "keepTheirs$i") { resolve(c, ConflictResolution.KeepServer) },
        )
    }

    private fun errorCard(e: SyncErrorInfo, i: Int, title: String) = card(
        "Not saved: $title",
        "${Messages.rejection(e.code)}. The organization said: ${e.serverMessage.trimEnd('.')}. Fix the values in the record and retry, or discard your change.",
        compare(e.localFields.keys, e.localFields, e.serverFields, emptySet()),
        button("Open record", "openErrorRecord$i") { app.openRecord(e.entity, e.recordId) },
        button("Retry", "retry$i", primary = true) {
            app.launch {
                app.client.retrySyncError(e.id)
                app.notify("It goes up again with the next Synchronize.")
            }
        },
        button(if (e.createdOffline) "Discard (removes the record)" else "Discard my change", "discard$i") {
            app.launch {
                app.client.discardSyncError(e.id)
                app.notify("Your change was discarded; the organization's version is back.")
            }
        },
    )

    private fun resolve(c: ConflictInfo, resolution: ConflictResolution) {
        app.launch {
            app.client.resolveConflict(c.id, resolution)
            app.notify(
                if (resolution is ConflictResolution.KeepLocal) "Your values go up with the next Synchronize."
                else "The organization's values are back."
            )
        }
    }

    /** Fields whose server value moved away from what the local edit started from. */
    private fun bothChanged(c: ConflictInfo): Set<String> {
        val base = c.baseFields ?: return c.localFields.keys
        val server = c.serverFields ?: return c.localFields.keys
        return c.localFields.keys.filter { server[it] != base[it] }.toSet()
    }

    /** The record's name as the lists show it (the device's copy holds the person's values). */
    private suspend fun title(entity: String, id: String): String {
        val fields = app.client.getRecord(entity, id)?.fields ?: return "a record"
        return listOf("name", "full_name", "subject").firstNotNullOfOrNull { (fields[it] as? FieldValue.Text)?.value } ?: "a record"
    }
}
