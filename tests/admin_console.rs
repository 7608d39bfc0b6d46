//! The organization's half over real HTTP through the Admin Console's JSON API (the pages are
//! tested in a browser by tests/admin/console.spec.mjs): the System Administrator signs in,
//! connects the built-in provider (from then on every login goes through it), imports users from
//! its Graph-shaped directory with a role, assigns a Domain Name by hand, disables a user, and
//! the state survives a restart.

mod common;

use common::org::*;
use serde_json::{Value, json};
use syncvault::{SyncError, UserMode};
use syncvault_server::admin::store::ADMIN_EMAIL;
use syncvault_server::idp::DEV_PASSWORD;
use syncvault_server::{BoundServer, RunningServer, ServerConfig};
use syncvault_testkit::devlogin;

const ADMIN_PASSWORD: &str = "first admin password";

async fn start(data: &std::path::Path, addr: &str) -> RunningServer {
    BoundServer::bind(addr)
        .await
        .unwrap()
        .spawn(ServerConfig {
            data_dir: Some(data.to_path_buf()),
            records: 200,
            admin_password: Some(ADMIN_PASSWORD.into()),
            ..Default::default()
        })
        .unwrap()
}

/// Signs in at the provider as `email` through a server-started flow; returns the callback's JSON.
async fn provider_flow(srv: &RunningServer, authorization_url: &str, email: &str) -> Value {
    let callback = devlogin::login(authorization_url, email, DEV_PASSWORD, false)
        .await
        .unwrap();
    let r = devlogin::client()
        .unwrap()
        .get(&callback)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "callback: {}", r.status());
    let _ = srv;
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_import_assign_disable_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let srv = start(data.path(), "127.0.0.1:0").await;
    let url = srv.url.clone();

    // Sign in with the System Administrator's password; the organization is not connected.
    let (status, session) = api(
        &srv,
        "POST",
        "/session",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{session}");
    let password_token = session["token"].as_str().unwrap().to_string();
    let (_, org) = api(&srv, "GET", "/organization", Some(&password_token), None).await;
    assert!(org["connection"].is_null());
    assert_eq!(org["user_modes"], json!(["oauth", "credentials"]));
    // Ada can still use the organization's password (credentials mode).
    let dir = tempfile::tempdir().unwrap();
    let ada = credentials_client(dir.path(), &url, "ada@contoso.example", b"ada-credentials").await;

    // Connect...: the administrator signs in at the provider with the account to associate.
    let (_, started) = api(&srv, "POST", "/connect", Some(&password_token), None).await;
    let org = provider_flow(
        &srv,
        started["authorization_url"].as_str().unwrap(),
        ADMIN_EMAIL,
    )
    .await;
    assert_eq!(org["connection"]["admin_email"], ADMIN_EMAIL);
    assert_eq!(org["user_modes"], json!(["oauth"]));
    // From now on every login goes through the provider: no credentials mode, no console password.
    let dir2 = tempfile::tempdir().unwrap();
    let grace = syncvault::SyncClient::with_options(dir2.path().display().to_string(), floor_kdf())
        .unwrap();
    grace
        .setup_offline_password(
            url.clone(),
            UserMode::Credentials,
            ORG_PASSWORD.to_vec(),
            ORG_PASSWORD.to_vec(),
        )
        .await
        .unwrap();
    assert!(matches!(
        grace
            .sign_in_with_credentials(
                "grace@contoso.example".into(),
                b"grace-credentials".to_vec()
            )
            .await,
        Err(SyncError::UserModeNotAllowed { .. })
    ));
    let (status, refused) = api(
        &srv,
        "POST",
        "/session",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("provider_sign_in_required"))
    );
    let (status, _) = api(&srv, "GET", "/users", Some(&password_token), None).await;
    assert_eq!(status, 403, "a password session ends with the connection");
    let (_, started) = api(&srv, "POST", "/session/provider", None, None).await;
    let signed = provider_flow(
        &srv,
        started["authorization_url"].as_str().unwrap(),
        ADMIN_EMAIL,
    )
    .await;
    let token = signed["token"].as_str().unwrap().to_string();
    // Someone else at the provider is no administrator.
    let (_, started) = api(&srv, "POST", "/session/provider", None, None).await;
    let callback = devlogin::login(
        started["authorization_url"].as_str().unwrap(),
        "grace@contoso.example",
        DEV_PASSWORD,
        false,
    )
    .await
    .unwrap();
    let r = devlogin::client()
        .unwrap()
        .get(&callback)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // Import Users: Ada (her directory address in another case), Alan, Katherine, and the two
    // accounts that share Margaret's address, with the Field Technician role.
    let (_, rows) = api(&srv, "GET", "/directory", Some(&token), None).await;
    let rows = rows.as_array().unwrap().clone();
    let id_of = |email: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| {
                r["entry"]["email"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(email)
            })
            .map(|r| r["entry"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut ids = id_of("ada@contoso.example");
    ids.extend(id_of("alan@contoso.example"));
    ids.extend(id_of("katherine@contoso.example"));
    ids.extend(id_of("margaret@contoso.example"));
    assert_eq!(ids.len(), 5);
    let (status, plan) = api(
        &srv,
        "POST",
        "/import",
        Some(&token),
        Some(json!({"ids": ids, "roles": ["Field Technician"]})),
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    let actions: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["associate", "create", "create", "duplicate"]);
    assert_eq!(plan[0]["user_id"], "u1", "Ada matched by case-folded email");
    let (_, users) = api(&srv, "GET", "/users", Some(&token), None).await;
    let find = |email: &str| -> Value {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        find("ada@contoso.example")["roles"],
        json!(["Field Technician", "Sales Manager"]),
        "the import adds its roles to the ones Ada had"
    );
    assert!(
        find("margaret@contoso.example").is_null(),
        "duplicates are not merged"
    );
    let alan = find("alan@contoso.example");
    assert!(
        alan["domain_name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{url}/idp|"))
    );

    // Alan works in the Seattle field office.
    let (status, _) = api(
        &srv,
        "PUT",
        &format!("/users/{}", alan["id"].as_str().unwrap()),
        Some(&token),
        Some(
            json!({"name": "Alan Turing", "domain_name": alan["domain_name"], "enabled": true,
                    "roles": ["Field Technician"], "business_unit": "Seattle Field Office"}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let readable = srv.org.readable_records("alan@contoso.example").len() as u64;
    assert!(readable > 0 && readable < 200, "{readable}");

    // A device signs in as an imported user and syncs: the Domain Name picks the user, and
    // the user's role and business unit what it holds.
    let dir3 = tempfile::tempdir().unwrap();
    let device = signed_in_client(
        dir3.path(),
        &url,
        options(syncvault::ConflictMode::MergeFields, 100),
        "alan@contoso.example",
    )
    .await;
    assert_eq!(sync(&device).await.unwrap().records_downloaded, readable);
    assert_eq!(
        device.who_am_i().await.unwrap().org_user_id,
        alan["id"].as_str().map(str::to_string)
    );

    // Resources > Users: a user created by hand gets the provider user to associate as Domain
    // Name; that person's sign-in is then this user even under another email.
    let (_, dorothy) = api(
        &srv,
        "POST",
        "/users",
        Some(&token),
        Some(json!({"email": "d.vaughan@contoso.example", "name": "Dorothy Vaughan"})),
    )
    .await;
    let dorothy_dn = rows
        .iter()
        .find(|r| r["entry"]["email"] == "dorothy@contoso.example")
        .unwrap()["domain_name"]
        .clone();
    let (status, saved) = api(
        &srv,
        "PUT",
        &format!("/users/{}", dorothy["id"].as_str().unwrap()),
        Some(&token),
        Some(json!({"name": "Dorothy Vaughan", "domain_name": dorothy_dn, "enabled": true, "roles": ["Salesperson"]})),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let dir4 = tempfile::tempdir().unwrap();
    let d = signed_in_client(
        dir4.path(),
        &url,
        options(syncvault::ConflictMode::MergeFields, 100),
        "dorothy@contoso.example",
    )
    .await;
    assert_eq!(
        d.who_am_i().await.unwrap().org_user_id,
        dorothy["id"].as_str().map(str::to_string)
    );
    sync(&d).await.unwrap();

    // Disable Alan: his next Synchronize asks him to sign in again, with the reason; his device
    // keeps its unsent edit.
    let (status, _) = api(
        &srv,
        "PUT",
        &format!("/users/{}", alan["id"].as_str().unwrap()),
        Some(&token),
        Some(json!({"name": "Alan Turing", "domain_name": alan["domain_name"], "enabled": false, "roles": []})),
    )
    .await;
    assert_eq!(status, 200);
    // A contact Alan's device holds (his scope is his field office's).
    let held = common::org::local_records(&device).await;
    let (_, contact) = held.keys().find(|(e, _)| e == "contact").unwrap().clone();
    device
        .update_record(
            "contact".into(),
            contact.clone(),
            fields(&[("notes", text("unsent"))]),
        )
        .await
        .unwrap();
    match sync(&device).await {
        Err(SyncError::SignInRequired { reason }) => {
            assert!(reason.contains("disabled"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(device.pending_change_count().await.unwrap(), 1);

    // The devices that synchronized.
    let (_, devices) = api(&srv, "GET", "/devices", Some(&token), None).await;
    assert!(devices.as_array().unwrap().len() >= 2);

    // A restart with the same data keeps users, roles, the connection and the devices.
    drop(srv);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let addr = url.trim_start_matches("http://").to_string();
    let srv = start(data.path(), &addr).await;
    let (status, org) = api(&srv, "GET", "/organization", Some(&token), None).await;
    assert_eq!(status, 200, "the API token survives too");
    assert_eq!(org["connection"]["admin_email"], ADMIN_EMAIL);
    let (_, users) = api(&srv, "GET", "/users", Some(&token), None).await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["email"] == "alan@contoso.example" && u["enabled"] == false)
    );
    let (_, devices) = api(&srv, "GET", "/devices", Some(&token), None).await;
    assert!(devices.as_array().unwrap().len() >= 2);
    drop(ada);
}

#[tokio::test(flavor = "multi_thread")]
async fn brute_force_sign_in_is_slowed() {
    let data = tempfile::tempdir().unwrap();
    let srv = start(data.path(), "127.0.0.1:0").await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, _) = api(
            &srv,
            "POST",
            "/session",
            None,
            Some(json!({"email": ADMIN_EMAIL, "password": "guess"})),
        )
        .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], [401; 5]);
    assert_eq!(statuses[6], 429, "{statuses:?}");
    // Even the right password waits now.
    let (status, _) = api(
        &srv,
        "POST",
        "/session",
        None,
        Some(json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, 429);
}
