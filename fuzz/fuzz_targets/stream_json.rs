//! Fuzzes what an agent prints: arbitrary bytes, split into lines the way
//! the engine reads them (invalid UTF-8 replaced), parsed as stream-json
//! and fed to a turn's event tracker. Nothing may panic; a turn's tracker
//! yields nothing after its `result`; a lone surrogate never costs a line
//! that parses once repaired. Run with
//! `cargo +nightly fuzz run stream_json -- -max_total_time=600` in `fuzz/`.
#![no_main]

use hotplex_core::protocol::{
    looks_like_result, parse_line, repair_surrogates, tracker::TurnTracker, Line,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tracker = TurnTracker::new().with_deltas(true);
    for raw in data.split(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(raw);
        if let Some(fixed) = repair_surrogates(&text) {
            // Repairing never adds a lone surrogate and is idempotent.
            assert_eq!(
                repair_surrogates(&fixed),
                None,
                "repair of {text:?} not final"
            );
        }
        match parse_line(&text) {
            Ok(line) => {
                if matches!(line, Line::Result(_)) && text.contains(r#""type":"result""#) {
                    assert!(looks_like_result(text.as_bytes()));
                }
                let was_done = tracker.is_done();
                let events = tracker.push_owned(line);
                if was_done {
                    assert!(events.is_empty(), "events after the result");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
