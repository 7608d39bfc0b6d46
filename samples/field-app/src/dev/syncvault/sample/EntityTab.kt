// One entity's list: a watched query (re-run by syncvault after every commit that wrote the
// entity), search as you type, the count, and a badge for each row's sync state. The list holds a
// window of rows that grows as the person scrolls, so 100k records cost what the screen shows.
package dev.syncvault.sample

import dev.syncvault.FieldInfo
import dev.syncvault.FieldType
import dev.syncvault.RecordQuery
import dev.syncvault.SyncRecord
import dev.syncvault.countFlow
import dev.syncvault.queryFlow
import java.awt.BorderLayout
import java.awt.Component
import java.awt.Font
import java.awt.event.KeyAdapter
import java.awt.event.KeyEvent
import java.awt.event.MouseAdapter
import java.awt.event.MouseEvent
import javax.swing.AbstractListModel
import javax.swing.BorderFactory
import javax.swing.JLabel
import javax.swing.JList
import javax.swing.JPanel
import javax.swing.JScrollPane
import javax.swing.JTextField
import javax.swing.ListCellRenderer
import javax.swing.Timer
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.collect

/** Rows fetched at a time; scrolling near the end fetches the next window. */
private const val WINDOW = 200

/** The list's rows, replaced in one event per delivery. */
class RowsModel : AbstractListModel<SyncRecord>() {
    var rows: List<SyncRecord> = emptyList()
        private set

    fun replace(next: List<SyncRecord>) {
        val before = rows.size
        rows = next
        if (before > 0) fireIntervalRemoved(this, 0, before - 1)
        if (next.isNotEmpty()) fireIntervalAdded(this, 0, next.size - 1)
    }

    override fun getSize() = rows.size
    override fun getElementAt(index: Int) = rows[index]
}

class EntityTab(private val app: FieldApp, val entity: String, fields: List<FieldInfo>) : JPanel(BorderLayout()) {
    private val title = fields.firstOrNull { it.sortable && it.kind == FieldType.TEXT }
        ?: fields.firstOrNull { it.kind == FieldType.TEXT } ?: fields.first()
    private val details = fields.filter { it != title && it.kind == FieldType.TEXT }.take(2)
    private val search = JTextField().named("${entity}Search")
    private val count = label(" ", Style.small, Style.muted, "${entity}Count")
    val model = RowsModel()
    private val list = JList(model).named("${entity}List")
    private var total = 0uL
    private var limit = WINDOW
    private var rowsWatch: Job? = null
    private val searchSoon = Timer(150) { watchRows() }.apply { isRepeats = false }

    init {
        val top = JPanel(BorderLayout(0, 4)).apply {
            border = BorderFactory.createEmptyBorder(8, 12, 4, 12)
            add(label("Search ${Messages.entityLabel(entity).lowercase()}"), BorderLayout.NORTH)
            add(search, BorderLayout.CENTER)
            add(count, BorderLayout.SOUTH)
        }
        list.fixedCellHeight = 52
        list.cellRenderer = RowRenderer()
        val scroll = JScrollPane(list)
        scroll.verticalScrollBar.unitIncrement = 26
        scroll.verticalScrollBar.addAdjustmentListener {
            val bar = scroll.verticalScrollBar
            if (bar.value + bar.visibleAmount >= bar.maximum - 10 * list.fixedCellHeight && model.size >= limit) {
                limit += WINDOW
                watchRows()
            }
        }
        list.addMouseListener(object : MouseAdapter() {
            override fun mouseClicked(e: MouseEvent) {
                if (e.clickCount == 2) openSelected()
            }
        })
        list.addKeyListener(object : KeyAdapter() {
            override fun keyPressed(e: KeyEvent) {
                if (e.keyCode == KeyEvent.VK_ENTER) openSelected()
            }
        })
        search.onEdit {
            limit = WINDOW
            searchSoon.restart()
        }
        add(top, BorderLayout.NORTH)
        add(scroll, BorderLayout.CENTER)
    }

    fun start() {
        app.launch {
            app.client.countFlow(entity).collect {
                total = it
                showCount()
            }
        }
        watchRows()
    }

    private val searchText get() = search.text.trim().ifEmpty { null }

    /** (Re)starts the watch: the first [limit] rows in name order, or the search's matches. */
    private fun watchRows() {
        rowsWatch?.cancel()
        val text = searchText
        val query = RecordQuery(
            search = text,
            orderBy = if (text == null) title.name else null,
            limit = limit.toUInt(),
        )
        rowsWatch = app.launch {
            app.client.queryFlow(entity, query).collect { rows ->
                model.replace(rows)
                showCount()
            }
        }
    }

    private fun showCount() {
        val noun = Messages.entityLabel(entity).lowercase()
        count.text = when {
            searchText == null -> "${Messages.count(total)} $noun"
            model.size >= limit -> "More than ${Messages.count(model.size.toULong())} matches"
            model.size == 1 -> "1 match"
            else -> "${Messages.count(model.size.toULong())} matches"
        }
    }

    private fun openSelected() {
        val record = list.selectedValue ?: return
        app.openRecord(entity, record.id)
    }

    /** Title, two detail fields, and the sync-state badge on the right. */
    private inner class RowRenderer : ListCellRenderer<SyncRecord> {
        private val panel = JPanel(BorderLayout(8, 0))
        private val main = JLabel()
        private val sub = JLabel()
        private val badge = JLabel()

        init {
            panel.border = BorderFactory.createEmptyBorder(4, 12, 4, 12)
            main.font = Style.body.deriveFont(Font.BOLD)
            sub.font = Style.small
            sub.foreground = Style.muted
            badge.font = Style.small.deriveFont(Font.BOLD)
            val text = JPanel(BorderLayout()).apply {
                isOpaque = false
                add(main, BorderLayout.CENTER)
                add(sub, BorderLayout.SOUTH)
            }
            panel.add(text, BorderLayout.CENTER)
            panel.add(badge, BorderLayout.EAST)
        }

        override fun getListCellRendererComponent(
            list: JList<out SyncRecord>,
            value: SyncRecord,
            index: Int,
            selected: Boolean,
            focused: Boolean,
        ): Component {
            main.text = Messages.value(value.fields[title.name]).ifEmpty { "(no ${Messages.fieldLabel(title.name).lowercase()})" }
            sub.text = details.joinToString(" · ") { Messages.value(value.fields[it.name]) }.ifBlank { " " }
            val state = Messages.badge(value.syncState)
            badge.text = state ?: ""
            badge.foreground = if (state == "Pending" || state == "New") Style.pending else Style.danger
            panel.background = if (selected) list.selectionBackground else list.background
            main.foreground = if (selected) list.selectionForeground else list.foreground
            return panel
        }
    }
}
