//! The attachment calls of sync protocol v2 (docs/protocol.md, "Attachments"): resumable uploads
//! (create or find the session, send chunks at offsets, finish with the SHA-256) and ranged
//! downloads of an attachment the user may read. Metadata travels as `attachment` records with
//! the other changes; only content moves here.

use std::io::SeekFrom;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::blocking;
use super::schema::ATTACHMENT;
use super::store::ApiError;
use crate::Org;

#[derive(Deserialize)]
pub(super) struct CreateUpload {
    sha256: String,
    size: u64,
}

/// `POST attachments/uploads`: the session for this content (found again after a lost answer).
pub(super) async fn create_upload(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    body: Result<Json<CreateUpload>, JsonRejection>,
) -> Response {
    let user = match org.caller(&headers).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let Ok(Json(req)) = body else {
        return ApiError::bad_request("invalid_request", "the body is not an upload request")
            .into_response();
    };
    let policy = org.data.attachment_policy();
    let blobs = Arc::clone(&org.blobs);
    match blocking(move || blobs.create_upload(&user.id, &req.sha256, req.size, &policy)).await {
        Ok(state) => Json(state).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct At {
    offset: u64,
}

/// `PUT attachments/uploads/{id}?offset=N`: one chunk; a chunk at the wrong offset (a retry of
/// one stored already) is refused `offset_mismatch`, and the client asks where to continue.
pub(super) async fn append(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(at): Query<At>,
    bytes: Bytes,
) -> Response {
    let user = match org.caller(&headers).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let blobs = Arc::clone(&org.blobs);
    let appended = blocking(move || blobs.append(&id, &user.id, at.offset, &bytes)).await;
    match appended {
        Ok(offset) => Json(json!({ "offset": offset })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST attachments/uploads/{id}/finish`: checks the SHA-256 and stores the content.
pub(super) async fn finish(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match org.caller(&headers).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let blobs = Arc::clone(&org.blobs);
    match blocking(move || blobs.finish(&id, &user.id)).await {
        Ok(sha256) => Json(json!({ "sha256": sha256 })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `bytes=N-` or `bytes=N-M` (one range; what clients resuming a download send).
fn parse_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

/// `GET attachments/{id}/content`: the content of an attachment in the user's scope, from the
/// `Range` asked for.
pub(super) async fn download(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match org.caller(&headers).await {
        Ok(user) => user,
        Err(resp) => return resp,
    };
    let access = match org.access(&user) {
        Ok(access) => access,
        Err(e) => return e.into_response(),
    };
    let data = Arc::clone(&org.data);
    let found = blocking(move || {
        let scope = data.scope(&access, None);
        Ok(data.attachment_in(&scope, &id))
    })
    .await;
    let record = match found {
        Ok(Some(record)) => record,
        Ok(None) => {
            return ApiError {
                status: 404,
                code: "not_found",
                description: format!("no {ATTACHMENT} you may read with this id"),
            }
            .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let sha = record.fields.get("sha256").and_then(|v| v.as_str());
    let path = sha.and_then(|s| org.blobs.blob_path(s));
    let Some(mut file) = (match path {
        Some(p) => tokio::fs::File::open(p).await.ok(),
        None => None,
    }) else {
        return ApiError::internal("an attachment's content is missing").into_response();
    };
    let size = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let range = parse_range(&headers);
    let (start, end) = match range {
        Some((s, e)) if s < size || (s == 0 && size == 0) => {
            (s, e.map_or(size, |e| (e + 1).min(size)))
        }
        None => (0, size),
        Some(_) => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
            )
                .into_response();
        }
    };
    org.blobs
        .download_starts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(start);
    if start > 0 && file.seek(SeekFrom::Start(start)).await.is_err() {
        return ApiError::internal("seek").into_response();
    }
    let blobs = Arc::clone(&org.blobs);
    let body = stream::unfold((file, end - start), move |(mut file, left)| {
        let blobs = Arc::clone(&blobs);
        async move {
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; (256 << 10).min(left as usize)];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    blobs.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(buf)),
                        (file, left - n as u64),
                    ))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    h.insert(header::CONTENT_LENGTH, (end - start).into());
    if range.is_some() {
        let value = format!("bytes {start}-{}/{size}", end.max(1) - 1);
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    response
}
