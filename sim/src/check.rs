//! The invariants, checked at every quiet point (faults off, every device synchronized):
//!  1. each device holds exactly the server's view of its user's scope, field by field (records
//!     with a conflict or a refused change waiting for the person hold the person's values);
//!  2. nothing is left queued outside those records;
//!  3. no mutation was applied twice (the server's audit log);
//!  4. every edit a device accepted reached the organization (some version of the record holds
//!     it), or waits for the person as a conflict or a sync error, or met a delete.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use syncvault::store::{conflicts, outbox, sync_errors};

use crate::world::{EDITABLE, Failure, World, fail};

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
            .filter(|r| EDITABLE.iter().any(|(e, _)| *e == r.entity))
            .map(|r| ((r.entity, r.id), r.fields))
            .collect();
        for (entity, _) in EDITABLE {
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
