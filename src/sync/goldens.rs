//! Golden cases of the sync plans (the style of powersync-sqlite-core's goldens): each file in
//! src/sync/goldens/ gives a plan's input (a page, a pull state, queued entries, a push answer
//! and the local state) and the plan it must produce, as JSON. `UPDATE_GOLDENS=1 cargo test`
//! rewrites the expected plans; review the diff like code.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::plan::{self, Outgoing, PullState};
use super::protocol::{Change, MutationResult, PullResponse};
use crate::store::conflicts::{ConflictMode, LocalChange};
use crate::store::outbox::{Entry, Snapshot};

fn keys(v: &Value) -> HashSet<(String, String)> {
    serde_json::from_value::<Vec<(String, String)>>(v.clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn outcome<T: serde::Serialize, E: std::fmt::Display>(r: Result<T, E>) -> Value {
    match r {
        Ok(plan) => serde_json::to_value(plan).unwrap(),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// Runs one case's plan on its input.
fn run(case: &Value) -> Value {
    let input = &case["input"];
    match case["plan"].as_str().unwrap() {
        "page" => {
            let text = input["changes"].to_string();
            let changes: Vec<Change<'_>> = serde_json::from_str(&text).unwrap();
            let entities: HashSet<String> =
                serde_json::from_value(input["entities"].clone()).unwrap();
            outcome(plan::plan_page(
                &changes,
                &entities,
                &keys(&input["queued"]),
                &keys(&input["in_conflict"]),
            ))
        }
        "validate" => {
            let page = PullResponse::from_json(&input["page"]).unwrap();
            let s = &input["state"];
            let state = PullState {
                limit: s["limit"].as_u64().unwrap() as u32,
                cursor: s["cursor"].as_i64(),
                asked: s["asked"].as_str().map(str::to_string),
                tokens_seen: serde_json::from_value(s["tokens_seen"].clone()).unwrap_or_default(),
                received: s["received"].as_u64().unwrap_or(0),
                estimated: s["estimated"].as_u64(),
            };
            outcome(plan::validate_page(page.view(), &state))
        }
        "coalesce" => {
            let entries: Vec<Entry> = serde_json::from_value(input["entries"].clone()).unwrap();
            outcome::<_, std::convert::Infallible>(Ok(plan::coalesce(entries)))
        }
        "push" => {
            let sent: Vec<Outgoing> = serde_json::from_value(input["sent"].clone()).unwrap();
            let results: Vec<MutationResult> =
                serde_json::from_value(input["results"].clone()).unwrap();
            let locals: HashMap<String, (LocalChange, Option<Snapshot>)> =
                serde_json::from_value(input["locals"].clone()).unwrap_or_default();
            let locals = locals
                .into_iter()
                .map(|(k, v)| (k.parse().unwrap(), v))
                .collect();
            let mode: ConflictMode = serde_json::from_value(input["mode"].clone()).unwrap();
            outcome(plan::plan_push(&sent, results, &locals, mode))
        }
        other => panic!("unknown plan {other}"),
    }
}

#[test]
fn golden_plans() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/sync/goldens");
    let update = std::env::var_os("UPDATE_GOLDENS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the golden cases are missing");
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut case: Value = serde_json::from_str(&text).unwrap();
        let got = run(&case);
        if update {
            case["expected"] = got;
            let text = serde_json::to_string_pretty(&case).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        } else if case["expected"] != got {
            failures.push(format!(
                "{}:\n  expected {}\n  got      {}",
                path.display(),
                case["expected"],
                got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
