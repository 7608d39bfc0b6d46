//! Deterministic simulation of whole organizations (docs/testing.md, "The simulator"): one seed
//! gives one run of the reference server in process, several devices that are the real engine
//! over the real encrypted store, and a network that loses, duplicates, cuts and delays their
//! requests; the invariants are checked at every quiet point, and a failing seed replays
//! exactly.

pub mod check;
pub mod faults;
pub mod net;
pub mod plan;
pub mod trace;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use plan::Op;
use world::World;

/// How one seed runs.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub seed: u64,
    /// Steps of the plan (a quiet point is added at the end).
    pub steps: usize,
    /// Steps left out (shrinking replays a failure without them).
    pub skip: BTreeSet<usize>,
    /// Print the trace as it goes.
    pub echo: bool,
    /// Leave attachments out: the run is then the one seeds gave before attachments were
    /// modelled (they draw from a stream of their own, so nothing else moves).
    pub no_attachments: bool,
}

/// What one seed did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The trace's hash: equal for two runs of one seed.
    pub trace_hash: String,
    /// Steps run.
    pub steps: usize,
    /// The first broken invariant or unexpected error, with the step it happened at and the
    /// trace's last lines.
    pub failure: Option<(usize, String, Vec<String>)>,
    /// What the run exercised, by case (`World::counts`).
    pub counts: BTreeMap<String, u64>,
}

/// Panics anywhere in the process since the run began (a task's panic is caught by tokio and
/// would otherwise pass unseen).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take_panics() -> Vec<String> {
    std::mem::take(&mut *PANICS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Whether a run is going on this process (panics outside one are printed as usual).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Records every panic during a run instead of printing it: the run reports it as its failure.
fn catch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if RUNNING.load(Ordering::SeqCst) {
                PANICS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(info.to_string());
            } else {
                usual(info);
            }
        }))
    });
}

/// Runs one seed on a runtime of its own whose clock is simulated: time passes only when every
/// task waits for a timer, so retries and Retry-After cost nothing and change nothing.
pub fn run(config: &RunConfig) -> Outcome {
    catch_panics();
    take_panics();
    RUNNING.store(true, Ordering::SeqCst);
    let outcome = run_plan(config);
    RUNNING.store(false, Ordering::SeqCst);
    outcome
}

fn run_plan(config: &RunConfig) -> Outcome {
    let plan = plan::plan(config.seed, config.steps);
    runtime().block_on(async {
        let mut world = match World::new(config.seed, &plan, config.echo, !config.no_attachments) {
            Ok(w) => w,
            Err(e) => {
                return Outcome {
                    trace_hash: String::new(),
                    steps: 0,
                    failure: Some((0, e.0, vec![])),
                    counts: BTreeMap::new(),
                };
            }
        };
        let mut steps = 0;
        for (i, op) in plan.steps.iter().enumerate() {
            if config.skip.contains(&i) && *op != Op::Quiet {
                continue;
            }
            world.trace.line(format!("step {i}: {op:?}"));
            steps += 1;
            let mut result = world.step(*op).await;
            if let Some(panic) = take_panics().into_iter().next() {
                result = Err(world::Failure(format!("a task panicked: {panic}")));
            }
            if let Err(e) = result {
                return Outcome {
                    trace_hash: world.trace.hash(),
                    steps,
                    failure: Some((i, e.0, world.trace.tail())),
                    counts: world.counts,
                };
            }
        }
        Outcome {
            trace_hash: world.trace.hash(),
            steps,
            failure: None,
            counts: world.counts,
        }
    })
}

/// The runtime a run lives on: one thread, the clock paused (it jumps to the next timer when
/// every task waits).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}

/// Makes a failing run smaller: drops the steps after the failure, then each earlier step
/// whose absence still fails, in at most `budget` replays. Returns the smaller configuration
/// and its outcome.
pub fn shrink(config: &RunConfig, failed_at: usize, budget: usize) -> (RunConfig, Outcome) {
    let mut best = RunConfig {
        steps: failed_at + 1,
        echo: false,
        ..config.clone()
    };
    let mut outcome = run(&best);
    if outcome.failure.is_none() {
        // Cut short, the plan's last quiet point moved: keep the whole run.
        best.steps = config.steps;
        outcome = run(&best);
    }
    let mut tries = 0;
    for i in (0..failed_at).rev() {
        if tries == budget {
            break;
        }
        if best.skip.contains(&i) {
            continue;
        }
        tries += 1;
        let mut candidate = best.clone();
        candidate.skip.insert(i);
        let attempt = run(&candidate);
        if attempt.failure.is_some() {
            best = candidate;
            outcome = attempt;
        }
    }
    (best, outcome)
}

/// The command that replays `config`.
pub fn replay_command(config: &RunConfig) -> String {
    let mut command = format!(
        "scripts/simulate --seed {} --steps {}",
        config.seed, config.steps
    );
    if !config.skip.is_empty() {
        let skip: Vec<String> = config.skip.iter().map(|s| s.to_string()).collect();
        command += &format!(" --skip {}", skip.join(","));
    }
    if config.no_attachments {
        command += " --no-attachments";
    }
    command
}
