// The begin/complete sign-in pair from the JVM against the reference server's built-in provider,
// started as a real process (`syncvault serve`). The login form is submitted headlessly, as the
// person would in the browser session.
package dev.syncvault.tests

import dev.syncvault.*
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking

internal fun pw(s: String) = s.toByteArray(Charsets.UTF_8)

/** Starts `syncvault serve` on a free port and returns (process, organization URL). */
internal fun startServer(vararg extra: String): Pair<Process, String> {
    val bin = System.getenv("SYNCVAULT_BIN") ?: error("SYNCVAULT_BIN is not set")
    val process = ProcessBuilder(bin, "--json", "serve", "--addr", "127.0.0.1:0", *extra)
        .redirectError(ProcessBuilder.Redirect.DISCARD)
        .start()
    val line = process.inputStream.bufferedReader().readLine() ?: error("the server printed nothing")
    val url = Regex(""""org_url"\s*:\s*"([^"]+)"""").find(line)?.groupValues?.get(1) ?: error("no org_url in $line")
    return process to url
}

/** Submits the development provider's login form; returns the callback URL it redirects to. */
internal fun devLogin(authorizationUrl: String, email: String, cancel: Boolean = false): String {
    val http = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.NEVER).build()
    val page = http.send(HttpRequest.newBuilder(URI(authorizationUrl)).GET().build(), HttpResponse.BodyHandlers.ofString())
    check(page.statusCode() == 200) { "login page: HTTP ${page.statusCode()}" }
    val requestId = Regex("""name="request_id" value="([^"]+)"""").find(page.body())?.groupValues?.get(1)
        ?: error("no login form")
    fun enc(s: String) = URLEncoder.encode(s, Charsets.UTF_8)
    val form = "request_id=${enc(requestId)}&username=${enc(email)}&password=demo&action=${if (cancel) "cancel" else "login"}"
    val answer = http.send(
        HttpRequest.newBuilder(URI(authorizationUrl.substringBefore('?')))
            .header("content-type", "application/x-www-form-urlencoded")
            .POST(HttpRequest.BodyPublishers.ofString(form)).build(),
        HttpResponse.BodyHandlers.discarding(),
    )
    return answer.headers().firstValue("location").orElseThrow { AssertionFailed("no redirect (HTTP ${answer.statusCode()})") }
}

internal val fastOptions = ClientOptions(kdfMemoryKib = 19456u, kdfIterations = 2u, kdfParallelism = 1u)

fun signInTests(suite: Suite) {
    suite.test("begin/complete sign-in against the built-in provider, then the org API") {
        val (server, orgUrl) = startServer()
        try {
            SyncClient.withOptions(tempDir("signin").toString(), fastOptions).use { client ->
                runBlocking {
                    val info = client.discover(orgUrl)
                    assertEquals("Contoso Field Service", info.name, "org name")
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    assertThrows<SyncException.SignInRequired> { client.whoAmI() }

                    val cancelled = client.beginSignIn("dev.syncvault.app:/oauth/callback")
                    assertThrows<SyncException.SignInCancelled> {
                        client.completeSignIn(devLogin(cancelled.url, "ada@contoso.example", cancel = true))
                    }

                    val request = client.beginSignIn("dev.syncvault.app:/oauth/callback")
                    check(request.url.contains("code_challenge_method=S256")) { request.url }
                    val user = client.completeSignIn(devLogin(request.url, "ada@contoso.example"))
                    assertEquals("ada@contoso.example", user.email, "email")
                    assertEquals(true, client.isSignedIn(), "signed in")
                    val me = client.whoAmI()
                    assertEquals("u1", me.orgUserId, "org user by email")
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("synchronize brings up the login page through a Kotlin AuthorizationUi") {
        val (server, orgUrl) = startServer()
        try {
            SyncClient.withOptions(tempDir("ui").toString(), fastOptions).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    val shown = mutableListOf<String>()
                    client.setAuthorizationUi(object : AuthorizationUi {
                        override fun redirectUri() = "dev.syncvault.app:/oauth/callback"
                        override suspend fun authorize(url: String): String {
                            shown += url
                            return devLogin(url, "grace@contoso.example")
                        }
                    })
                    val phases = mutableListOf<SyncPhase>()
                    val observer = object : SyncObserver {
                        override fun onProgress(progress: SyncProgress) {
                            synchronized(phases) { phases += progress.phase }
                        }
                    }
                    val report = client.synchronize(observer)
                    assertEquals(1000uL, report.recordsDownloaded, "records downloaded")
                    assertEquals(1, shown.size, "login pages shown")
                    check(SyncPhase.SIGNING_IN in phases) { "phases: $phases" }
                    assertEquals("grace@contoso.example", client.whoAmI().email, "signed in")
                }
            }
        } finally {
            server.destroy()
        }
    }

    suite.test("LoopbackRedirect hands back the browser's callback, once; cancel and timeout end a wait") {
        runBlocking {
            val redirect = LoopbackRedirect.bind()
            check(redirect.redirectUri().matches(Regex("http://127\\.0\\.0\\.1:\\d+/callback"))) { redirect.redirectUri() }
            val waiting = async(Dispatchers.IO) { redirect.waitForCallback(30u) }
            val http = HttpClient.newHttpClient()
            // A probe on another path is answered 404 and does not end the wait.
            val probe = http.send(
                HttpRequest.newBuilder(URI(redirect.redirectUri().replace("/callback", "/favicon.ico"))).GET().build(),
                HttpResponse.BodyHandlers.discarding(),
            )
            assertEquals(404, probe.statusCode(), "probe status")
            val page = http.send(
                HttpRequest.newBuilder(URI(redirect.redirectUri() + "?code=abc&state=xyz")).GET().build(),
                HttpResponse.BodyHandlers.ofString(),
            )
            assertEquals(200, page.statusCode(), "browser page status")
            assertEquals(redirect.redirectUri() + "?code=abc&state=xyz", waiting.await(), "callback")
            assertThrows<SyncException.AuthorizationUiFailed> { redirect.waitForCallback(1u) }
            redirect.close()

            val cancelled = LoopbackRedirect.bind()
            val wait = async(Dispatchers.IO) { runCatching { cancelled.waitForCallback(30u) } }
            delay(200)
            cancelled.cancel()
            val outcome = wait.await()
            check(outcome.exceptionOrNull() is SyncException.SignInCancelled) { "cancel: $outcome" }
            cancelled.close()

            LoopbackRedirect.bind().use { timed ->
                assertThrows<SyncException.SignInCancelled> { timed.waitForCallback(1u) }
            }
        }
    }

    suite.test("a tampered callback is a typed error") {
        val (server, orgUrl) = startServer()
        try {
            SyncClient.withOptions(tempDir("tamper").toString(), fastOptions).use { client ->
                runBlocking {
                    client.setupOfflinePassword(orgUrl, UserMode.OAUTH, pw("password1"), pw("password1"))
                    val request = client.beginSignIn("dev.syncvault.app:/oauth/callback")
                    val callback = devLogin(request.url, "ada@contoso.example")
                    val forged = callback.replace(Regex("state=[^&]+"), "state=forged")
                    assertThrows<SyncException.SignInRejected> { client.completeSignIn(forged) }
                    assertEquals(false, client.isSignedIn(), "not signed in")
                }
            }
        } finally {
            server.destroy()
        }
    }
}
