//! `scripts/simulate`: runs seeds of the simulator (docs/testing.md, "The simulator").
//!
//!   --seed S [--steps K] [--skip a,b] [--trace]   one seed; prints `seed S: trace HASH`
//!   --no-attachments                              the plan as it was before attachments
//!                                                 (the regression seeds found before them)
//!   --seeds N [--start S] [--steps K]             N seeds from S, with a progress bar and a
//!                                                 summary line; stops at the first failure
//!
//! A failure prints the replay command (shrunk to fewer steps where it still fails) and the
//! trace's last lines, and the exit status is 1.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use syncvault_sim::{RunConfig, replay_command, run, shrink};

const DEFAULT_STEPS: usize = 60;

struct Args {
    seed: Option<u64>,
    seeds: u64,
    start: u64,
    steps: usize,
    skip: BTreeSet<usize>,
    trace: bool,
    shrink: bool,
    no_attachments: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seed: None,
        seeds: 1,
        start: 0,
        steps: DEFAULT_STEPS,
        skip: BTreeSet::new(),
        trace: false,
        shrink: true,
        no_attachments: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{v:?} is not a number"))
        };
        match flag.as_str() {
            "--seed" => args.seed = Some(number(value()?)?),
            "--seeds" => args.seeds = number(value()?)?,
            "--start" => args.start = number(value()?)?,
            "--steps" => args.steps = number(value()?)? as usize,
            "--skip" => {
                for s in value()?.split(',').filter(|s| !s.is_empty()) {
                    args.skip.insert(number(s.to_string())? as usize);
                }
            }
            "--trace" => args.trace = true,
            "--no-shrink" => args.shrink = false,
            "--no-attachments" => args.no_attachments = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The process's peak resident memory in MiB (Linux), for the summary.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn report_failure(config: &RunConfig, at: usize, message: &str, shrink_it: bool) {
    eprintln!("seed {}: FAILED at step {at}: {message}", config.seed);
    let (small, outcome) = if shrink_it {
        eprintln!("shrinking...");
        shrink(config, at, 80)
    } else {
        (config.clone(), run(config))
    };
    if let Some((at, message, tail)) = &outcome.failure {
        eprintln!("smallest failing run: step {at}: {message}");
        eprintln!("last steps of its trace:");
        for line in tail {
            eprintln!("  {line}");
        }
    }
    eprintln!("replay: {}", replay_command(&small));
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("simulate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(seed) = args.seed {
        let config = RunConfig {
            seed,
            steps: args.steps,
            skip: args.skip.clone(),
            echo: args.trace,
            no_attachments: args.no_attachments,
        };
        let outcome = run(&config);
        println!("seed {seed}: trace {}", outcome.trace_hash);
        if let Some((at, message, _)) = &outcome.failure {
            report_failure(&config, *at, message, args.shrink);
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    let bar = indicatif::ProgressBar::new(args.seeds);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {elapsed} {msg}")
            .expect("a valid template"),
    );
    let began = Instant::now();
    let (mut steps, mut last) = (0u64, String::new());
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for seed in args.start..args.start + args.seeds {
        let config = RunConfig {
            seed,
            steps: args.steps,
            no_attachments: args.no_attachments,
            ..Default::default()
        };
        let outcome = run(&config);
        steps += outcome.steps as u64;
        last = outcome.trace_hash.clone();
        for (what, n) in &outcome.counts {
            *counts.entry(what.clone()).or_default() += n;
        }
        bar.inc(1);
        if let Some((at, message, _)) = &outcome.failure {
            bar.abandon();
            report_failure(&config, *at, message, args.shrink);
            println!(
                "simulate: {} seeds run, {steps} steps, 1 failure (seed {seed})",
                seed - args.start + 1
            );
            return ExitCode::FAILURE;
        }
    }
    bar.finish_and_clear();
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "simulate: {} seeds run, {steps} steps, 0 failures, {:.0} steps/s, peak memory {} MiB, last seed {}: trace {last}",
        args.seeds,
        steps as f64 / seconds,
        peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        args.start + args.seeds - 1,
    );
    let exercised: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("simulate: exercised: {}", exercised.join(", "));
    ExitCode::SUCCESS
}
