// One record: its typed fields, edited offline and saved (the pending state shows at once), and
// its attachments (add a photo, a thumbnail, download on demand with progress).
package dev.syncvault.sample

import dev.syncvault.Attachment
import dev.syncvault.AttachmentState
import dev.syncvault.FieldInfo
import dev.syncvault.FieldType
import dev.syncvault.FieldValue
import dev.syncvault.SyncException
import dev.syncvault.SyncObserver
import dev.syncvault.SyncProgress
import dev.syncvault.SyncRecord
import dev.syncvault.addAttachment
import dev.syncvault.openAttachment
import dev.syncvault.recordFlow
import java.awt.BorderLayout
import java.awt.FlowLayout
import java.awt.RenderingHints
import java.awt.image.BufferedImage
import java.io.File
import javax.imageio.ImageIO
import javax.swing.ImageIcon
import javax.swing.JCheckBox
import javax.swing.JComponent
import javax.swing.JFileChooser
import javax.swing.JPanel
import javax.swing.JProgressBar
import javax.swing.JScrollPane
import javax.swing.JTextField
import javax.swing.SwingUtilities
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.withContext

/** One field's editor and how to read a typed value back from it. */
private class Editor(val field: FieldInfo) {
    val component: JComponent = when (field.kind) {
        FieldType.BOOLEAN -> JCheckBox(Messages.fieldLabel(field.name))
        else -> JTextField()
    }.named("field_${field.name}")
    val problem = label(" ", Style.small, Style.danger, "problem_${field.name}")

    fun show(value: FieldValue?) {
        when (val c = component) {
            is JCheckBox -> c.isSelected = (value as? FieldValue.Boolean)?.value ?: false
            is JTextField -> c.text = Messages.value(value)
        }
    }

    /** The typed value, or null with [problem] saying why it is not one. */
    fun read(): FieldValue? {
        problem.text = " "
        val c = component
        if (c is JCheckBox) return FieldValue.Boolean(c.isSelected)
        val text = (c as JTextField).text.trim()
        if (text.isEmpty()) return FieldValue.Null
        return when (field.kind) {
            FieldType.INTEGER -> text.toLongOrNull()?.let { FieldValue.Integer(it) }
                .also { if (it == null) problem.text = "Enter a whole number." }
            FieldType.REAL -> text.replace(",", "").toDoubleOrNull()?.let { FieldValue.Real(it) }
                .also { if (it == null) problem.text = "Enter a number." }
            FieldType.TIMESTAMP -> runCatching { java.time.Instant.parse(text) }.getOrNull()?.let { FieldValue.Text(text) }
                .also { if (it == null) problem.text = "Enter a time like 2026-03-01T09:00:00Z." }
            else -> FieldValue.Text(text)
        }
    }
}

/** [image] scaled to [width] pixels wide, off the UI thread. */
private fun thumbnail(image: BufferedImage, width: Int): BufferedImage {
    val height = maxOf(1, image.height * width / maxOf(1, image.width))
    val out = BufferedImage(width, height, BufferedImage.TYPE_INT_RGB)
    val g = out.createGraphics()
    g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR)
    g.drawImage(image, 0, 0, width, height, null)
    g.dispose()
    return out
}

class RecordScreen(private val app: FieldApp) : JPanel(BorderLayout()) {
    private val title = label(" ", Style.title, name = "recordTitle")
    private val state = label(" ", Style.small, Style.muted, "recordState")
    private val form = ScrollColumn()
    private val attachmentsPanel = Column(0)
    private val downloadBar = JProgressBar().named("attachmentProgress").apply { isVisible = false; isStringPainted = true }
    private var editors = listOf<Editor>()
    private var entity = ""
    private var id = ""
    private var shownRecord: SyncRecord? = null
    private var watch: Job? = null

    init {
        add(header("Record", button("Back", "back") { leave() }), BorderLayout.NORTH)
        add(JScrollPane(form).apply { border = null; verticalScrollBar.unitIncrement = 16 }, BorderLayout.CENTER)
    }

    fun open(entity: String, id: String) {
        this.entity = entity
        this.id = id
        watch?.cancel()
        watch = app.launch {
            val fields = app.client.entityFields(entity)
            build(fields)
            app.client.recordFlow(entity, id).collect { show(it) }
        }
    }

    private fun build(fields: List<FieldInfo>) {
        form.removeAll()
        form.row(title, 2).row(state, 12)
        editors = fields.map { Editor(it) }
        for (e in editors) {
            if (e.field.kind != FieldType.BOOLEAN) form.row(label(Messages.fieldLabel(e.field.name)), 2)
            form.row(e.component, 2).row(e.problem, 6)
        }
        val save = button("Save", "save", primary = true) { save() }
        form.row(JPanel(FlowLayout(FlowLayout.LEFT, 0, 0)).apply { add(save) }, 16)
        form.row(label("Attachments", Style.body.deriveFont(java.awt.Font.BOLD)), 4)
        form.row(attachmentsPanel, 4)
        form.row(downloadBar, 4)
        form.row(JPanel(FlowLayout(FlowLayout.LEFT, 0, 0)).apply {
            add(button("Add photo…", "addPhoto") { choosePhoto() })
        })
        form.revalidate()
        form.repaint()
    }

    private fun show(record: SyncRecord?) {
        if (record == null) {
            title.text = "This record is no longer on the device."
            state.text = " "
            return
        }
        val first = shownRecord?.id != record.id
        shownRecord = record
        val titleField = editors.firstOrNull { it.field.kind == FieldType.TEXT }?.field?.name
        title.text = html(Messages.value(record.fields[titleField]).ifEmpty { Messages.entityLabel(entity) })
        state.text = when (val s = record.syncState) {
            is dev.syncvault.RecordSyncState.Synced -> "In step with the organization"
            is dev.syncvault.RecordSyncState.Pending ->
                if (s.created) "New: goes up with the next Synchronize"
                else "Pending: ${s.fields.joinToString { Messages.fieldLabel(it).lowercase() }} go up with the next Synchronize"
            is dev.syncvault.RecordSyncState.Conflict -> "Conflict: changed here and by someone else (see Issues)"
            is dev.syncvault.RecordSyncState.Error -> "Not saved by the organization: ${Messages.rejection(s.code)} (see Issues)"
        }
        state.foreground = if (Messages.badge(record.syncState) == null) Style.muted else Style.pending
        // Keep what the person is typing; fill the editors when the record is first shown.
        if (first) editors.forEach { it.show(record.fields[it.field.name]) }
        loadAttachments()
    }

    private fun save() {
        val record = shownRecord ?: return
        val values = editors.associate { it.field.name to it.read() }
        if (values.values.any { it == null }) {
            app.notify("Some values need fixing before saving.", error = true)
            return
        }
        val changed = values.filter { (name, value) -> (record.fields[name] ?: FieldValue.Null) != value }
            .mapValues { it.value!! }
        if (changed.isEmpty()) {
            app.notify("Nothing changed.")
            return
        }
        app.launch {
            app.client.updateRecord(entity, id, changed)
            app.notify("Saved on this device. It goes up with the next Synchronize.")
        }
    }

    private fun leave() {
        watch?.cancel()
        shownRecord = null
        app.show(Screen.RECORDS)
    }

    private fun loadAttachments() {
        app.launch {
            val list = app.client.attachments(entity, id)
            attachmentsPanel.removeAll()
            if (list.isEmpty()) attachmentsPanel.row(label("None yet.", Style.small, Style.muted))
            for (a in list) attachmentsPanel.row(attachmentRow(a))
            attachmentsPanel.revalidate()
            attachmentsPanel.repaint()
        }
    }

    private fun attachmentRow(a: Attachment): JComponent {
        val row = JPanel(BorderLayout(8, 0))
        val icon = label(" ", name = "thumb_${a.name}")
        row.add(icon, BorderLayout.WEST)
        val kb = (a.size.toLong() + 1023) / 1024
        val stateText = when (a.state) {
            AttachmentState.LOCAL_ONLY, AttachmentState.UPLOADING -> "on this device, goes up with the next Synchronize"
            AttachmentState.SYNCED -> "on this device"
            AttachmentState.NOT_DOWNLOADED -> "not downloaded"
            AttachmentState.DOWNLOADING -> "downloading"
        }
        row.add(label(html("${a.name}\n$kb KB · $stateText"), Style.small), BorderLayout.CENTER)
        if (a.state == AttachmentState.NOT_DOWNLOADED || a.state == AttachmentState.DOWNLOADING) {
            row.add(button("Download", "download_${a.name}") { download(a) }, BorderLayout.EAST)
        } else if (a.mime.startsWith("image/")) {
            app.launch {
                val thumbnail = withContext(Dispatchers.IO) {
                    app.client.openAttachment(a.id).use { ImageIO.read(it) }?.let { thumbnail(it, 64) }
                }
                if (thumbnail != null) {
                    icon.icon = ImageIcon(thumbnail)
                    icon.text = null
                }
            }
        }
        return row
    }

    private fun download(a: Attachment) {
        downloadBar.isVisible = true
        downloadBar.maximum = maxOf(1L, a.size.toLong()).toInt()
        downloadBar.value = 0
        downloadBar.string = "Downloading ${a.name}…"
        app.launch {
            try {
                app.client.downloadAttachment(a.id, object : SyncObserver {
                    override fun onProgress(progress: SyncProgress) {
                        SwingUtilities.invokeLater { downloadBar.value = progress.bytes.toInt() }
                    }
                })
            } finally {
                downloadBar.isVisible = false
            }
            loadAttachments()
        }
    }

    private fun choosePhoto() {
        val chooser = JFileChooser().apply { dialogTitle = "Add a photo" }
        if (chooser.showOpenDialog(this) != JFileChooser.APPROVE_OPTION) return
        addPhoto(chooser.selectedFile)
    }

    /** Attaches [file]; syncvault keeps its own encrypted copy. */
    fun addPhoto(file: File) {
        val mime = java.nio.file.Files.probeContentType(file.toPath()) ?: "application/octet-stream"
        app.launch {
            try {
                app.client.addAttachment(entity, id, file, mime)
                app.notify("${file.name} is attached. It goes up with the next Synchronize.")
            } catch (e: SyncException) {
                app.notify(Messages.of(e), error = true)
            }
            loadAttachments()
        }
    }
}
