//! Checks commands read from stdin, one per line, and prints each verdict:
//! `cargo run -q -p hotplex-core --example waf_check < commands.txt`.
//! A line that starts with `"` is read as a JSON string (for multi-line
//! commands); `{...}` lines in the corpus format (`expect`, `command`) are
//! checked against their label and printed only when wrong.

use std::io::BufRead;

use hotplex_core::waf::{Detector, Level};

fn main() {
    let d = Detector::new();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, expect) = if line.starts_with('{') {
            let v: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    println!("bad line: {e}");
                    continue;
                }
            };
            (
                v["command"].as_str().unwrap_or_default().to_owned(),
                v["expect"].as_str().map(str::to_owned),
            )
        } else if line.starts_with('"') {
            (serde_json::from_str(line).unwrap_or_default(), None)
        } else {
            (line.to_owned(), None)
        };
        let v = d.check_command(&cmd);
        let ok = match expect.as_deref() {
            Some("deny") => v.level.blocks(),
            Some("ask") => v.level != Level::Safe,
            Some("allow") => !v.level.blocks(),
            _ => true,
        };
        if expect.is_none() || !ok {
            println!(
                "{}{:<9} {:<40} {:?}",
                if ok { "" } else { "MISS " },
                v.level.as_str(),
                v.rule_id.as_deref().unwrap_or("-"),
                cmd
            );
        }
    }
}
