//! Credentials user mode: user name and password sent to the organization server, which answers
//! with an access token (no refresh token: the person signs in again when it expires).

use serde_json::json;

use super::{AuthError, TokenSet};
use crate::net::{DEFAULT_BODY_LIMIT, Http};

/// Signs in at the organization's credentials endpoint.
pub async fn sign_in(
    http: &Http,
    endpoint: &str,
    username: &str,
    password: &str,
) -> Result<TokenSet, AuthError> {
    let request = http
        .client()
        .post(endpoint)
        .json(&json!({"username": username, "password": password}));
    let r = http.send(request, DEFAULT_BODY_LIMIT).await?;
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    match r.status.as_u16() {
        200 => {
            let access_token = body["access_token"].as_str().ok_or_else(|| {
                AuthError::OrgProtocol("the credentials answer has no access_token".into())
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs();
            Ok(TokenSet {
                access_token: access_token.to_string(),
                refresh_token: None,
                id_token: None,
                expires_at: body["expires_in"].as_u64().map(|s| now + s),
                issued_at: Some(now),
                subject: None,
                email: Some(username.to_string()),
                name: None,
            })
        }
        401 => Err(AuthError::BadCredentials),
        403 if body["error"] == "user_mode_not_allowed" => {
            Err(AuthError::ModeNotAllowed("credentials"))
        }
        status => Err(AuthError::OrgStatus(status)),
    }
}
