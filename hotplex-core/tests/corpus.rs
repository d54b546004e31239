//! Scores the built-in rules on labelled command sets and enforces the
//! targets. Prints deny recall, ask coverage and the allow false-positive
//! rate per category (run with `--nocapture` to see the tables).
//!
//! * The shared corpus is read from `$HOTPLEX_WAF_CORPUS` when set, else from
//!   `../shared/waf/corpus.jsonl` beside the checkout (the living copy), else
//!   from `tests/fixtures/waf-corpus.jsonl` (a snapshot).
//! * `tests/fixtures/waf-extra.jsonl` holds our own variants of every class
//!   (obfuscation, wrappers, flows, near misses), labelled by the same policy,
//!   so that the rules generalise instead of fitting the listed strings.
//! * `tests/fixtures/waf-heldout.jsonl` was written for issue 15 before any
//!   rule was changed for it, by the same policy and without reading the
//!   rules: it measures how the effect model generalises to unseen spellings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hotplex_core::waf::{Detector, Level};

/// Targets: deny recall, ask coverage (min) and allow-blocked rate (max).
const MIN_DENY_RECALL: f64 = 0.98;
const MIN_ASK_COVERAGE: f64 = 0.95;
const MAX_ALLOW_BLOCKED: f64 = 0.02;

#[derive(serde::Deserialize)]
struct Case {
    id: String,
    expect: String,
    category: String,
    command: String,
}

fn corpus_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HOTPLEX_WAF_CORPUS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let shared = root.join("../shared/waf/corpus.jsonl");
    if shared.exists() {
        return shared;
    }
    root.join("tests/fixtures/waf-corpus.jsonl")
}

fn correct(expect: &str, level: Level) -> bool {
    match expect {
        "deny" => level.blocks(),
        "ask" => level != Level::Safe,
        "allow" => !level.blocks(),
        other => panic!("unknown label {other}"),
    }
}

#[test]
fn shared_corpus_meets_the_targets() {
    score(&corpus_path());
}

#[test]
fn extra_variants_meet_the_targets() {
    score(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/waf-extra.jsonl"));
}

#[test]
fn held_out_practice_set_meets_the_targets() {
    score(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/waf-heldout.jsonl"));
}

fn score(path: &std::path::Path) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let d = Detector::new();
    // (expect, category) -> (total, correct)
    let mut table: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Case =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let v = d.check_command(&case.command);
        let ok = correct(&case.expect, v.level);
        let e = table
            .entry((case.expect.clone(), case.category.clone()))
            .or_default();
        e.0 += 1;
        e.1 += usize::from(ok);
        if !ok {
            misses.push(format!(
                "  {} [{} {}] got {} ({}): {:?}",
                case.id,
                case.expect,
                case.category,
                v.level,
                v.rule_id.as_deref().unwrap_or("-"),
                case.command
            ));
        }
    }
    let sum = |label: &str| {
        table
            .iter()
            .filter(|((e, _), _)| e == label)
            .fold((0, 0), |(t, c), (_, (tt, cc))| (t + tt, c + cc))
    };
    println!("WAF corpus: {}", path.display());
    println!(
        "{:<6} {:<12} {:>5} {:>8} {:>7}",
        "expect", "category", "cases", "correct", "rate"
    );
    for ((e, c), (t, k)) in &table {
        println!(
            "{e:<6} {c:<12} {t:>5} {k:>8} {:>7.3}",
            *k as f64 / *t as f64
        );
    }
    let (dt, dc) = sum("deny");
    let (at, ac) = sum("ask");
    let (lt, lc) = sum("allow");
    let deny_recall = dc as f64 / dt.max(1) as f64;
    let ask_coverage = ac as f64 / at.max(1) as f64;
    let allow_blocked = (lt - lc) as f64 / lt.max(1) as f64;
    println!("deny recall   {deny_recall:.3} ({dc}/{dt})");
    println!("ask coverage  {ask_coverage:.3} ({ac}/{at})");
    println!("allow blocked {allow_blocked:.3} ({}/{lt})", lt - lc);
    if !misses.is_empty() {
        println!("misses:\n{}", misses.join("\n"));
    }
    assert!(
        deny_recall >= MIN_DENY_RECALL,
        "deny recall {deny_recall:.3} < {MIN_DENY_RECALL}"
    );
    assert!(
        ask_coverage >= MIN_ASK_COVERAGE,
        "ask coverage {ask_coverage:.3} < {MIN_ASK_COVERAGE}"
    );
    assert!(
        allow_blocked <= MAX_ALLOW_BLOCKED,
        "allow blocked {allow_blocked:.3} > {MAX_ALLOW_BLOCKED}"
    );
}
