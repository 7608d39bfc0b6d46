//! The invariants, checked at every quiet point (faults off, every device synchronized):
//!  1. each device holds exactly the server's view of its user's scope, field by field (records
//!     with a conflict or a refused change waiting for the person hold the person's values);
//!  2. nothing is left queued outside those records;
//!  3. no mutation was applied twice (the server's audit log);
//!  4. every edit a device accepted reached the organization (some version of the record holds
//!     it), or waits for the person as a conflict or a sync error, or met a delete;
//!  5. each photo's content, where the device has it, has the SHA-256 its record names, and the
//!     server holds the same bytes; photos the policy downloads with every Synchronize are there;
//!  6. the app's watched query last delivered what a direct read of the store gives.

use std::collections::{BTreeMap, BTreeSet};

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use syncvault::store::{attachments, conflicts, outbox, sync_errors};

use crate::world::{AUTO_DOWNLOAD_MAX, COMPARED, Failure, World, fail};

/// Equal as the person sees them (a number is a number, whatever its JSON form).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Records by entity and id.
type Keys = BTreeSet<(String, String)>;

/// The records of a device that wait for the person now (their values are not the server's),
/// and those that ever met a conflict or a refusal.
fn waiting_for_person(world: &World, d: usize) -> Result<(Keys, Keys), Failure> {
    world.devices[d].read(|c| {
        let open: BTreeSet<_> = conflicts::pending(c)
            .map_err(|e| e.to_string())?
            .into_iter()
            .chain(sync_errors::open(c).map_err(|e| e.to_string())?)
            .map(|x| (x.entity, x.record_id))
            .collect();
        let ever: BTreeSet<_> = conflicts::recent(c, u32::MAX)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|x| (x.entity, x.record_id))
            .chain(open.iter().cloned())
            .collect();
        Ok((open, ever))
    })
}

/// All the invariants; the first broken one is the failure.
pub fn invariants(world: &mut World) -> Result<(), Failure> {
    let mut checked = 0usize;
    for d in 0..world.devices.len() {
        let (open, ever) = waiting_for_person(world, d)?;
        // 1. The device's records are the server's view of its user's scope.
        let mut server: BTreeMap<(String, String), serde_json::Map<String, Value>> = world
            .org
            .readable_records(world.devices[d].email)
            .into_iter()
            .filter(|r| COMPARED.contains(&r.entity.as_str()))
            .map(|r| ((r.entity, r.id), r.fields))
            .collect();
        for entity in COMPARED {
            for (id, fields) in world.devices[d].records(entity)? {
                let key = (entity.to_string(), id);
                let theirs = server.remove(&key);
                if open.contains(&key) {
                    continue;
                }
                let Some(theirs) = theirs else {
                    fail!(
                        "device {d} holds {entity} {} which its user may not read or nobody has",
                        key.1
                    );
                };
                for (field, value) in &theirs {
                    let mine = fields.get(field).unwrap_or(&Value::Null);
                    if !same(mine, value) {
                        fail!(
                            "device {d}: {entity} {} field {field} is {mine} on the device, {value} on the server",
                            key.1
                        );
                    }
                }
                checked += 1;
            }
        }
        if let Some(((entity, id), _)) = server.into_iter().find(|(k, _)| !open.contains(k)) {
            fail!("device {d} lacks {entity} {id}, which its user may read");
        }
        // 2. Nothing queued outside the records waiting for the person.
        let queued =
            world.devices[d].read(|c| outbox::queued_records(c).map_err(|e| e.to_string()))?;
        if let Some((entity, id)) = queued.into_iter().find(|k| !open.contains(k)) {
            fail!("device {d} still queues changes of {entity} {id} after a quiet sync");
        }
        // 4. Every accepted edit reached the organization, or waits for the person.
        let intended = std::mem::take(&mut world.devices[d].intended);
        for ((entity, id), fields) in intended {
            let key = (entity.clone(), id.clone());
            if ever.contains(&key) {
                continue;
            }
            let history = world.org.data.history(&entity, &id);
            if history.iter().any(|v| v.deleted) {
                continue;
            }
            for (field, value) in &fields {
                if !history.iter().any(|v| v.fields.get(field) == Some(value)) {
                    fail!(
                        "device {d}'s edit of {entity} {id} ({field} = {value}) never reached the organization, and no conflict or sync error says so"
                    );
                }
            }
        }
    }
    for d in 0..world.devices.len() {
        photos(world, d)?;
        watch(world, d)?;
    }
    // 3. No mutation applied twice.
    let mut seen = BTreeSet::new();
    for (client, mutation, entity, id) in world.org.data.audit() {
        if !seen.insert((client.clone(), mutation)) {
            fail!("mutation {mutation} of {client} ({entity} {id}) was applied twice");
        }
    }
    world
        .trace
        .line(format!("invariants hold: {checked} records compared"));
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Invariant 5: the photos' content on the device and on the server.
fn photos(world: &World, d: usize) -> Result<(), Failure> {
    let device = &world.devices[d];
    let dir = device.files_dir()?;
    let (open, _) = waiting_for_person(world, d)?;
    let metas = device.read(|c| attachments::all(c).map_err(|e| e.to_string()))?;
    for m in metas {
        if open.contains(&("attachment".to_string(), m.id.clone())) {
            continue;
        }
        let content = device.read(|c| {
            let Some(row) = attachments::content(c, &dir, &m.id).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            if !row.complete || row.sha256 != m.sha256 {
                return Ok(None);
            }
            let mut reader = attachments::open(c, &dir, &m.id).map_err(|e| e.to_string())?;
            let mut bytes = vec![0u8; reader.len() as usize];
            let mut at = 0;
            while at < bytes.len() {
                match reader.read_at(at as u64, &mut bytes[at..]) {
                    Ok(0) => break,
                    Ok(n) => at += n,
                    Err(e) => return Err(format!("photo {} does not read: {e}", m.id)),
                }
            }
            bytes.truncate(at);
            Ok(Some(bytes))
        })?;
        let Some(bytes) = content else {
            if m.size <= AUTO_DOWNLOAD_MAX {
                fail!(
                    "device {d} lacks the content of photo {} ({} bytes), which downloads with every Synchronize",
                    m.id,
                    m.size
                );
            }
            continue;
        };
        if sha256_hex(&bytes) != m.sha256 || bytes.len() as u64 != m.size {
            fail!(
                "device {d}: photo {}'s content is not the {} bytes its record names",
                m.id,
                m.size
            );
        }
        let held = world
            .org
            .blobs
            .blob_path(&m.sha256)
            .and_then(|p| std::fs::read(p).ok());
        if held.as_deref() != Some(&bytes[..]) {
            fail!(
                "the server does not hold the bytes of photo {} that device {d} has",
                m.id
            );
        }
    }
    Ok(())
}

/// Invariant 6: the watched query caught up with the store. Its deliveries run on the core's
/// own threads, off the simulated clock, so this waits for them in real time (bounded).
fn watch(world: &World, d: usize) -> Result<(), Failure> {
    let device = &world.devices[d];
    let entity = device.watch.entity;
    let direct = device.records(entity)?;
    let began = Instant::now();
    loop {
        let latest = device.watch.latest.lock().unwrap().clone();
        match latest {
            Some(Ok(delivered)) if delivered == direct => return Ok(()),
            Some(Err(e)) => fail!("device {d}'s watch of {entity} delivered an error: {e}"),
            other if began.elapsed() > Duration::from_secs(10) => fail!(
                "device {d}'s watch of {entity} last delivered {} records, a direct read gives {}",
                other.map_or(0, |o| o.map_or(0, |r| r.len())),
                direct.len()
            ),
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}
