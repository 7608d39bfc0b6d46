//! `demo`: the seed's whole flow on an embedded reference server — setup (OAuth user mode, the
//! offline password twice), sign-in on the built-in provider's login page as a demo user, the
//! initial sync, offline edits while another user edits on the server, a second sync that merges
//! and keeps one conflict for the person, its resolution, a third sync, and a check that the
//! device holds exactly what the server holds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use syncvault::{
    ClientOptions, ConflictResolution, FieldValue, RecordQuery, SyncClient, SyncReport, UserMode,
};
use syncvault_server::sync::store::DataStore;
use syncvault_server::{BoundServer, ServerConfig};

use crate::cli::GlobalArgs;
use crate::data_commands::record_json;
use crate::output::{HarnessError, Output};
use crate::passwords::Passwords;
use crate::report::{peak_rss_bytes, report_json};
use crate::sync_commands::{SignIn, install_sign_in_ui, synchronize};

const DEMO_USER: &str = "ada@contoso.example";

fn text(value: &str) -> FieldValue {
    FieldValue::Text {
        value: value.to_string(),
    }
}

fn random_password() -> String {
    let mut b = [0u8; 9];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!(
        "demo-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Says what happens, for people (stderr, so --json stdout stays one object).
fn say(out: &Output, line: &str) {
    if !out.json {
        eprintln!("{line}");
    }
}

pub async fn run(global: &GlobalArgs, records: u64, out: &Output) -> Result<(), HarnessError> {
    let dir = global.dir.clone().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("syncvault-demo-{}", std::process::id()))
    });
    let server_dir = tempdir_for_server()?;
    let result = run_in(global, records, out, dir, &server_dir).await;
    let _ = std::fs::remove_dir_all(&server_dir);
    result
}

fn tempdir_for_server() -> Result<PathBuf, HarnessError> {
    let dir = std::env::temp_dir().join(format!("syncvault-demo-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn run_in(
    global: &GlobalArgs,
    records: u64,
    out: &Output,
    dir: PathBuf,
    server_dir: &std::path::Path,
) -> Result<(), HarnessError> {
    // The organization: the reference server with the built-in provider, on loopback.
    say(
        out,
        &format!("Generating {records} records for the demo organization..."),
    );
    let bound = BoundServer::bind("127.0.0.1:0")
        .await
        .map_err(|e| HarnessError::Io(std::io::Error::other(e.to_string())))?;
    let config = ServerConfig {
        records,
        data_dir: Some(server_dir.to_path_buf()),
        ..Default::default()
    };
    let server = bound
        .spawn(config)
        .map_err(|e| HarnessError::Io(std::io::Error::other(e.to_string())))?;
    let org_url = server.url.clone();
    say(out, &format!("Organization server at {org_url}"));

    // Setup: User Mode OAuth, organization URL, the offline password twice.
    let (password, confirmation, shown) = if global.password_stdin {
        let mut p = Passwords::new(true);
        let (a, b) = (p.next("New offline password")?, p.next("Repeat")?);
        (a.to_vec(), b.to_vec(), None)
    } else {
        let p = random_password();
        (p.clone().into_bytes(), p.clone().into_bytes(), Some(p))
    };
    let client = SyncClient::with_options(dir.display().to_string(), ClientOptions::default())?;
    client
        .setup_offline_password(org_url.clone(), UserMode::Oauth, password, confirmation)
        .await?;
    say(out, &format!("Vault created in {}", dir.display()));
    if let Some(p) = &shown {
        say(
            out,
            &format!("Offline password (it cannot be recovered): {p}"),
        );
    }

    // The first Synchronize signs in on the identity provider's page (as the demo user), then
    // runs the initial sync.
    install_sign_in_ui(&client, &SignIn::DevLogin(DEMO_USER.into()), out);
    let first = synchronize(&client, out).await?;
    say(
        out,
        &format!("Signed in as {DEMO_USER} on the provider's login page"),
    );
    say(
        out,
        &format!(
            "Initial sync: {} records in {:.2} s ({:.0} records/s)",
            first.records_downloaded, first.seconds, first.records_per_second
        ),
    );

    // Offline edits on the device, while another user edits on the server.
    let contacts = client
        .query_records(
            "contact".into(),
            RecordQuery {
                limit: Some(3),
                ..Default::default()
            },
        )
        .await?;
    if contacts.len() < 3 {
        return Err(HarnessError::Usage(
            "the demo needs --records 10 or more".into(),
        ));
    }
    let data = &server.org.data;
    for c in &contacts {
        let fields = HashMap::from([("job_title".to_string(), text("Site Lead (edited offline)"))]);
        client
            .update_record("contact".into(), c.id.clone(), fields)
            .await?;
    }
    let account_id = match contacts[0].fields.get("account_id") {
        Some(FieldValue::Text { value }) => value.clone(),
        _ => String::new(),
    };
    let new_activity = HashMap::from([
        ("subject".to_string(), text("Demo visit created offline")),
        ("kind".to_string(), text("visit")),
        ("due_at".to_string(), text("2026-12-01T09:00:00Z")),
        ("done".to_string(), FieldValue::Boolean { value: false }),
        ("account_id".to_string(), text(&account_id)),
    ]);
    let created = client
        .create_record("activity".into(), new_activity)
        .await?;
    // A photo of the site, taken offline, attached to the new visit (its content is encrypted
    // before it reaches the disk, and goes up with the next sync, after the visit itself).
    let photo = client
        .add_attachment(
            "activity".into(),
            created.clone(),
            "site-photo.jpg".into(),
            "image/jpeg".into(),
            demo_photo(),
        )
        .await?;
    let doomed = client
        .query_records(
            "activity".into(),
            RecordQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await?;
    if let Some(a) = doomed.iter().find(|a| a.id != created) {
        client
            .delete_record("activity".into(), a.id.clone())
            .await?;
    }
    // Another user: a different field of contact 0 (merges), the same field of contact 1 (kept
    // for the person to decide).
    edit_on_server(data, &contacts[0].id, "phone", "+1 555 0100");
    edit_on_server(
        data,
        &contacts[1].id,
        "job_title",
        "Regional Manager (edited on the server)",
    );
    say(
        out,
        &format!(
            "{} local changes queued offline; another user edited 2 contacts on the server",
            client.pending_change_count().await?
        ),
    );

    let second = synchronize(&client, out).await?;
    say(
        out,
        &format!(
            "Second sync: uploaded {}, downloaded {}, conflicts {} ({} waiting for you)",
            second.records_uploaded,
            second.records_downloaded,
            second.conflicts,
            second.conflicts_pending
        ),
    );
    let photo = client.attachment(photo.id.clone()).await?;
    let on_server = server.org.blobs.has(&photo.sha256, photo.size);
    say(
        out,
        &format!(
            "Photo {} ({} bytes) taken offline: {}, on the server with its SHA-256: {on_server}",
            photo.name,
            photo.size,
            crate::attachment_commands::state_name(photo.state)
        ),
    );
    if !on_server {
        return Err(HarnessError::Io(std::io::Error::other(
            "the photo did not reach the server",
        )));
    }

    // The person keeps their own version of the conflicting field.
    let conflicts = client.conflicts().await?;
    for c in &conflicts {
        client
            .resolve_conflict(c.id, ConflictResolution::KeepLocal)
            .await?;
    }
    let third = synchronize(&client, out).await?;
    say(
        out,
        &format!(
            "Resolved {} conflict(s) keeping the local edit; third sync uploaded {}",
            conflicts.len(),
            third.records_uploaded
        ),
    );

    let verified = verify(&client, data).await?;
    say(
        out,
        &format!("Device and server hold the same {verified} records"),
    );

    let syncs = [&first, &second, &third];
    let total = |f: fn(&SyncReport) -> u64| syncs.iter().map(|r| f(r)).sum::<u64>();
    let seconds: f64 = syncs.iter().map(|r| r.seconds).sum();
    let moved = total(|r| r.records_downloaded) + total(|r| r.records_uploaded);
    let edited = client
        .get_record("contact".into(), contacts[1].id.clone())
        .await?;
    let report = json!({
        "records_downloaded": total(|r| r.records_downloaded),
        "records_uploaded": total(|r| r.records_uploaded),
        "conflicts": total(|r| r.conflicts),
        "seconds": seconds,
        "records_per_second": moved as f64 / seconds.max(1e-6),
        "peak_rss_bytes": peak_rss_bytes(),
        "initial_sync": report_json(&first),
        "syncs": syncs.iter().map(|r| report_json(r)).collect::<Vec<Value>>(),
        "verified_records": verified,
        "conflict_example": edited.as_ref().map(record_json),
        "attachment": crate::attachment_commands::attachment_json(&photo),
        "dir": dir.display().to_string(),
        "organization_url": org_url,
        "demo_password": shown,
    });
    let text = format!(
        "\nReport: downloaded {} records, uploaded {}, {} conflicts, {:.2} s of sync, {:.0} records/s, \
         peak memory {:.1} MB (embedded server included)\nThe vault stays in {}; the server is gone, \
         so `syncvault query contact --dir {}` works offline.",
        report["records_downloaded"],
        report["records_uploaded"],
        report["conflicts"],
        seconds,
        report["records_per_second"].as_f64().unwrap_or(0.0),
        peak_rss_bytes() as f64 / 1e6,
        dir.display(),
        dir.display()
    );
    out.result(&report, &text);
    Ok(())
}

/// 200 kB standing in for a camera's JPEG (a JPEG start marker, then noise).
fn demo_photo() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while bytes.len() < 200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes
}

fn edit_on_server(data: &DataStore, id: &str, field: &str, value: &str) {
    let mut fields = serde_json::Map::new();
    fields.insert(field.to_string(), json!(value));
    data.edit("contact", id, fields);
}

/// Checks that every server record is on the device with the same version and fields, and that
/// the device has nothing else; returns how many records matched.
async fn verify(client: &Arc<SyncClient>, data: &Arc<DataStore>) -> Result<u64, HarnessError> {
    let server = data.live_records();
    let mut local_total = 0;
    for entity in client.entities().await? {
        local_total += client.count_records(entity).await?;
    }
    if local_total != server.len() as u64 {
        return Err(HarnessError::Io(std::io::Error::other(format!(
            "the device holds {local_total} records, the server {}",
            server.len()
        ))));
    }
    for r in &server {
        let local = client.get_record(r.entity.clone(), r.id.clone()).await?;
        let same = local.as_ref().is_some_and(|l| {
            l.version == r.version
                && r.fields
                    .iter()
                    .all(|(k, v)| l.fields.get(k) == Some(&FieldValue::from(v)))
        });
        if !same {
            return Err(HarnessError::Io(std::io::Error::other(format!(
                "{} {} differs between the device and the server",
                r.entity, r.id
            ))));
        }
    }
    Ok(local_total)
}
