//! What a run does, decided from its seed before it starts: the organization's shape and the
//! list of steps. A pure function of the seed, so a run can be replayed with some steps left out
//! (shrinking) and every other step still means the same thing.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One step of a run. Which record an edit touches is picked when the step runs, from the
/// step's own random stream, among the records that exist then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The person creates a record on a device (offline).
    Create {
        device: usize,
    },
    /// The person edits fields of a record on a device (offline).
    Edit {
        device: usize,
    },
    /// The person deletes a record on a device (offline).
    Delete {
        device: usize,
    },
    /// Some devices press Synchronize at once, over the faulty network; while they run, the
    /// network may also let a person edit, another user edit, or a device crash.
    Sync {
        devices: [bool; MAX_DEVICES],
    },
    /// Another user of the organization edits a record on the server.
    ServerEdit,
    /// Another user deletes a record on the server.
    ServerDelete,
    /// The administrator gives a record to another owner (and their business unit).
    Assign,
    /// The administrator adds a field to an entity of the schema.
    AddField,
    /// The administrator disables a device's user (enabled again at the next quiet point).
    DisableUser {
        device: usize,
    },
    /// The provider revokes a device's refresh token: its next token request fails until the
    /// person signs in again (at the next quiet point).
    RevokeTokens {
        device: usize,
    },
    /// The administrator asks a device to download everything again.
    ForceResync {
        device: usize,
    },
    /// The administrator wipes a device, or signs it out (the person sets up or signs in
    /// again).
    WipeDevice {
        device: usize,
    },
    SignOutDevice {
        device: usize,
    },
    /// The administrator changes how far a role reaches for one entity (records enter and
    /// leave scopes).
    ChangeRole,
    /// The administrator moves a user to another business unit.
    MoveUnit,
    /// The administrator sets, changes or removes the activities' sync filter.
    SetFilter,
    /// The app is killed and started again (the store reopened from its files).
    Crash {
        device: usize,
    },
    /// Faults off, every device synchronized until nothing moves, then the invariants.
    Quiet,
}

/// The most devices a run has.
pub const MAX_DEVICES: usize = 5;

/// The shape of one run's organization.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which seeded user each device signs in as (an index into `world::USERS`).
    pub device_users: Vec<usize>,
    /// Records the server starts with.
    pub records: u64,
    /// Records per downloaded page and mutations per upload (small: many pages and batches).
    pub page_size: u32,
    pub push_batch: u32,
    pub steps: Vec<Op>,
}

/// The plan of `seed`: `steps` operations, with a quiet point about every 12 steps and one at
/// the end.
pub fn plan(seed: u64, steps: usize) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0F0A_11AA);
    let devices = rng.random_range(2..=MAX_DEVICES);
    // Two Sales Managers (the whole organization) and Field Technicians of two units; the
    // first two devices often share a user, so one person's two devices race each other.
    let device_users = (0..devices)
        .map(|d| match d {
            0 => 0,
            1 if rng.random_bool(0.5) => 0,
            _ => rng.random_range(0..crate::world::USERS.len()),
        })
        .collect();
    // Drawn before the steps, so a shorter plan of one seed is a prefix of the longer one.
    let records = rng.random_range(5..=40);
    let page_size = rng.random_range(2..=12);
    let push_batch = rng.random_range(1..=6);
    let pick = |rng: &mut ChaCha8Rng| rng.random_range(0..devices);
    let mut ops = Vec::with_capacity(steps + 1);
    for i in 0..steps {
        if i > 0 && i % 12 == 0 {
            ops.push(Op::Quiet);
            continue;
        }
        let op = match rng.random_range(0..100) {
            0..18 => Op::Create {
                device: pick(&mut rng),
            },
            18..40 => Op::Edit {
                device: pick(&mut rng),
            },
            40..45 => Op::Delete {
                device: pick(&mut rng),
            },
            45..72 => {
                let mut chosen = [false; MAX_DEVICES];
                for c in chosen.iter_mut().take(devices) {
                    *c = rng.random_bool(0.6);
                }
                chosen[pick(&mut rng)] = true;
                Op::Sync { devices: chosen }
            }
            72..79 => Op::ServerEdit,
            79..81 => Op::ServerDelete,
            81..84 => Op::Assign,
            84..85 => Op::AddField,
            85..87 => Op::DisableUser {
                device: pick(&mut rng),
            },
            87..89 => Op::RevokeTokens {
                device: pick(&mut rng),
            },
            89..90 => Op::ForceResync {
                device: pick(&mut rng),
            },
            90..91 => Op::WipeDevice {
                device: pick(&mut rng),
            },
            91..92 => Op::SignOutDevice {
                device: pick(&mut rng),
            },
            92..94 => Op::ChangeRole,
            94..95 => Op::MoveUnit,
            95..97 => Op::SetFilter,
            _ => Op::Crash {
                device: pick(&mut rng),
            },
        };
        ops.push(op);
    }
    ops.push(Op::Quiet);
    Plan {
        device_users,
        records,
        page_size,
        push_batch,
        steps: ops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_plan() {
        let (a, b) = (plan(7, 50), plan(7, 50));
        assert_eq!(a.steps, b.steps);
        assert_eq!(a.device_users, b.device_users);
        assert_ne!(plan(8, 50).steps, a.steps);
    }

    #[test]
    fn a_shorter_plan_is_a_prefix_of_a_longer_one() {
        let (short, long) = (plan(9, 20), plan(9, 50));
        assert_eq!(short.steps[..20], long.steps[..20]);
        assert_eq!(
            (short.records, short.page_size),
            (long.records, long.page_size)
        );
    }

    #[test]
    fn a_plan_ends_quiet_and_names_only_its_devices() {
        for seed in 0..200 {
            let p = plan(seed, 40);
            assert_eq!(p.steps.last(), Some(&Op::Quiet));
            let n = p.device_users.len();
            for op in &p.steps {
                if let Op::Sync { devices } = op {
                    assert!(devices.iter().any(|d| *d));
                    assert!(devices[n..].iter().all(|d| !d));
                }
            }
        }
    }
}
