//! The pages a person sees at the development provider: the login form (`/authorize`) and the
//! device-code approval page (`/device`). Phone-sized (a viewport and a small stylesheet), every
//! value escaped; the form field names (`request_id`, `username`, `password`, `action`) are what
//! scripts and the testkit's headless login submit.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{
    CLIENT_ID, Code, DEV_PASSWORD, Idp, PendingAuth, allowed_redirect, now, random_token,
    valid_email,
};

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

pub(super) fn redirect_with(uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = url::Url::parse(uri).expect("checked redirect URI");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

pub(super) async fn authorize(
    State(idp): State<Arc<Idp>>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    // Errors about the client or redirect URI are shown here, never redirected (RFC 6749 §4.1.2.1).
    if q.client_id.as_deref() != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, Html("unknown client_id")).into_response();
    }
    let Some(redirect_uri) = q.redirect_uri.filter(|r| allowed_redirect(r)) else {
        return (StatusCode::BAD_REQUEST, Html("redirect_uri not allowed")).into_response();
    };
    let state = q.state.clone();
    let err = |e: &str, d: &str| {
        let mut p = vec![
            ("error", e),
            ("error_description", d),
            ("iss", idp.issuer.as_str()),
        ];
        if let Some(s) = state.as_deref() {
            p.push(("state", s));
        }
        redirect_with(&redirect_uri, &p)
    };
    if q.response_type.as_deref() != Some("code") {
        return err("unsupported_response_type", "only code");
    }
    let (Some(challenge), Some("S256")) =
        (q.code_challenge.clone(), q.code_challenge_method.as_deref())
    else {
        return err("invalid_request", "PKCE with S256 is required");
    };
    let scope = q.scope.unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return err("invalid_scope", "openid is required");
    }
    let id = random_token(16);
    idp.data.lock().unwrap().pending.insert(
        id.clone(),
        PendingAuth {
            redirect_uri: redirect_uri.clone(),
            state: q.state,
            nonce: q.nonce,
            challenge,
            scope,
        },
    );
    login_form(&id, None).into_response()
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A phone-sized page: viewport, a small stylesheet, the body given.
fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    ))
}

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;\
background:#f3f4f6;color:#111}main{max-width:26rem;margin:2rem auto;padding:1.5rem;background:#fff;\
border-radius:.75rem;box-shadow:0 1px 3px #0002}h1{font-size:1.4rem;margin:0 0 .5rem}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}input{box-sizing:border-box;width:100%;\
padding:.7rem;font-size:1rem;border:1px solid #bbb;border-radius:.4rem}\
.actions{display:flex;gap:.5rem;margin-top:1.25rem}button{flex:1;padding:.75rem;font-size:1rem;\
border:0;border-radius:.4rem;background:#2563eb;color:#fff}button.secondary{background:#e5e7eb;\
color:#111}.error{color:#b91c1c;font-weight:600}.hint{color:#555;font-size:.9rem}";

fn login_form(request_id: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in — syncvault development provider",
        &format!(
            "<h1>Sign in</h1><p class=\"hint\">Development provider: any email, password \
             <code>{DEV_PASSWORD}</code>.</p>{error}\
             <form method=\"post\" action=\"authorize\">\
             <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
             <label for=\"username\">Email</label>\
             <input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\">\
             <div class=\"actions\"><button name=\"action\" value=\"login\">Sign in</button>\
             <button class=\"secondary\" name=\"action\" value=\"cancel\">Cancel</button></div>\
             </form>",
            request_id = escape(request_id),
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    request_id: String,
    username: Option<String>,
    password: Option<String>,
    action: Option<String>,
}

pub(super) async fn login(State(idp): State<Arc<Idp>>, Form(f): Form<LoginForm>) -> Response {
    let mut data = idp.data.lock().unwrap();
    let Some(pending) = data.pending.get(&f.request_id) else {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Sign in",
                "<p class=\"error\">This sign-in request expired; start again.</p>",
            ),
        )
            .into_response();
    };
    let mut params: Vec<(&str, String)> = vec![("iss", idp.issuer.clone())];
    if let Some(s) = &pending.state {
        params.push(("state", s.clone()));
    }
    if f.action.as_deref() == Some("cancel") {
        let pending = data.pending.remove(&f.request_id).expect("present");
        params.push(("error", "access_denied".into()));
        params.push(("error_description", "the user cancelled".into()));
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return redirect_with(&pending.redirect_uri, &p);
    }
    let email = f.username.unwrap_or_default().trim().to_lowercase();
    if !valid_email(&email) || f.password.as_deref() != Some(DEV_PASSWORD) {
        return login_form(&f.request_id, Some("Wrong email or password.")).into_response();
    }
    let pending = data.pending.remove(&f.request_id).expect("present");
    let code = random_token(32);
    data.codes.insert(
        code.clone(),
        Code {
            email,
            redirect_uri: pending.redirect_uri.clone(),
            nonce: pending.nonce,
            challenge: pending.challenge,
            scope: pending.scope,
            expires: now() + idp.lifetimes.code.as_secs(),
            used: false,
            family: None,
        },
    );
    params.push(("code", code));
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    redirect_with(&pending.redirect_uri, &p)
}

#[derive(Deserialize)]
pub(super) struct DevicePageQuery {
    user_code: Option<String>,
}

pub(super) async fn device_page(Query(q): Query<DevicePageQuery>) -> Html<String> {
    let code = escape(&q.user_code.unwrap_or_default());
    page(
        "Connect a device — syncvault development provider",
        &format!(
            "<h1>Connect a device</h1><form method=\"post\" action=\"device\">\
             <label for=\"user_code\">Code</label>\
             <input id=\"user_code\" name=\"user_code\" value=\"{code}\" autocomplete=\"off\">\
             <label for=\"username\">Email</label>\
             <input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\">\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\">\
             <div class=\"actions\"><button name=\"action\" value=\"approve\">Approve</button>\
             <button class=\"secondary\" name=\"action\" value=\"deny\">Deny</button></div></form>"
        ),
    )
}

#[derive(Deserialize)]
pub(super) struct DeviceApproveForm {
    user_code: String,
    username: Option<String>,
    password: Option<String>,
    action: Option<String>,
}

pub(super) async fn device_approve(
    State(idp): State<Arc<Idp>>,
    _h: HeaderMap,
    Form(f): Form<DeviceApproveForm>,
) -> Response {
    let mut data = idp.data.lock().unwrap();
    let wanted = f.user_code.trim().to_uppercase();
    let Some(device) = data.devices.values_mut().find(|d| d.user_code == wanted) else {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Connect a device",
                "<p class=\"error\">Unknown or expired code.</p>",
            ),
        )
            .into_response();
    };
    if f.action.as_deref() == Some("deny") {
        device.denied = true;
        return page(
            "Connect a device",
            "<p>Denied. You can close this page.</p>",
        )
        .into_response();
    }
    let email = f.username.unwrap_or_default().trim().to_lowercase();
    if !valid_email(&email) || f.password.as_deref() != Some(DEV_PASSWORD) {
        return (
            StatusCode::UNAUTHORIZED,
            page(
                "Connect a device",
                "<p class=\"error\">Wrong email or password.</p>",
            ),
        )
            .into_response();
    }
    device.approved_email = Some(email);
    (
        [(header::CACHE_CONTROL, "no-store")],
        page(
            "Connect a device",
            "<p>Approved. Return to your device.</p>",
        ),
    )
        .into_response()
}
