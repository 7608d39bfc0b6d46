//! Who may sign in, and as whom (docs/admin.md, "Who may sign in"), against a real OpenID
//! Connect provider that names people the way Microsoft Entra ID does: npm `oidc-provider` in
//! its Entra mode (tests/oidc/provider.mjs: `tid`, `oid`, `preferred_username`, no `email` in the
//! access token, a Graph-shaped directory). The seed's flow in both orders (users imported and a
//! Domain Name picked by hand before Connect, others imported after it), then every account the
//! administrator did not let in: a tenant account never imported, a second account with a
//! linked user's email, another tenant's account; a credentials device across Connect, a user
//! disabled while their device syncs, and users created at a first sign-in only where allowed
//! and then without a role.

mod common;

use common::oidc_node::{Node, start_provider, walk_interactions};
use common::org::{ORG_PASSWORD, api, credentials_client, fields, floor_kdf, sync, text};
use serde_json::{Value, json};
use std::sync::Arc;
use syncvault::{SyncClient, SyncError, UserMode};
use syncvault_server::admin::directory::DirectorySource;
use syncvault_server::admin::store::ADMIN_EMAIL;
use syncvault_server::{BoundServer, ProviderConfig, RunningServer, ServerConfig};

const ADMIN_PASSWORD: &str = "first admin password";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";
const TENANT: &str = "contoso-tenant";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn setup() -> (Node, RunningServer) {
    let bound = BoundServer::bind("127.0.0.1:0").await.unwrap();
    let org_url = bound.url();
    let node = start_provider(&org_url, 600, None, true);
    let issuer = node.issuer.clone();
    let srv = bound
        .spawn(ServerConfig {
            provider: ProviderConfig::External {
                issuer: issuer.clone(),
                audience: org_url,
            },
            directory: Some(DirectorySource {
                users_url: format!("{issuer}/v1.0/users"),
                token_url: format!("{issuer}/graph/token"),
                client_id: "graph-reader".into(),
                client_secret: "graph-secret".into(),
                scope: None,
            }),
            admin_password: Some(ADMIN_PASSWORD.into()),
            records: 200,
            ..Default::default()
        })
        .unwrap();
    (node, srv)
}

/// An administrator's provider sign-in the server started (Connect, API login): the provider's
/// forms as `login`, then the server's callback; returns its status and JSON.
async fn admin_flow(authorization_url: &str, login: &str) -> (u16, Value) {
    let http = http();
    let callback = walk_interactions(&http, authorization_url, login, |u| {
        u.contains("/admin/oauth/callback")
    })
    .await;
    let r = http.get(&callback).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A device set up for the organization (OAuth), signed in at the provider as `login`.
async fn device(url: &str, login: &str) -> (tempfile::TempDir, Arc<SyncClient>) {
    let dir = tempfile::tempdir().unwrap();
    let c = SyncClient::with_options(dir.path().display().to_string(), floor_kdf()).unwrap();
    c.setup_offline_password(
        url.into(),
        UserMode::Oauth,
        ORG_PASSWORD.to_vec(),
        ORG_PASSWORD.to_vec(),
    )
    .await
    .unwrap();
    let request = c.begin_sign_in(REDIRECT.into()).await.unwrap();
    let callback =
        walk_interactions(&http(), &request.url, login, |u| u.starts_with(REDIRECT)).await;
    c.complete_sign_in(callback).await.unwrap();
    (dir, c)
}

fn not_a_member(result: Result<impl std::fmt::Debug, SyncError>, words: &str) {
    match result {
        Err(SyncError::NotAMember { reason }) => assert!(reason.contains(words), "{reason}"),
        other => panic!("expected NotAMember ({words}), got {other:?}"),
    }
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|u| u[key] == value)
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_people_the_administrator_let_in_sign_in() {
    let (node, srv) = setup().await;
    let url = srv.url.clone();
    let issuer = node.issuer.clone();
    let (_, session) = api(
        &srv,
        "POST",
        "/session",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    let token = session["token"].as_str().unwrap().to_string();
    let t = Some(token.as_str());
    let (_, org) = api(&srv, "GET", "/organization", t, None).await;
    assert_eq!(
        org["sign_in_policy"],
        json!({"match_email": false, "provision_unknown": false}),
        "an external provider's organization matches and creates nobody by default"
    );

    // Before Connect: Ada signs in with the organization's password (credentials mode).
    let cred_dir = tempfile::tempdir().unwrap();
    let cred = credentials_client(
        cred_dir.path(),
        &url,
        "ada@contoso.example",
        b"ada-credentials",
    )
    .await;
    sync(&cred).await.unwrap();

    // Before Connect the tenant is unknown: Ada is imported, Dorothy's provider account is
    // picked by hand for a user with another email.
    let (_, rows) = api(&srv, "GET", "/directory", t, None).await;
    let ada_row = row(&rows, "ada@contoso.example");
    let ada_oid = ada_row["entry"]["id"].as_str().unwrap().to_string();
    assert_eq!(ada_row["domain_name"], format!("{issuer}|{ada_oid}"));
    let (status, plan) = api(
        &srv,
        "POST",
        "/import",
        t,
        Some(json!({"ids": [ada_oid], "roles": ["Salesperson"]})),
    )
    .await;
    assert_eq!(
        (status, plan[0]["action"].as_str()),
        (200, Some("associate"))
    );
    let (_, dorothy) = api(
        &srv,
        "POST",
        "/users",
        t,
        Some(json!({"email": "d.vaughan@contoso.example", "name": "Dorothy Vaughan"})),
    )
    .await;
    let dorothy_row = row(&rows, "dorothy@contoso.example");
    let (status, _) = api(
        &srv,
        "PUT",
        &format!("/users/{}", dorothy["id"].as_str().unwrap()),
        t,
        Some(
            json!({"name": "Dorothy Vaughan", "domain_name": dorothy_row["domain_name"],
                    "enabled": true, "roles": ["Salesperson"]}),
        ),
    )
    .await;
    assert_eq!(status, 200);

    // Connect: the administrator's account is associated and the tenant recorded; the names
    // recorded before it are completed.
    let (_, started) = api(&srv, "POST", "/connect", t, None).await;
    let (status, org) =
        admin_flow(started["authorization_url"].as_str().unwrap(), ADMIN_EMAIL).await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(org["connection"]["tenant"], TENANT);
    let (_, started) = api(&srv, "POST", "/session/provider", None, None).await;
    let (status, signed) =
        admin_flow(started["authorization_url"].as_str().unwrap(), ADMIN_EMAIL).await;
    assert_eq!(status, 200, "{signed}");
    let token = signed["token"].as_str().unwrap().to_string();
    let t = Some(token.as_str());
    let (_, users) = api(&srv, "GET", "/users", t, None).await;
    assert_eq!(
        find(&users, "email", "ada@contoso.example")["domain_name"],
        format!("{issuer}|{TENANT}|{ada_oid}")
    );

    // Connect ended the credentials session at once: the device must sign in again.
    match sync(&cred).await {
        Err(SyncError::SignInRequired { .. }) => {}
        other => panic!("a credentials session outlived Connect: {other:?}"),
    }

    // The import page shows both as linked; importing Ada again changes nothing, Grace (a
    // seeded user without a Domain Name) is associated by her email.
    let (_, rows) = api(&srv, "GET", "/directory", t, None).await;
    assert_eq!(
        row(&rows, "ada@contoso.example")["org_user"]["email"],
        "ada@contoso.example"
    );
    assert_eq!(
        row(&rows, "dorothy@contoso.example")["org_user"]["email"],
        "d.vaughan@contoso.example"
    );
    let grace_oid = row(&rows, "grace@contoso.example")["entry"]["id"].clone();
    let (_, plan) = api(
        &srv,
        "POST",
        "/import",
        t,
        Some(json!({"ids": [ada_oid, grace_oid], "roles": ["Salesperson"]})),
    )
    .await;
    let actions: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["already_linked", "associate"], "{plan}");

    // The people let in sign in as themselves, with tokens that carry no email.
    let (_, users) = api(&srv, "GET", "/users", t, None).await;
    let id_of = |email: &str| {
        find(&users, "email", email)["id"]
            .as_str()
            .map(str::to_string)
    };
    for (login, user) in [
        ("ada@contoso.example", "ada@contoso.example"),
        ("dorothy@contoso.example", "d.vaughan@contoso.example"),
        ("grace@contoso.example", "grace@contoso.example"),
    ] {
        let (_dir, c) = device(&url, login).await;
        assert_eq!(
            c.who_am_i().await.unwrap().org_user_id,
            id_of(user),
            "{login}"
        );
        sync(&c).await.unwrap();
    }

    // Nobody else: a tenant account never imported, a second account with Ada's email,
    // another tenant's accounts of the same issuer. Nothing was created or linked for them.
    let before = users.as_array().unwrap().len();
    let (_d1, alan) = device(&url, "alan@contoso.example").await;
    not_a_member(sync(&alan).await, "neither imported nor assigned");
    let (_d2, second) = device(&url, "ada@contoso.example#2").await;
    not_a_member(
        second.who_am_i().await,
        "linked to another provider account",
    );
    not_a_member(sync(&second).await, "linked to another provider account");
    let (_d3, other) = device(&url, "fabrikam/ada@contoso.example").await;
    not_a_member(sync(&other).await, "another tenant");
    let (_d4, stranger) = device(&url, "fabrikam/newhire@fabrikam.example").await;
    not_a_member(sync(&stranger).await, "another tenant");
    let (_, users) = api(&srv, "GET", "/users", t, None).await;
    assert_eq!(users.as_array().unwrap().len(), before);
    assert_eq!(
        find(&users, "email", "ada@contoso.example")["domain_name"],
        format!("{issuer}|{TENANT}|{ada_oid}")
    );

    // Grace is disabled while her device syncs: refused with the reason, her unsent edit kept;
    // re-enabled, the same device syncs again with the tokens it has (the provider's sessions
    // are the provider's: docs/admin.md says so).
    let (_dg, grace) = device(&url, "grace@contoso.example").await;
    sync(&grace).await.unwrap();
    let grace_user = find(&users, "email", "grace@contoso.example").clone();
    let save = |enabled: bool| {
        json!({"name": grace_user["name"], "domain_name": grace_user["domain_name"],
               "enabled": enabled, "roles": ["Salesperson"]})
    };
    let path = format!("/users/{}", grace_user["id"].as_str().unwrap());
    api(&srv, "PUT", &path, t, Some(save(false))).await;
    let held = common::org::local_records(&grace).await;
    let (_, contact) = held.keys().find(|(e, _)| e == "contact").unwrap().clone();
    grace
        .update_record(
            "contact".into(),
            contact,
            fields(&[("notes", text("unsent"))]),
        )
        .await
        .unwrap();
    match sync(&grace).await {
        Err(SyncError::SignInRequired { reason }) => assert!(reason.contains("disabled")),
        other => panic!("{other:?}"),
    }
    assert_eq!(grace.pending_change_count().await.unwrap(), 1);
    api(&srv, "PUT", &path, t, Some(save(true))).await;
    sync(&grace).await.unwrap();
    assert_eq!(grace.pending_change_count().await.unwrap(), 0);

    // Where the administrator allows it, an unknown tenant account gets a user with no role,
    // which the Users page lists, and no records; another tenant's still gets nothing.
    let (status, org) = api(
        &srv,
        "PUT",
        "/sign-in-policy",
        t,
        Some(json!({"match_email": false, "provision_unknown": true})),
    )
    .await;
    assert_eq!(
        (status, org["sign_in_policy"]["provision_unknown"].as_bool()),
        (200, Some(true))
    );
    let (_dk, katherine) = device(&url, "katherine@contoso.example").await;
    assert_eq!(sync(&katherine).await.unwrap().records_downloaded, 0);
    let (_, users) = api(&srv, "GET", "/users", t, None).await;
    let created = find(&users, "email", "katherine@contoso.example");
    assert_eq!(created["roles"], json!([]));
    assert!(created["domain_name"].as_str().unwrap().contains(TENANT));
    not_a_member(sync(&stranger).await, "another tenant");
    drop(node);
}

/// The directory row of `email` (case-folded).
fn row(rows: &Value, email: &str) -> Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["entry"]["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{email} is not in the directory"))
}
