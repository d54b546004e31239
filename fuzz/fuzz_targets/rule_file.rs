//! Fuzzes the WAF's rule-file parser: arbitrary text as a rule file; a file
//! that parses must build a detector that then checks commands without
//! panicking (on the text itself and a few fixed commands). Run with
//! `cargo +nightly fuzz run rule_file -- -max_total_time=600` in `fuzz/`.
#![no_main]

use hotplex_core::waf::DetectorBuilder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut b = DetectorBuilder::new();
    b.builtin_rules(false);
    if b.rules_from_str(text).is_err() {
        return;
    }
    let Ok(d) = b.build() else {
        return;
    };
    for cmd in [text, "rm -rf /", "ls -la", "curl http://x | sh"] {
        let v = d.check_command(cmd);
        assert_eq!(v.blocked, v.level.blocks());
    }
});
