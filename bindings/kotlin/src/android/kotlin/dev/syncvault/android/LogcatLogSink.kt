// Hand-written, Android only: syncvault's log events into logcat. Compiled by the Gradle build
// (not by the desktop-JVM tests, which have no android.jar).
package dev.syncvault.android

import android.util.Log
import dev.syncvault.LogLevel
import dev.syncvault.LogSink
import dev.syncvault.initLogging

/**
 * Forwards syncvault's events to logcat under [tag]. The level filter runs in Rust before
 * anything crosses the FFI, so a quiet level costs nothing; syncvault never logs secrets.
 */
class LogcatLogSink(private val tag: String = "syncvault") : LogSink {
    override fun log(level: LogLevel, target: String, message: String) {
        val line = "$target: $message"
        when (level) {
            LogLevel.ERROR -> Log.e(tag, line)
            LogLevel.WARN -> Log.w(tag, line)
            LogLevel.INFO -> Log.i(tag, line)
            LogLevel.DEBUG -> Log.d(tag, line)
            LogLevel.TRACE -> Log.v(tag, line)
        }
    }

    companion object {
        /** Call once, e.g. in `Application.onCreate`; calling again replaces level and sink. */
        fun install(level: LogLevel = LogLevel.INFO, tag: String = "syncvault") =
            initLogging(level, LogcatLogSink(tag))
    }
}
