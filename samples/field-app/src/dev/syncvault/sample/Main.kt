// Runs the sample: `scripts/run-sample-app [ORG_URL]` (docs/mobile.md, "The sample app").
package dev.syncvault.sample

import java.io.File
import javax.swing.SwingUtilities
import javax.swing.UIManager

fun main(args: Array<String>) {
    val dataDir = System.getProperty("syncvault.sample.data")
        ?: File(System.getProperty("user.home"), ".syncvault-sample").path
    File(dataDir).mkdirs()
    val config = AppConfig(dataDir = dataDir, suggestedOrgUrl = args.firstOrNull())
    SwingUtilities.invokeLater {
        UiWatchdog.install()
        UIManager.setLookAndFeel(UIManager.getCrossPlatformLookAndFeelClassName())
        FieldApp(config).start()
    }
}
