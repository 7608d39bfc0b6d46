// The Swing side of the sample: a coroutine dispatcher for the event dispatch thread (what
// Dispatchers.Main is on Android), a watchdog that measures how long the UI thread was ever busy,
// and small builders so every screen names its widgets the same way (the UI test finds them by
// name).
package dev.syncvault.sample

import java.awt.AWTEvent
import java.awt.BorderLayout
import java.awt.Color
import java.awt.Component
import java.awt.Dimension
import java.awt.EventQueue
import java.awt.Font
import java.awt.Toolkit
import javax.swing.BorderFactory
import javax.swing.Box
import javax.swing.BoxLayout
import javax.swing.JButton
import javax.swing.JComponent
import javax.swing.JLabel
import javax.swing.JPanel
import javax.swing.SwingUtilities
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.CoroutineDispatcher

/** The event dispatch thread as a dispatcher: UI state is touched only here. */
object Ui : CoroutineDispatcher() {
    override fun isDispatchNeeded(context: CoroutineContext) = !SwingUtilities.isEventDispatchThread()

    override fun dispatch(context: CoroutineContext, block: Runnable) = SwingUtilities.invokeLater(block)
}

/**
 * Times every event the UI thread dispatches, so the app can say how long it was ever blocked
 * (the sample's promise: never more than 50 ms, because syncvault's calls run off this thread).
 */
object UiWatchdog {
    @Volatile var longestMs = 0.0
        private set
    @Volatile var longestEvent = ""
        private set

    private class TimingQueue : EventQueue() {
        override fun dispatchEvent(event: AWTEvent) {
            val start = System.nanoTime()
            try {
                super.dispatchEvent(event)
            } finally {
                val ms = (System.nanoTime() - start) / 1e6
                if (ms > longestMs) {
                    longestMs = ms
                    longestEvent = event.javaClass.simpleName
                }
            }
        }
    }

    fun install() = Toolkit.getDefaultToolkit().systemEventQueue.push(TimingQueue())

    /** Forget what the start-up (class loading, first layout) cost; measure from here. */
    fun reset() {
        longestMs = 0.0
        longestEvent = ""
    }
}

/** The sample's look, in one place. */
object Style {
    val accent = Color(0x1F, 0x5F, 0xAF)
    val danger = Color(0xB0, 0x20, 0x20)
    val muted = Color(0x5A, 0x5A, 0x5A)
    val pending = Color(0xC2, 0x7C, 0x0E)
    val ok = Color(0x2E, 0x7D, 0x32)
    val title: Font = Font(Font.SANS_SERIF, Font.BOLD, 20)
    val body: Font = Font(Font.SANS_SERIF, Font.PLAIN, 14)
    val small: Font = Font(Font.SANS_SERIF, Font.PLAIN, 12)
}

fun <T : JComponent> T.named(name: String): T = apply { this.name = name }

fun label(text: String, font: Font = Style.body, color: Color? = null, name: String? = null) =
    JLabel(text).apply {
        this.font = font
        if (color != null) foreground = color
        if (name != null) this.name = name
    }

/** A label that wraps: Swing wraps HTML text at the component's width. */
fun paragraph(text: String, color: Color = Style.muted, name: String? = null) =
    label(html(text), Style.body, color, name)

fun html(text: String) = "<html>" + text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>") + "</html>"

fun button(text: String, name: String, primary: Boolean = false, action: () -> Unit) =
    JButton(text).apply {
        this.name = name
        font = if (primary) Style.body.deriveFont(Font.BOLD) else Style.body
        if (primary) {
            background = Style.accent
            foreground = Color.WHITE
            isOpaque = true
        }
        addActionListener { action() }
    }

/** A vertical column with a margin, the shape of every form screen. */
class Column(margin: Int = 16) : JPanel() {
    init {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        border = BorderFactory.createEmptyBorder(margin, margin, margin, margin)
    }

    fun row(component: Component, gap: Int = 8): Column {
        if (component is JComponent) component.alignmentX = Component.LEFT_ALIGNMENT
        if (component is JComponent && component !is JLabel) {
            component.maximumSize = Dimension(Int.MAX_VALUE, component.preferredSize.height)
        }
        add(component)
        add(Box.createVerticalStrut(gap))
        return this
    }
}

/** A header bar: a title on the left, optional actions on the right. */
fun header(title: String, vararg actions: JComponent): JPanel = JPanel(BorderLayout()).apply {
    border = BorderFactory.createEmptyBorder(10, 12, 10, 12)
    background = Style.accent
    add(label(title, Style.title, Color.WHITE), BorderLayout.WEST)
    if (actions.isNotEmpty()) {
        val right = JPanel().apply { isOpaque = false }
        actions.forEach { right.add(it) }
        add(right, BorderLayout.EAST)
    }
}

/** Finds a component by name under [root] (the UI test's handle on the window). */
fun findNamed(root: Component, name: String): Component? {
    if (root.name == name && root.isShowing) return root
    if (root is java.awt.Container) {
        for (child in root.components) findNamed(child, name)?.let { return it }
    }
    return null
}
