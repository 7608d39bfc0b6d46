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
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.collect

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

    private val trace = System.getenv("SAMPLE_TRACE_UI") != null
    @Volatile private var runningSince = 0L
    private var depth = 0
    private var pumped = false

    private class TimingQueue : EventQueue() {
        override fun dispatchEvent(event: AWTEvent) {
            // A modal dialog runs a nested event loop inside the event that opened it: the
            // window stays responsive, so such an outer event is not counted as blocking.
            if (depth > 0) pumped = true
            depth++
            val start = System.nanoTime()
            if (depth == 1) {
                pumped = false
                runningSince = start
            }
            try {
                super.dispatchEvent(event)
            } finally {
                depth--
                if (depth == 0) runningSince = 0L
                val ms = (System.nanoTime() - start) / 1e6
                if (ms > longestMs && !(depth == 0 && pumped)) {
                    longestMs = ms
                    longestEvent = event.paramString().substringBefore(",when=").take(200)
                }
            }
        }
    }

    /** With SAMPLE_TRACE_UI set: prints the UI thread's stack when one event runs over 30 ms. */
    private fun startTracer(edt: Thread) = Thread {
        var reported = 0L
        while (true) {
            Thread.sleep(10)
            val since = runningSince
            if (since != 0L && since != reported && System.nanoTime() - since > 30_000_000) {
                reported = since
                System.err.println("ui: busy over 30 ms at\n  " + edt.stackTrace.take(14).joinToString("\n  "))
            }
        }
    }.apply { isDaemon = true; start() }

    /** Call on the UI thread. */
    fun install() {
        Toolkit.getDefaultToolkit().systemEventQueue.push(TimingQueue())
        if (trace) startTracer(Thread.currentThread())
    }

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
fun paragraph(text: String, color: Color = Style.muted, name: String? = null, font: Font = Style.body): JLabel =
    WrappingLabel().apply {
        this.text = html(text)
        this.font = font
        foreground = color
        if (name != null) this.name = name
    }

/**
 * A label whose HTML text wraps at the width its column gives it, and whose preferred height is
 * that of the wrapped text (a plain JLabel asks for one line and is clipped).
 */
class WrappingLabel : JLabel() {
    override fun getPreferredSize(): Dimension {
        val view = getClientProperty(javax.swing.plaf.basic.BasicHTML.propertyKey) as? javax.swing.text.View
            ?: return super.getPreferredSize()
        val container = parent ?: return super.getPreferredSize()
        val width = container.width - container.insets.left - container.insets.right
        if (width <= 0) return super.getPreferredSize()
        view.setSize(width.toFloat(), 0f)
        return Dimension(width, view.getPreferredSpan(javax.swing.text.View.Y_AXIS).toInt() + 2)
    }

    override fun getMaximumSize(): Dimension = Dimension(Int.MAX_VALUE, preferredSize.height)

    private var laidOutWidth = -1

    /** The first layout ran before the column's width was known: lay out again with it. */
    override fun setBounds(x: Int, y: Int, width: Int, height: Int) {
        super.setBounds(x, y, width, height)
        if (width != laidOutWidth) {
            laidOutWidth = width
            SwingUtilities.invokeLater { revalidate() }
        }
    }
}

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
open class Column(margin: Int = 16) : JPanel() {
    init {
        layout = BoxLayout(this, BoxLayout.Y_AXIS)
        border = BorderFactory.createEmptyBorder(margin, margin, margin, margin)
    }

    fun row(component: Component, gap: Int = 8): Column {
        if (component is JComponent) component.alignmentX = Component.LEFT_ALIGNMENT
        if (component is javax.swing.text.JTextComponent) {
            component.border = BorderFactory.createCompoundBorder(component.border, BorderFactory.createEmptyBorder(3, 4, 3, 4))
        }
        // One-line widgets stretch sideways only; panels and labels keep their own height, which
        // grows with what they hold (a maximum fixed now would clip rows added later).
        if (component is javax.swing.text.JTextComponent || component is javax.swing.AbstractButton ||
            component is javax.swing.JProgressBar || component is javax.swing.JComboBox<*>
        ) {
            component.maximumSize = Dimension(Int.MAX_VALUE, component.preferredSize.height)
        }
        add(component)
        add(Box.createVerticalStrut(gap))
        return this
    }
}

/** A column inside a scroll pane that follows the pane's width, so its text wraps instead of scrolling sideways. */
class ScrollColumn(margin: Int = 16) : Column(margin), javax.swing.Scrollable {
    override fun getPreferredScrollableViewportSize(): Dimension = preferredSize
    override fun getScrollableUnitIncrement(r: java.awt.Rectangle, o: Int, d: Int) = 16
    override fun getScrollableBlockIncrement(r: java.awt.Rectangle, o: Int, d: Int) = r.height
    override fun getScrollableTracksViewportWidth() = true
    override fun getScrollableTracksViewportHeight() = false
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

/**
 * Loads the classes of the screens not yet shown on a background thread while the person reads
 * the first one: a cold JVM otherwise defines them on the UI thread the first time a screen opens
 * (40-120 ms here), which is the only thing that ever held this app's UI thread that long.
 */
object Warmup {
    private val classes = listOf(
        "javax.swing.JList", "javax.swing.JScrollPane", "javax.swing.JTabbedPane", "javax.swing.JProgressBar",
        "javax.swing.JPasswordField", "javax.swing.JCheckBox", "javax.swing.JRadioButton", "javax.swing.JFileChooser",
        "javax.swing.plaf.metal.MetalScrollBarUI", "javax.swing.plaf.metal.MetalScrollButton",
        "javax.swing.plaf.metal.MetalTabbedPaneUI", "javax.swing.plaf.metal.MetalProgressBarUI",
        "javax.swing.plaf.metal.MetalCheckBoxUI", "javax.swing.plaf.metal.MetalRadioButtonUI",
        "javax.swing.plaf.basic.BasicListUI", "javax.swing.plaf.basic.BasicPasswordFieldUI",
        "javax.swing.plaf.metal.MetalFileChooserUI", "javax.imageio.ImageIO",
        "dev.syncvault.sample.RecordsScreen", "dev.syncvault.sample.EntityTab", "dev.syncvault.sample.RecordScreen",
        "dev.syncvault.sample.IssuesScreen", "dev.syncvault.sample.LockScreen", "dev.syncvault.sample.SettingsScreen",
        "dev.syncvault.sample.SignInScreen", "dev.syncvault.sample.CredentialsScreen",
    )

    fun start() = Thread {
        val loader = Warmup::class.java.classLoader
        for (name in classes) runCatching { Class.forName(name, true, loader) }
        // The HTML views that wrapping labels use: built once, never shown.
        runCatching { javax.swing.plaf.basic.BasicHTML.createHTMLView(JLabel(), "<html><b>x</b><br>y</html>") }
        // The glyphs of the app's fonts, rasterized into the shared cache.
        runCatching {
            val g = java.awt.image.BufferedImage(8, 8, java.awt.image.BufferedImage.TYPE_INT_RGB).createGraphics()
            val text = (' '..'~').joinToString("") + "…·✓—“”"
            for (font in listOf(Style.title, Style.body, Style.body.deriveFont(Font.BOLD), Style.small, Style.small.deriveFont(Font.BOLD))) {
                g.font = font
                g.drawString(text, 0, 0)
            }
            g.dispose()
        }
        // The coroutine machinery the screens' flows use.
        runCatching {
            kotlinx.coroutines.runBlocking {
                kotlinx.coroutines.flow.callbackFlow<Int> {
                    trySend(1)
                    close()
                    awaitClose { }
                }.buffer(kotlinx.coroutines.channels.Channel.CONFLATED).collect { }
            }
        }
    }.apply { isDaemon = true; priority = Thread.MIN_PRIORITY; start() }
}
