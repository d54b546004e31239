//! Fuzzes the command WAF: `check_command`, `check_prompt` and `explain` on
//! arbitrary UTF-8, checking the verdict's invariants on the way. Run with
//! `cargo +nightly fuzz run check_command -- -max_total_time=600 -timeout=1`
//! from the repository root (see README).
#![no_main]

use std::sync::OnceLock;

use hotplex_core::waf::{Detector, Verdict};
use libfuzzer_sys::fuzz_target;

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(Detector::new)
}

fn check_invariants(input: &str, v: &Verdict) {
    assert_eq!(v.blocked, v.level.blocks(), "blocked disagrees with level");
    assert_eq!(
        v.is_safe(),
        v.rule_id.is_none(),
        "rule id without a finding"
    );
    if let Some(span) = &v.span {
        assert!(
            span.start <= span.end && span.end <= input.len(),
            "span out of bounds"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let d = detector();
    let v = d.check_command(input);
    check_invariants(input, &v);
    let p = d.check_prompt(input);
    check_invariants(input, &p);
    let e = d.explain(input);
    assert_eq!(e.verdict, v, "explain disagrees with check_command");
});
