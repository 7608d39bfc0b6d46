// A minimal test runner for the binding tests on a desktop JVM: no Gradle, no JUnit, just kotlinc.
// Each test is a named block; the run ends with the line "N passed, N failed" and a non-zero exit
// status when anything failed.
package dev.syncvault.tests

import java.nio.file.Files
import java.nio.file.Path
import kotlin.system.exitProcess

class AssertionFailed(message: String) : Exception(message)

fun check(condition: Boolean, message: () -> String) {
    if (!condition) throw AssertionFailed(message())
}

fun <T> assertEquals(expected: T, actual: T, what: String = "value") {
    check(expected == actual) { "$what: expected <$expected>, got <$actual>" }
}

inline fun <reified E : Throwable> assertThrows(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionFailed("expected ${E::class.simpleName}, got ${e::class.qualifiedName}: ${e.message}")
    }
    throw AssertionFailed("expected ${E::class.simpleName}, nothing was thrown")
}

private val tempDirs = mutableListOf<Path>().also { dirs ->
    // Removed when the JVM exits (exitProcess runs the hook): a run leaves nothing in /tmp, so
    // repeated runs on one machine do not fill its disk.
    Runtime.getRuntime().addShutdownHook(Thread {
        synchronized(dirs) { dirs.forEach { it.toFile().deleteRecursively() } }
    })
}

/** A fresh directory under the system's temp directory, deleted when the run ends. */
fun tempDir(prefix: String): Path =
    Files.createTempDirectory("syncvault-kt-$prefix").also { synchronized(tempDirs) { tempDirs.add(it) } }

class Suite {
    private val tests = mutableListOf<Pair<String, () -> Unit>>()

    fun test(name: String, body: () -> Unit) {
        tests += name to body
    }

    fun run(): Int {
        var passed = 0
        var failed = 0
        for ((name, body) in tests) {
            try {
                body()
                passed++
                println("kotlin test $name ... ok")
            } catch (e: Throwable) {
                failed++
                println("kotlin test $name ... FAILED: ${e::class.simpleName}: ${e.message}")
            }
        }
        println("$passed passed, $failed failed")
        return failed
    }
}

fun main() {
    val suite = Suite()
    foundationTests(suite)
    vaultTests(suite)
    signInTests(suite)
    syncTests(suite)
    appLayerTests(suite)
    appErrorTests(suite)
    liveDataTests(suite)
    attachmentTests(suite)
    exitProcess(if (suite.run() == 0) 0 else 1)
}
