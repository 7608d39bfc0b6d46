//! What syncs to whom (docs/protocol.md, "Scope"): against the reference server over real HTTP,
//! each device holds exactly what its user may read (checked against the server's own query),
//! records move with their owner, roles and sync filters change what a device holds without a
//! full download, and a scope that changes under a long initial sync still converges.

mod common;

use std::sync::Arc;

use common::org::*;
use serde_json::json;
use syncvault::{ConflictMode, RecordQuery, RecordSyncState, RejectionCode, SyncClient};
use syncvault_server::admin::store::{Depth, Privilege, Role, UserEdit};
use syncvault_server::sync::scope::SyncFilter;
use syncvault_server::{RunningServer, ServerConfig};
use syncvault_testkit::rng::Rng;

const TECH1: &str = "tech-01-1@contoso.example";
const TECH2: &str = "tech-02-1@contoso.example";

async fn org(records: u64) -> RunningServer {
    server(ServerConfig {
        records,
        ..Default::default()
    })
    .await
}

async fn device(dir: &tempfile::TempDir, srv: &RunningServer, user: &str) -> Arc<SyncClient> {
    signed_in_client(
        dir.path(),
        &srv.url,
        options(ConflictMode::MergeFields, 25),
        user,
    )
    .await
}

fn user_id(srv: &RunningServer, email: &str) -> String {
    srv.org.store.user_by_email(email).unwrap().unwrap().id
}

/// Sets a user's roles and business unit as the administrator does.
fn set_roles(srv: &RunningServer, email: &str, roles: &[&str], unit: Option<&str>) {
    let user = srv.org.store.user_by_email(email).unwrap().unwrap();
    srv.org
        .store
        .update_user(
            &user.id,
            &UserEdit {
                roles: roles.iter().map(|r| r.to_string()).collect(),
                business_unit: unit.map(str::to_string),
                ..UserEdit::from(&user)
            },
        )
        .unwrap();
}

async fn holds_its_scope(c: &SyncClient, srv: &RunningServer, email: &str) {
    let expected = srv.org.readable_records(email);
    assert!(!expected.is_empty(), "{email} may read something");
    assert_holds(c, expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_device_holds_exactly_what_its_user_may_read() {
    let srv = org(2000).await;
    // Grace sells in Prague: accounts and contacts of her unit, her own activities.
    set_roles(
        &srv,
        "grace@contoso.example",
        &["Salesperson"],
        Some("Prague Field Office"),
    );
    let (d1, d2, d3) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let tech = device(&d1, &srv, TECH1).await;
    let grace = device(&d2, &srv, "grace@contoso.example").await;
    let ada = device(&d3, &srv, "ada@contoso.example").await;
    let tech_report = sync(&tech).await.unwrap();
    sync(&grace).await.unwrap();
    sync(&ada).await.unwrap();
    holds_its_scope(&tech, &srv, TECH1).await;
    holds_its_scope(&grace, &srv, "grace@contoso.example").await;
    // The Sales Manager reads the whole organization.
    assert_converged(&ada, &srv).await;
    let whole = srv.org.data.live_records().len();
    let share = tech_report.records_downloaded as f64 / whole as f64;
    assert!(
        (0.01..=0.10).contains(&share),
        "a technician reads {share:.3} of the org"
    );
    // Grace (Salesperson, Prague) sees nothing of Seattle.
    let grace_accounts = grace
        .query_records("account".into(), RecordQuery::default())
        .await
        .unwrap();
    let tech_accounts = tech
        .query_records("account".into(), RecordQuery::default())
        .await
        .unwrap();
    assert!(
        grace_accounts
            .iter()
            .all(|a| tech_accounts.iter().all(|t| t.id != a.id))
    );

    // Pushes are checked per mutation: a technician may not change an account (write: none) and
    // the refusal is a typed sync error with the person's values kept.
    let account = &tech_accounts[0].id;
    tech.update_record(
        "account".into(),
        account.clone(),
        fields(&[("phone", text("+1 555 0000"))]),
    )
    .await
    .unwrap();
    let report = sync(&tech).await.unwrap();
    assert_eq!(report.rejected, 1);
    let errors = tech.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, RejectionCode::Forbidden);
    assert_eq!(
        local_text(&tech, "account", account, "phone")
            .await
            .as_deref(),
        Some("+1 555 0000")
    );
    assert_ne!(
        srv.org.data.get("account", account).unwrap().fields["phone"],
        json!("+1 555 0000")
    );
    // A contact of their own they may change; one created offline is theirs, in their unit.
    let contact = tech
        .query_records("contact".into(), RecordQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|c| srv.org.data.get("contact", &c.id).unwrap().owner == user_id(&srv, TECH1))
        .unwrap();
    tech.update_record(
        "contact".into(),
        contact.id.clone(),
        fields(&[("job_title", text("Site Lead"))]),
    )
    .await
    .unwrap();
    let created = tech
        .create_record(
            "activity".into(),
            fields(&[
                ("subject", text("Replace the seal")),
                ("kind", text("repair")),
            ]),
        )
        .await
        .unwrap();
    // The refused account change waits for the person: discard it.
    tech.discard_sync_error(errors[0].id).await.unwrap();
    let report = sync(&tech).await.unwrap();
    assert_eq!((report.rejected, report.records_uploaded), (0, 2));
    let server_side = srv.org.data.get("activity", &created).unwrap();
    assert_eq!(server_side.owner, user_id(&srv, TECH1));
    assert_eq!(server_side.unit, "Seattle Field Office");
    holds_its_scope(&grace, &srv, "grace@contoso.example").await;
    sync(&grace).await.unwrap();
    assert!(
        grace
            .get_record("activity".into(), created.clone())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_move_with_their_owner_and_unsent_edits_stay_visible() {
    let srv = org(4000).await;
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = device(&d1, &srv, TECH1).await;
    let two = device(&d2, &srv, TECH2).await;
    sync(&one).await.unwrap();
    sync(&two).await.unwrap();
    // 100 of technician one's records (contacts and activities) go to technician two.
    let tech1 = user_id(&srv, TECH1);
    let mine: Vec<_> = srv
        .org
        .data
        .live_records()
        .into_iter()
        .filter(|r| r.owner == tech1 && r.entity != "account")
        .take(100)
        .collect();
    assert_eq!(mine.len(), 100);
    // Technician one edits one of them offline before the move reaches the phone.
    let edited = mine.iter().find(|r| r.entity == "contact").unwrap().clone();
    one.update_record(
        "contact".into(),
        edited.id.clone(),
        fields(&[("notes", text("my unsent note"))]),
    )
    .await
    .unwrap();
    let tech2 = srv.org.store.user_by_email(TECH2).unwrap().unwrap();
    for entity in ["contact", "activity"] {
        let ids: Vec<String> = mine
            .iter()
            .filter(|r| r.entity == entity)
            .map(|r| r.id.clone())
            .collect();
        srv.org
            .data
            .assign(entity, &ids, &tech2.id, &tech2.business_unit)
            .unwrap();
    }
    let left = sync(&one).await.unwrap();
    assert_eq!(left.records_removed, 100, "exactly the moved records leave");
    assert_eq!(left.records_downloaded, 100, "and nothing else is sent");
    let arrived = sync(&two).await.unwrap();
    assert_eq!(
        (arrived.records_downloaded, arrived.records_removed),
        (100, 0)
    );
    holds_its_scope(&two, &srv, TECH2).await;
    // The unsent edit is a typed error with the person's values; the rest is exactly the scope.
    let errors = one.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].record_id, edited.id);
    assert_eq!(errors[0].code, RejectionCode::Forbidden);
    let record = one
        .get_record("contact".into(), edited.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(record.sync_state, RecordSyncState::Error { .. }));
    assert_eq!(record.fields["notes"], text("my unsent note"));
    // Discarding it removes the record: the device then holds exactly its scope.
    one.discard_sync_error(errors[0].id).await.unwrap();
    holds_its_scope(&one, &srv, TECH1).await;
    let quiet = sync(&one).await.unwrap();
    assert_eq!(quiet.records_downloaded, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_change_moves_only_its_entity() {
    let srv = org(2000).await;
    srv.org
        .store
        .set_role(&Role {
            name: "Activity Reader".into(),
            privileges: vec![Privilege {
                entity: "activity".into(),
                read: Depth::Organization,
                create: Depth::None,
                write: Depth::None,
                delete: Depth::None,
            }],
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tech = device(&dir, &srv, TECH1).await;
    sync(&tech).await.unwrap();
    let tech1 = user_id(&srv, TECH1);
    let others = srv
        .org
        .data
        .live_records()
        .iter()
        .filter(|r| r.entity == "activity" && r.owner != tech1)
        .count() as u64;
    set_roles(&srv, TECH1, &["Field Technician", "Activity Reader"], None);
    let added = sync(&tech).await.unwrap();
    assert_eq!(
        (added.records_downloaded, added.records_removed),
        (others, 0)
    );
    holds_its_scope(&tech, &srv, TECH1).await;
    set_roles(&srv, TECH1, &["Field Technician"], None);
    let removed = sync(&tech).await.unwrap();
    assert_eq!(
        (removed.records_downloaded, removed.records_removed),
        (others, others)
    );
    holds_its_scope(&tech, &srv, TECH1).await;
    // A business-unit move: Seattle's accounts and contacts leave, Prague's arrive.
    set_roles(
        &srv,
        TECH1,
        &["Field Technician"],
        Some("Prague Field Office"),
    );
    let moved = sync(&tech).await.unwrap();
    assert!(moved.records_removed > 0);
    holds_its_scope(&tech, &srv, TECH1).await;
    // No roles at all: everything leaves.
    set_roles(&srv, TECH1, &[], None);
    sync(&tech).await.unwrap();
    assert!(common::org::local_records(&tech).await.is_empty());
}

fn open_or_recent(days: u32) -> SyncFilter {
    serde_json::from_value(json!({"any": [
        {"field": "done", "equals": false}, {"field": "due_at", "within_days": days}]}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_filters_and_their_moving_window_trim_without_a_full_download() {
    let srv = org(2000).await;
    let dir = tempfile::tempdir().unwrap();
    let ada = device(&dir, &srv, "ada@contoso.example").await;
    let first = sync(&ada).await.unwrap();
    assert_eq!(first.records_downloaded, 2000);
    // The organization syncs only activities that are open or due in the last 120 days.
    srv.org
        .data
        .set_filter("activity", Some(open_or_recent(120)))
        .unwrap();
    let trimmed = sync(&ada).await.unwrap();
    let expected = srv.org.readable_records("ada@contoso.example");
    let gone = 2000 - expected.len() as u64;
    assert!(gone > 0);
    assert_eq!(
        (trimmed.records_downloaded, trimmed.records_removed),
        (gone, gone)
    );
    assert_holds(&ada, expected).await;
    // A month later the window has moved: only what aged out leaves.
    srv.org.data.advance_days(30);
    let aged = sync(&ada).await.unwrap();
    let expected = srv.org.readable_records("ada@contoso.example");
    assert_eq!(aged.records_downloaded, aged.records_removed);
    assert_holds(&ada, expected).await;
    // The app may narrow further: only accounts.
    let narrow = SyncClient::with_options(
        dir.path().display().to_string(),
        syncvault::ClientOptions {
            sync_entities: Some(vec!["account".into()]),
            ..options(ConflictMode::MergeFields, 25)
        },
    );
    drop(ada);
    let narrow = Arc::new(narrow.unwrap());
    narrow.unlock(ORG_PASSWORD.to_vec()).await.unwrap();
    sync(&narrow).await.unwrap();
    let held = common::org::local_records(&narrow).await;
    assert_eq!(held.len(), 200);
    assert!(held.keys().all(|(entity, _)| entity == "account"));
    // Filters are checked before they are stored.
    assert!(
        srv.org
            .data
            .set_filter(
                "activity",
                Some(
                    serde_json::from_value(
                        json!({"any": [{"field": "subject", "within_days": 3}]})
                    )
                    .unwrap()
                )
            )
            .is_err()
    );
}

/// A field added to an entity sends its records again; when its sync filter changed before the
/// device's next pull too, the records the filter now leaves out must still leave the device
/// (simulator seed 10016: they stayed, because the changed entity counted as not held at all).
#[tokio::test(flavor = "multi_thread")]
async fn a_filter_and_a_new_field_at_once_still_remove_what_the_filter_leaves_out() {
    let srv = org(600).await;
    let dir = tempfile::tempdir().unwrap();
    let ada = device(&dir, &srv, "ada@contoso.example").await;
    sync(&ada).await.unwrap();
    srv.org
        .data
        .set_filter("activity", Some(open_or_recent(120)))
        .unwrap();
    srv.org
        .data
        .add_field(
            "activity",
            serde_json::from_value(json!({"name": "site", "type": "text"})).unwrap(),
        )
        .unwrap();
    let activities = srv
        .org
        .data
        .live_records()
        .iter()
        .filter(|r| r.entity == "activity")
        .count() as u64;
    let expected = srv.org.readable_records("ada@contoso.example");
    let kept = expected.iter().filter(|r| r.entity == "activity").count() as u64;
    assert!(kept > 0 && kept < activities);
    let report = sync(&ada).await.unwrap();
    assert_eq!(
        (report.records_downloaded, report.records_removed),
        (activities, activities - kept)
    );
    assert_holds(&ada, expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scope_and_data_changing_under_every_page_still_converge() {
    let srv = Arc::new(org(3000).await);
    let dir = tempfile::tempdir().unwrap();
    let tech = device(&dir, &srv, TECH1).await;
    let tech1 = user_id(&srv, TECH1);
    let tech2 = srv.org.store.user_by_email(TECH2).unwrap().unwrap();
    let ids: Vec<(String, String)> = srv
        .org
        .data
        .live_records()
        .into_iter()
        .filter(|r| r.entity != "account")
        .map(|r| (r.entity, r.id))
        .collect();
    let chaos = {
        let srv = Arc::clone(&srv);
        let rng = std::sync::Mutex::new(Rng(0x5C0DE));
        move |_: &syncvault::SyncProgress| {
            let mut rng = rng.lock().unwrap();
            for _ in 0..4 {
                let (entity, id) = &ids[rng.below(ids.len() as u64) as usize];
                match rng.below(4) {
                    0 => {
                        srv.org
                            .data
                            .assign(
                                entity,
                                std::slice::from_ref(id),
                                &tech1,
                                "Seattle Field Office",
                            )
                            .unwrap();
                    }
                    1 => {
                        srv.org
                            .data
                            .assign(
                                entity,
                                std::slice::from_ref(id),
                                &tech2.id,
                                &tech2.business_unit,
                            )
                            .unwrap();
                    }
                    2 => {
                        let mut f = serde_json::Map::new();
                        f.insert(
                            "notes".into(),
                            json!(format!("changed {}", rng.below(1000))),
                        );
                        srv.org.data.edit(entity, id, f);
                    }
                    _ => {
                        let days = 30 + rng.below(300) as u32;
                        srv.org
                            .data
                            .set_filter("activity", Some(open_or_recent(days)))
                            .unwrap();
                    }
                }
            }
        }
    };
    let progress = Arc::new(Progress {
        hook: Some(Box::new(chaos)),
        ..Default::default()
    });
    Arc::clone(&tech).synchronize(progress, None).await.unwrap();
    // The pull was a snapshot of the scope at its start; the next one brings what changed.
    sync(&tech).await.unwrap();
    holds_its_scope(&tech, &srv, TECH1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_evolution_reaches_devices_with_unsent_edits() {
    let srv = org(1000).await;
    let dir = tempfile::tempdir().unwrap();
    let ada = device(&dir, &srv, "ada@contoso.example").await;
    sync(&ada).await.unwrap();
    ada.update_record(
        "contact".into(),
        "c000000001".into(),
        fields(&[("job_title", text("Offline edit"))]),
    )
    .await
    .unwrap();
    // The administrator adds a field (and gives some contacts a value) and a new entity.
    srv.org
        .data
        .add_field(
            "contact",
            serde_json::from_value(json!({"name": "mobile", "type": "text", "searchable": true}))
                .unwrap(),
        )
        .unwrap();
    srv.org
        .data
        .evolve_schema(|s| {
            s.add_entity(
                "work_order",
                serde_json::from_value(json!([
                    {"name": "title", "type": "text", "searchable": true},
                    {"name": "account_id", "type": "reference", "references": "account"}]))
                .unwrap(),
            )
        })
        .unwrap();
    // A new entity is no one's until a role grants it (as in Dynamics 365).
    let mut manager = srv
        .org
        .store
        .roles()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "Sales Manager")
        .unwrap();
    manager.privileges.push(Privilege {
        entity: "work_order".into(),
        read: Depth::Organization,
        create: Depth::Organization,
        write: Depth::Organization,
        delete: Depth::None,
    });
    srv.org.store.set_role(&manager).unwrap();
    for i in 1..=5 {
        let mut f = serde_json::Map::new();
        f.insert("mobile".into(), json!(format!("+420 600 00{i}")));
        srv.org.data.edit("contact", &format!("c00000000{i}"), f);
        assert!(
            srv.org
                .data
                .create(syncvault_server::sync::store::ServerRecord {
                    entity: "work_order".into(),
                    id: format!("w{i}"),
                    version: 1,
                    deleted: false,
                    owner: String::new(),
                    unit: "Headquarters".into(),
                    fields: serde_json::from_value(
                        json!({"title": format!("Order {i}"), "account_id": "a000000001"})
                    )
                    .unwrap(),
                })
        );
    }
    let report = sync(&ada).await.unwrap();
    assert_eq!(report.records_uploaded, 1);
    assert_eq!(
        srv.org.data.get("contact", "c000000001").unwrap().fields["job_title"],
        json!("Offline edit")
    );
    assert!(
        ada.entities()
            .await
            .unwrap()
            .contains(&"work_order".to_string())
    );
    assert_eq!(
        local_text(&ada, "contact", "c000000002", "mobile")
            .await
            .as_deref(),
        Some("+420 600 002")
    );
    let found = ada
        .search_records("contact".into(), "+420".into(), 10)
        .await
        .unwrap();
    assert!(
        !found.is_empty(),
        "the new field is searchable on the device"
    );
    assert_converged(&ada, &srv).await;
    // Only the contacts (new field) and the work orders came again, not accounts or activities.
    let contacts = srv
        .org
        .data
        .live_records()
        .iter()
        .filter(|r| r.entity == "contact")
        .count();
    assert_eq!(report.records_downloaded as usize, contacts + 5);
    // A retired field keeps its local column but takes no new value.
    srv.org
        .data
        .evolve_schema(|s| s.retire_field("contact", "phone"))
        .unwrap();
    sync(&ada).await.unwrap();
    ada.update_record(
        "contact".into(),
        "c000000003".into(),
        fields(&[("phone", text("1"))]),
    )
    .await
    .unwrap();
    let refused = sync(&ada).await.unwrap();
    assert_eq!(refused.rejected, 1);
    assert_eq!(
        ada.sync_errors().await.unwrap()[0].code,
        RejectionCode::InvalidField
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_v1_is_refused_cleanly() {
    let srv = org(10).await;
    let discovery: serde_json::Value = reqwest::get(format!("{}/.well-known/syncvault", srv.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["protocol_version"], 2);
    assert!(
        discovery["sync_api"]
            .as_str()
            .unwrap()
            .ends_with("/api/sync/v2")
    );
    // A v1 app (its sync API URL saved from an older discovery) is told why, not served data.
    let answer = reqwest::Client::new()
        .post(format!("{}/api/sync/v1/pull", srv.url))
        .json(&json!({"client_id": "old", "schema_version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 410);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "protocol_version_unsupported");
}

/// An edit made while the Synchronize downloads (after its upload) of a record that leaves the
/// person's scope in that same download: not lost, an `out_of_scope` sync error with the
/// person's values, which a retry sends to the server (who now refuses it) and a discard drops.
#[tokio::test(flavor = "multi_thread")]
async fn an_edit_racing_its_records_exit_becomes_an_out_of_scope_error() {
    let srv = org(2000).await;
    let dir = tempfile::tempdir().unwrap();
    let tech = device(&dir, &srv, TECH1).await;
    sync(&tech).await.unwrap();
    let tech1 = user_id(&srv, TECH1);
    let held = srv.org.readable_records(TECH1);
    let leaving = held
        .iter()
        .find(|r| r.entity == "activity" && r.owner == tech1)
        .unwrap()
        .clone();
    // Enough changes in scope for many pages before the exits phase sends the remove.
    for r in held.iter().filter(|r| r.id != leaving.id).take(200) {
        let mut f = serde_json::Map::new();
        let key = if r.entity == "account" {
            "city"
        } else {
            "notes"
        };
        f.insert(key.into(), json!("changed on the server"));
        srv.org.data.edit(&r.entity, &r.id, f);
    }
    let tech2 = srv.org.store.user_by_email(TECH2).unwrap().unwrap();
    srv.org
        .data
        .assign(
            "activity",
            std::slice::from_ref(&leaving.id),
            &tech2.id,
            &tech2.business_unit,
        )
        .unwrap();
    let edit = {
        let (tech, id) = (Arc::clone(&tech), leaving.id.clone());
        let runtime = tokio::runtime::Handle::current();
        let done = std::sync::Mutex::new(None);
        move |p: &syncvault::SyncProgress| {
            let mut done = done.lock().unwrap();
            if p.phase == syncvault::SyncPhase::Downloading && done.is_none() {
                let (tech, id) = (Arc::clone(&tech), id.clone());
                *done = Some(runtime.spawn(async move {
                    tech.update_record(
                        "activity".into(),
                        id,
                        fields(&[("subject", text("typed during the sync"))]),
                    )
                    .await
                    .unwrap()
                }));
            }
        }
    };
    let progress = Arc::new(Progress {
        hook: Some(Box::new(edit)),
        ..Default::default()
    });
    let report = Arc::clone(&tech).synchronize(progress, None).await.unwrap();
    assert_eq!(report.records_removed, 1);
    let errors = tech.sync_errors().await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].record_id.as_str(), errors[0].code),
        (leaving.id.as_str(), RejectionCode::OutOfScope)
    );
    let record = tech
        .get_record("activity".into(), leaving.id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.fields["subject"], text("typed during the sync"));
    // Retry: the server decides, and the user may no longer change it.
    tech.retry_sync_error(errors[0].id).await.unwrap();
    let retried = sync(&tech).await.unwrap();
    assert_eq!(retried.rejected, 1);
    let errors = tech.sync_errors().await.unwrap();
    assert_eq!(errors[0].code, RejectionCode::Forbidden);
    tech.discard_sync_error(errors[0].id).await.unwrap();
    holds_its_scope(&tech, &srv, TECH1).await;
}

/// A record the device writes that its user may not read once the server has it (here a done
/// activity under an "open activities only" filter) leaves the device after the push: no pull
/// would ever remove it (found by the simulator, seed 7; docs/testing.md). One that stays in the
/// filter stays on the device.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_written_outside_the_sync_filter_leaves_the_device_after_its_push() {
    let srv = org(20).await;
    srv.org
        .data
        .set_filter(
            "activity",
            Some(
                serde_json::from_value(json!({"any": [{"field": "done", "equals": false}]}))
                    .unwrap(),
            ),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ada = device(&dir, &srv, "ada@contoso.example").await;
    sync(&ada).await.unwrap();
    let done = ada
        .create_record(
            "activity".into(),
            fields(&[
                ("subject", text("Closed visit")),
                ("done", syncvault::FieldValue::Boolean { value: true }),
            ]),
        )
        .await
        .unwrap();
    let open = ada
        .create_record(
            "activity".into(),
            fields(&[
                ("subject", text("Open visit")),
                ("done", syncvault::FieldValue::Boolean { value: false }),
            ]),
        )
        .await
        .unwrap();
    let report = sync(&ada).await.unwrap();
    assert_eq!(report.records_uploaded, 2);
    // The server has both; the device keeps only the one its filter reads.
    assert!(
        srv.org
            .data
            .get("activity", &done)
            .is_some_and(|r| !r.deleted)
    );
    assert!(
        ada.get_record("activity".into(), done.clone())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ada.get_record("activity".into(), open)
            .await
            .unwrap()
            .is_some()
    );
    holds_its_scope(&ada, &srv, "ada@contoso.example").await;
    assert_eq!(report.pending_changes, 0);
}

/// A pull's answer can be lost after the server has sent it (seed 10004 of the simulator, with
/// a duplicated request): when the device's retry starts from the same cursor, it must still
/// bring what a role change let in, although nothing was written in between so both pulls end
/// at the same point of the change feed.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_retried_after_its_answer_was_lost_still_brings_a_widened_scope() {
    let srv = org(300).await;
    srv.org
        .store
        .set_role(&Role {
            name: "Activity Reader".into(),
            privileges: vec![Privilege {
                entity: "activity".into(),
                read: Depth::Organization,
                create: Depth::None,
                write: Depth::None,
                delete: Depth::None,
            }],
        })
        .unwrap();
    // The device's pulls, straight on the server's store: (changes, cursor).
    let pull = |cursor: Option<i64>| {
        let user = srv.org.store.user_by_email(TECH1).unwrap().unwrap();
        let scope = srv.org.data.scope(&srv.org.access(&user).unwrap(), None);
        let body = srv
            .org
            .data
            .pull("device-10004", &scope, cursor, None, 5000)
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let cursor = body["cursor"].as_i64().expect("one page");
        (body["changes"].as_array().unwrap().len(), cursor)
    };
    let (initial, held) = pull(None);
    assert!(initial > 0);
    set_roles(&srv, TECH1, &["Field Technician", "Activity Reader"], None);
    let (entered, lost) = pull(Some(held));
    assert!(entered > 0, "the widened scope brings activities");
    let (retried, cursor) = pull(Some(held));
    assert_eq!(retried, entered, "the retry sends what the lost answer did");
    assert_eq!(cursor, lost);
    assert_eq!(pull(Some(cursor)).0, 0);
    // The cursor of the lost answer's scope stays apart from the older one.
    assert_ne!(cursor, held);
    assert_eq!(pull(Some(held)).0, entered);
}
