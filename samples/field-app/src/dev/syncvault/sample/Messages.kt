// What the person reads when something goes wrong: plain sentences chosen by the error's case,
// never a stack trace. syncvault's own message (`e.message`) is already written for people; the
// cases below say what to do next.
package dev.syncvault.sample

import dev.syncvault.FieldValue
import dev.syncvault.RecordSyncState
import dev.syncvault.RejectionCode
import dev.syncvault.SyncException
import dev.syncvault.UrlProblem
import java.text.NumberFormat

object Messages {
    fun of(e: Throwable): String = when (e) {
        is SyncException.WrongPassword -> when (e.attemptsLeft) {
            0u -> "Wrong password. The offline data was erased."
            1u -> "Wrong password. One attempt left: after another wrong password the offline data is erased."
            else -> "Wrong password. ${e.attemptsLeft} attempts left."
        }
        is SyncException.PasswordMismatch -> "The two passwords are not the same."
        is SyncException.WeakPassword -> "The password needs at least ${e.minLength} characters."
        is SyncException.InvalidOrganizationUrl -> urlProblem(e.problem)
        is SyncException.SignInCancelled -> "Sign-in was cancelled. Press Synchronize to try again."
        is SyncException.SignInRequired -> "Please sign in again. Press Synchronize."
        is SyncException.NotAMember -> "This account is not a user of the organization. Ask your administrator to add you."
        is SyncException.Network -> "The organization cannot be reached. Your changes are kept; try again when you are online."
        is SyncException.TimedOut -> "The organization took too long to answer. Your changes are kept; try again."
        is SyncException.Cancelled -> "Synchronize was cancelled. What arrived is kept."
        is SyncException.VaultWiped -> "The offline data was erased on this device."
        is SyncException.Locked -> "The offline data is locked."
        is SyncException -> e.message ?: "Something went wrong."
        else -> "Something went wrong (${e.javaClass.simpleName})."
    }

    fun urlProblem(problem: UrlProblem): String = when (problem) {
        UrlProblem.EMPTY -> "Enter your organization's address."
        UrlProblem.INVALID_CHARACTERS -> "The address contains characters that cannot be in a web address."
        UrlProblem.UNSUPPORTED_SCHEME -> "The address must start with https://."
        UrlProblem.INSECURE_SCHEME -> "Use https://: http:// would send your sign-in in clear."
        UrlProblem.HAS_CREDENTIALS -> "Leave the user name and password out of the address."
        UrlProblem.HAS_QUERY, UrlProblem.HAS_FRAGMENT -> "Use only the organization's address, without ? or #."
        UrlProblem.INVALID_HOST -> "That is not a valid host name."
        UrlProblem.MALFORMED -> "That is not a web address."
        UrlProblem.NOT_AN_ORGANIZATION -> "No organization answers at this address."
    }

    fun rejection(code: RejectionCode): String = when (code) {
        RejectionCode.INVALID_VALUE -> "A value is not valid"
        RejectionCode.INVALID_FIELD -> "A field is not known to the organization"
        RejectionCode.NOT_FOUND -> "The record no longer exists"
        RejectionCode.FORBIDDEN -> "Your role does not allow this change"
        RejectionCode.OUT_OF_SCOPE -> "The record is no longer assigned to you"
        RejectionCode.ATTACHMENT_CONTENT_MISSING -> "An attachment's content did not arrive"
        else -> "The organization refused the change"
    }

    /** The row badge for a record's sync state; null when it is in step with the server. */
    fun badge(state: RecordSyncState): String? = when (state) {
        is RecordSyncState.Synced -> null
        is RecordSyncState.Pending -> if (state.created) "New" else "Pending"
        is RecordSyncState.Conflict -> "Conflict"
        is RecordSyncState.Error -> "Not saved"
    }

    private val numbers: NumberFormat = NumberFormat.getIntegerInstance(java.util.Locale.US)

    fun count(n: ULong): String = numbers.format(n.toLong())

    /** "1 change", "3 changes". */
    fun plural(n: ULong, noun: String): String = "${count(n)} $noun" + if (n == 1uL) "" else "s"

    fun value(v: FieldValue?): String = when (v) {
        null, is FieldValue.Null -> ""
        is FieldValue.Text -> v.value
        is FieldValue.Integer -> v.value.toString()
        is FieldValue.Real -> if (v.value % 1.0 == 0.0) v.value.toLong().toString() else v.value.toString()
        is FieldValue.Boolean -> if (v.value) "Yes" else "No"
    }

    /** "annual_revenue" → "Annual revenue". */
    fun fieldLabel(name: String): String =
        name.removeSuffix("_id").replace('_', ' ').replaceFirstChar { it.uppercase() }

    /** "activity" → "Activities". */
    fun entityLabel(entity: String): String {
        val word = entity.replaceFirstChar { it.uppercase() }
        return if (word.endsWith("y")) word.dropLast(1) + "ies" else word + "s"
    }
}

object Reports {
    /** One line about a finished Synchronize, for the banner. */
    fun summary(r: dev.syncvault.SyncReport): String {
        val parts = mutableListOf<String>()
        parts += "${Messages.count(r.recordsDownloaded)} down, ${Messages.count(r.recordsUploaded)} up"
        if (r.conflictsPending > 0uL) parts += Messages.plural(r.conflictsPending, "conflict") + " to decide"
        if (r.syncErrors > 0uL) parts += Messages.plural(r.syncErrors, "change") + " refused"
        if (r.pendingChanges > 0uL) parts += Messages.plural(r.pendingChanges, "change") + " still waiting"
        return "Synchronized: " + parts.joinToString(", ") + String.format(java.util.Locale.US, " in %.1f s.", r.seconds)
    }
}
