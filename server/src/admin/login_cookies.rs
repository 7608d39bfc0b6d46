//! The two cookies of the console's anonymous pages, so that an anonymous request never writes
//! the session: a link from another site arrives without the SameSite=Strict session cookie,
//! and a session made for that request would replace the open tab's (signing it out).
//!
//! - The sign-in forms' CSRF token, double-submit: one random value in a cookie and in the form,
//!   compared on POST. SameSite=Lax, so a cross-site link does not replace it either, while a
//!   cross-site POST arrives without it and is refused.
//! - A Lax hint that this browser holds a console session, so the sign-in page reached from
//!   another site offers to open the console (a same-site navigation, which sends the session)
//!   instead of asking to sign in again. It holds nothing secret and grants nothing.

use axum::http::{HeaderMap, HeaderValue, header};
use tower_sessions::cookie::{Cookie, SameSite};

const LOGIN_CSRF: &str = "syncvault_admin_login";
const SIGNED_IN_HINT: &str = "syncvault_admin_hint";

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

fn set_cookie(name: &'static str, value: String, secure: bool, keep: bool) -> HeaderValue {
    let mut cookie = Cookie::build((name, value))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if !keep {
        cookie = cookie.max_age(tower_sessions::cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&cookie.build().to_string()).expect("a cookie is a header value")
}

/// The sign-in forms' token: the browser's, or a new one with the `Set-Cookie` that stores it.
pub fn login_token(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    match cookie_value(headers, LOGIN_CSRF).filter(|t| t.len() == 43) {
        Some(token) => (token, None),
        None => {
            use base64::Engine;
            let mut b = [0u8; 32];
            rand::fill(&mut b);
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            let cookie = set_cookie(LOGIN_CSRF, token.clone(), secure, true);
            (token, Some(cookie))
        }
    }
}

/// Whether a sign-in form's `csrf` field is the browser's token.
pub fn login_token_matches(headers: &HeaderMap, field: Option<&str>) -> bool {
    match (cookie_value(headers, LOGIN_CSRF), field) {
        (Some(expected), Some(got)) => {
            super::console::constant_eq(expected.as_bytes(), got.as_bytes())
        }
        _ => false,
    }
}

/// Whether the browser says it holds a console session.
pub fn signed_in_hint(headers: &HeaderMap) -> bool {
    cookie_value(headers, SIGNED_IN_HINT).is_some()
}

/// Sets (at sign-in) or clears (at sign-out) the hint.
pub fn set_signed_in_hint(on: bool, secure: bool) -> HeaderValue {
    set_cookie(SIGNED_IN_HINT, if on { "1" } else { "" }.into(), secure, on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_kept_and_checked() {
        let (token, cookie) = login_token(&HeaderMap::new(), true);
        let cookie = cookie.unwrap().to_str().unwrap().to_string();
        assert!(
            cookie.contains("SameSite=Lax") && cookie.contains("Secure"),
            "{cookie}"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {LOGIN_CSRF}={token}")).unwrap(),
        );
        assert_eq!(login_token(&headers, true), (token.clone(), None));
        assert!(login_token_matches(&headers, Some(&token)));
        assert!(!login_token_matches(&headers, Some("forged")));
        assert!(!login_token_matches(&HeaderMap::new(), Some(&token)));
        assert!(!signed_in_hint(&headers));
        let cleared = set_signed_in_hint(false, false);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
    }
}
