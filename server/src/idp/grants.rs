//! The token endpoint: one function per grant (authorization code with PKCE, refresh token with
//! rotation and reuse detection, device code with `slow_down`), behind one dispatch on
//! `grant_type`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{CLIENT_ID, Idp, IdpData, now, oauth_error};

#[derive(Deserialize)]
pub(super) struct TokenForm {
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    device_code: Option<String>,
}

pub(super) async fn token(State(idp): State<Arc<Idp>>, Form(f): Form<TokenForm>) -> Response {
    if f.grant_type == "client_credentials" {
        return super::directory::client_credentials_grant(
            &idp,
            f.client_id.as_deref(),
            f.client_secret.as_deref(),
        );
    }
    if f.client_id.as_deref() != Some(CLIENT_ID) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let mut data = idp.data.lock().unwrap();
    let data = &mut *data;
    match f.grant_type.as_str() {
        "authorization_code" => code_grant(&idp, data, &f),
        "refresh_token" => refresh_grant(&idp, data, &f),
        "urn:ietf:params:oauth:grant-type:device_code" => device_grant(&idp, data, &f),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant type",
        ),
    }
}

/// Authorization code + PKCE (S256): a code is used once; a replay revokes what it produced.
fn code_grant(idp: &Idp, data: &mut IdpData, f: &TokenForm) -> Response {
    let Some(code) = f.code.as_deref().and_then(|c| data.codes.get_mut(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
    };
    if code.used {
        // Replay: revoke what the code produced (RFC 6749 §4.1.2).
        if let Some(family) = code.family.clone() {
            data.revoked_families.insert(family);
        }
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code already used",
        );
    }
    code.used = true;
    if code.expires < now() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code expired");
    }
    if f.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri mismatch",
        );
    }
    let Some(verifier) = f.code_verifier.as_deref() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_verifier required",
        );
    };
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.challenge {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let (email, scope, nonce) = (code.email.clone(), code.scope.clone(), code.nonce.clone());
    idp.code_grants
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (body, family) = idp.issue_tokens(data, &email, &scope, nonce.as_deref(), None);
    if let Some(c) = f.code.as_deref().and_then(|c| data.codes.get_mut(c)) {
        c.family = Some(family);
    }
    Json(body).into_response()
}

/// Refresh with rotation: each refresh token works once; reusing a rotated one revokes its family.
fn refresh_grant(idp: &Idp, data: &mut IdpData, f: &TokenForm) -> Response {
    let Some(old) = f
        .refresh_token
        .as_deref()
        .and_then(|t| data.refresh.get_mut(t))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown refresh token",
        );
    };
    if old.used || data.revoked_families.contains(&old.family) {
        // Reuse of a rotated token: someone has a copy. Revoke the whole family.
        let family = old.family.clone();
        data.revoked_families.insert(family);
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token revoked",
        );
    }
    old.used = true;
    idp.refresh_grants
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (email, scope, family) = (old.email.clone(), old.scope.clone(), old.family.clone());
    let (body, _) = idp.issue_tokens(data, &email, &scope, None, Some(family));
    Json(body).into_response()
}

/// Device code (RFC 8628): pending until approved at the verification page, `slow_down` when
/// polled faster than the interval.
fn device_grant(idp: &Idp, data: &mut IdpData, f: &TokenForm) -> Response {
    let Some(device) = f
        .device_code
        .as_deref()
        .and_then(|d| data.devices.get_mut(d))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown device code",
        );
    };
    let t = now();
    if device.expires < t {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the device code expired",
        );
    }
    if device.denied {
        return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "the user denied");
    }
    let too_fast = device.last_poll.is_some_and(|p| t < p + device.interval);
    device.last_poll = Some(t);
    let Some(email) = device.approved_email.clone() else {
        if too_fast {
            device.interval += 5;
            return oauth_error(StatusCode::BAD_REQUEST, "slow_down", "poll more slowly");
        }
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "waiting for the user",
        );
    };
    let scope = device.scope.clone();
    data.devices
        .remove(f.device_code.as_deref().expect("present"));
    let (body, _) = idp.issue_tokens(data, &email, &scope, None, None);
    Json(body).into_response()
}
