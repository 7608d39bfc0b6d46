//! `attach`, `attachments`, `get-attachment`: files linked to records (docs/harness.md).

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use syncvault::{Attachment, AttachmentState};

use crate::cli::GlobalArgs;
use crate::data_commands::unlocked;
use crate::output::{HarnessError, Output};
use crate::report::ProgressBar;

/// The §8 spelling of a state.
pub fn state_name(state: AttachmentState) -> &'static str {
    match state {
        AttachmentState::LocalOnly => "local_only",
        AttachmentState::Uploading => "uploading",
        AttachmentState::Synced => "synced",
        AttachmentState::NotDownloaded => "not_downloaded",
        AttachmentState::Downloading => "downloading",
    }
}

pub fn attachment_json(a: &Attachment) -> Value {
    json!({
        "id": a.id, "entity": a.entity, "record_id": a.record_id, "name": a.name,
        "mime": a.mime, "size": a.size, "sha256": a.sha256, "version": a.version,
        "state": state_name(a.state),
    })
}

/// A MIME type from the file's extension (what a phone's picker would say).
fn guess_mime(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("heic") => "image/heic",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}

pub async fn attach(
    global: &GlobalArgs,
    entity: String,
    id: String,
    file: PathBuf,
    name: Option<String>,
    mime: Option<String>,
    out: &Output,
) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let name = name.unwrap_or_else(|| {
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into())
    });
    let mime = mime.unwrap_or_else(|| guess_mime(&file).into());
    let a = client
        .add_attachment_from_path(entity, id, name, mime, file.to_string_lossy().into_owned())
        .await?;
    let text = format!("{} ({} bytes) queued as {}", a.name, a.size, a.id);
    out.result(&attachment_json(&a), &text);
    Ok(())
}

pub async fn list(
    global: &GlobalArgs,
    entity: String,
    id: String,
    out: &Output,
) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let all = client.attachments(entity, id).await?;
    let text = all
        .iter()
        .map(|a| {
            format!(
                "{}  {}  {} bytes  {}",
                a.id,
                a.name,
                a.size,
                state_name(a.state)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    out.result(
        &Value::Array(all.iter().map(attachment_json).collect()),
        &text,
    );
    Ok(())
}

pub async fn get(
    global: &GlobalArgs,
    id: String,
    file: PathBuf,
    out: &Output,
) -> Result<(), HarnessError> {
    let client = unlocked(global).await?;
    let a = client.attachment(id.clone()).await?;
    let mut downloaded = 0;
    if a.state != AttachmentState::Synced
        && a.state != AttachmentState::LocalOnly
        && a.state != AttachmentState::Uploading
    {
        let bar = Arc::new(ProgressBar::new(!out.json));
        let report = Arc::clone(&client)
            .download_attachment(id.clone(), bar, None)
            .await?;
        downloaded = report.bytes_downloaded;
    }
    client
        .export_attachment(id.clone(), file.to_string_lossy().into_owned())
        .await?;
    let a = client.attachment(id).await?;
    let mut value = attachment_json(&a);
    value["bytes_downloaded"] = json!(downloaded);
    value["out"] = json!(file);
    out.result(&value, &format!("{} written to {}", a.name, file.display()));
    Ok(())
}
