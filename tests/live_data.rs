//! The app's live view of its data against the reference server over real HTTP: each record's
//! sync state, the list of queued changes, sync errors that keep the person's values (retry after
//! fixing, discard for the server's version, across restarts), watched queries, records and
//! counts, and the observable sync status.

mod common;

use common::org::*;
use serde_json::json;
use syncvault::{ChangeKind, ConflictMode, RecordSyncState, RejectionCode, SyncClient, SyncRecord};
use syncvault_server::ServerConfig;

fn config(records: u64) -> ServerConfig {
    ServerConfig {
        records,
        ..Default::default()
    }
}

async fn record(c: &SyncClient, entity: &str, id: &str) -> SyncRecord {
    c.get_record(entity.into(), id.into())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{entity} {id} is on the device"))
}

fn server_text(srv: &syncvault_server::RunningServer, entity: &str, id: &str, f: &str) -> String {
    srv.org.data.get(entity, id).unwrap().fields[f]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_change_stays_as_a_sync_error_until_retried_or_discarded() {
    let srv = server(config(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 50),
        "ada@contoso.example",
    )
    .await;
    sync(&c).await.unwrap();
    let (good, bad) = ("c000000001", "c000000002");
    let server_email = server_text(&srv, "contact", bad, "email");
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Synced
    );

    // Offline: a bad email and a phone on one contact, a good edit on another, and a new contact
    // with a bad email.
    let bad_fields = fields(&[
        ("email", text("not an address")),
        ("phone", text("+1 555 0100")),
    ]);
    c.update_record("contact".into(), bad.into(), bad_fields)
        .await
        .unwrap();
    c.update_record(
        "contact".into(),
        good.into(),
        fields(&[("phone", text("+1 555 0101"))]),
    )
    .await
    .unwrap();
    let new = c
        .create_record(
            "contact".into(),
            fields(&[("full_name", text("Nobody")), ("email", text("nowhere"))]),
        )
        .await
        .unwrap();
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Pending {
            fields: vec!["email".into(), "phone".into()],
            created: false
        }
    );
    let pending = c.pending_changes().await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.record_id.as_str(), p.kind))
            .collect::<Vec<_>>(),
        [
            (bad, ChangeKind::Update),
            (good, ChangeKind::Update),
            (new.as_str(), ChangeKind::Create)
        ]
    );

    // The server refuses two of the three: the person's values stay, marked in error.
    let report = sync(&c).await.unwrap();
    assert_eq!((report.rejected, report.sync_errors), (2, 2), "{report:?}");
    assert_eq!(report.pending_changes, 0);
    assert_eq!(server_text(&srv, "contact", good, "phone"), "+1 555 0101");
    assert_eq!(server_text(&srv, "contact", bad, "email"), server_email);
    assert_eq!(
        local_text(&c, "contact", bad, "email").await.as_deref(),
        Some("not an address"),
        "the person's value is not reverted"
    );
    let errors = c.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 2);
    let e = &errors[0];
    assert_eq!(
        (e.record_id.as_str(), e.code),
        (bad, RejectionCode::InvalidValue)
    );
    assert!(e.server_message.contains("not an email address"), "{e:?}");
    assert_eq!(e.local_fields.get("email"), Some(&text("not an address")));
    assert_eq!(
        e.server_fields.as_ref().unwrap().get("email"),
        Some(&text(&server_email))
    );
    assert!(errors[1].created_offline && errors[1].server_fields.is_none());
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Error {
            sync_error_id: e.id,
            code: RejectionCode::InvalidValue
        }
    );

    // Another user edits the record meanwhile: the download does not overwrite the person's
    // values, and the error's server side follows the server.
    srv.org.data.edit(
        "contact",
        bad,
        json!({"job_title": "Chief"}).as_object().unwrap().clone(),
    );
    let report = sync(&c).await.unwrap();
    assert_eq!(
        report.records_uploaded, 0,
        "an error is not sent again by itself"
    );
    assert_eq!(
        local_text(&c, "contact", bad, "email").await.as_deref(),
        Some("not an address")
    );
    let e = c.sync_errors().await.unwrap().remove(0);
    assert_eq!(
        e.server_fields.as_ref().unwrap().get("job_title"),
        Some(&text("Chief"))
    );

    // Across a restart.
    drop(c);
    let c = SyncClient::with_options(
        dir.path().display().to_string(),
        options(ConflictMode::MergeFields, 50),
    )
    .unwrap();
    c.unlock(ORG_PASSWORD.to_vec()).await.unwrap();
    assert_eq!(c.sync_errors().await.unwrap().len(), 2);

    // Fix the value, retry: it goes up with the next Synchronize, over the server's new version.
    c.update_record(
        "contact".into(),
        bad.into(),
        fields(&[("email", text("ada.fixed@contoso.example"))]),
    )
    .await
    .unwrap();
    assert_eq!(
        c.pending_change_count().await.unwrap(),
        0,
        "edits go into the error"
    );
    c.retry_sync_error(e.id).await.unwrap();
    assert!(matches!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Pending { .. }
    ));
    assert!(c.retry_sync_error(e.id).await.is_err(), "retried once");
    let report = sync(&c).await.unwrap();
    assert_eq!(report.records_uploaded, 1, "{report:?}");
    assert_eq!(
        server_text(&srv, "contact", bad, "email"),
        "ada.fixed@contoso.example"
    );
    assert_eq!(server_text(&srv, "contact", bad, "phone"), "+1 555 0100");
    assert_eq!(server_text(&srv, "contact", bad, "job_title"), "Chief");
    assert_eq!(
        record(&c, "contact", bad).await.sync_state,
        RecordSyncState::Synced
    );

    // Discard the new contact's error: it never existed on the server, so it goes.
    let e = c.sync_errors().await.unwrap().remove(0);
    assert_eq!(e.record_id, new);
    c.discard_sync_error(e.id).await.unwrap();
    assert!(c.get_record("contact".into(), new).await.unwrap().is_none());
    assert!(c.sync_errors().await.unwrap().is_empty());
    assert_eq!(sync(&c).await.unwrap().records_uploaded, 0);
    assert_converged(&c, &srv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn discard_restores_the_servers_version() {
    let srv = server(config(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 50),
        "ada@contoso.example",
    )
    .await;
    sync(&c).await.unwrap();
    let id = "c000000003";
    let before = record(&c, "contact", id).await;
    c.update_record("contact".into(), id.into(), fields(&[("email", text("@"))]))
        .await
        .unwrap();
    assert_eq!(sync(&c).await.unwrap().sync_errors, 1);
    let e = c.sync_errors().await.unwrap().remove(0);
    c.discard_sync_error(e.id).await.unwrap();
    let after = record(&c, "contact", id).await;
    assert_eq!(after.fields, before.fields);
    assert_eq!(after.sync_state, RecordSyncState::Synced);
    assert_eq!(c.pending_change_count().await.unwrap(), 0);
    assert_converged(&c, &srv).await;
}
