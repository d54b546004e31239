//! Fuzzes the C ABI with random call sequences on its handles: detectors,
//! builders, verdicts, strings, engines (whose agent is `true`, so turns
//! fail fast through every error path) and turn streams, with NULLs,
//! invalid UTF-8 and bad JSON wherever the header allows a caller to pass
//! them. It never breaks a documented contract (no dangling or foreign
//! handle, no concurrent use), so any crash, leak report or sanitizer
//! finding is a bug of hotplex. Streams may outlive their engine, and do
//! here. Run with
//! `cargo +nightly fuzz run c_abi -- -max_total_time=600` in `fuzz/`.
#![no_main]

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use hotplex::*;
use libfuzzer_sys::fuzz_target;

/// Reads the fuzz input as a program.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    /// Up to 63 bytes of input as a (pointer, length) string, or NULL.
    fn text(&mut self) -> (*const c_char, usize) {
        let n = self.byte().unwrap_or(0);
        if n == 0xff {
            return (null(), 3); // NULL with a length: must be refused
        }
        let n = (n as usize % 64).min(self.0.len());
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        (s.as_ptr().cast(), s.len())
    }
    /// An index into `len` items, or `None` (meaning NULL) when `len` is 0
    /// or the input says so.
    fn pick(&mut self, len: usize) -> Option<usize> {
        let b = self.byte()? as usize;
        (len > 0 && b % 8 != 7).then(|| b % len)
    }
}

#[derive(Default)]
struct Handles {
    /// Detectors built in this run: building one compiles every rule, the
    /// slow part of a run, so a run builds at most one, and rarely.
    built: usize,
    detectors: Vec<*mut hotplex_detector>,
    builders: Vec<*mut hotplex_detector_builder>,
    verdicts: Vec<*mut hotplex_verdict>,
    strings: Vec<*mut c_char>,
    engines: Vec<*mut hotplex_engine>,
    streams: Vec<*mut hotplex_turn_stream>,
}

fn at<T>(v: &[*mut T], i: Option<usize>) -> *mut T {
    i.map_or(null_mut(), |i| v[i])
}

/// Removes the handle at `i` (to be freed), or NULL for `None`.
fn take<T>(v: &mut Vec<*mut T>, i: Option<usize>) -> *mut T {
    i.map_or(null_mut(), |i| v.swap_remove(i))
}

/// A detector and an engine made once per process through the ABI and
/// shared by every run (building a detector compiles every rule: too slow
/// to do in each run). Runs use them but never free or close them.
struct Shared {
    detector: usize,
    engine: usize,
}

fn shared() -> &'static Shared {
    static S: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let (mut d, mut e) = (null_mut(), null_mut());
        // SAFETY: out-params valid for writing.
        unsafe {
            assert_eq!(hotplex_detector_new(&mut d), OK);
            assert_eq!(
                hotplex_engine_new(ENGINE_OPTIONS.as_ptr().cast(), ENGINE_OPTIONS.len(), &mut e),
                OK
            );
        }
        Shared {
            detector: d as usize,
            engine: e as usize,
        }
    })
}

impl Handles {
    /// A detector to use (the shared one, a run's own, or NULL).
    fn detector(&self, inp: &mut Input) -> *const hotplex_detector {
        match inp.pick(self.detectors.len() + 1) {
            Some(0) => shared().detector as *const hotplex_detector,
            Some(i) => self.detectors[i - 1],
            None => null(),
        }
    }
    /// An engine to use (the shared one, a run's own, or NULL).
    fn engine(&self, inp: &mut Input) -> *const hotplex_engine {
        match inp.pick(self.engines.len() + 1) {
            Some(0) => shared().engine as *const hotplex_engine,
            Some(i) => self.engines[i - 1],
            None => null(),
        }
    }
}

const OK: hotplex_status = hotplex_status::Ok;

const ENGINE_OPTIONS: &[u8] =
    br#"{"binary":"true","startup_timeout":2,"turn_timeout":2,"interrupt_grace":1}"#;

unsafe fn step(h: &mut Handles, inp: &mut Input) -> Option<()> {
    let op = inp.byte()?;
    match op % 24 {
        0 if h.built < 1 && inp.byte()? == 0xa5 => {
            h.built += 1;
            let mut d = null_mut();
            if hotplex_detector_new(&mut d) == OK {
                h.detectors.push(d);
            }
        }
        1 => {
            let i = inp.pick(h.detectors.len());
            hotplex_detector_free(take(&mut h.detectors, i));
        }
        2 => {
            let mut b = null_mut();
            if hotplex_detector_builder_new(&mut b) == OK {
                h.builders.push(b);
            }
        }
        3 => {
            let b = at(&h.builders, inp.pick(h.builders.len()));
            let (s, n) = inp.text();
            hotplex_detector_builder_add_rules(b, s, n);
        }
        4 => {
            let b = at(&h.builders, inp.pick(h.builders.len()));
            let on = inp.byte()? & 1 == 1;
            hotplex_detector_builder_set_builtin_rules(b, on);
            let (s, n) = inp.text();
            hotplex_detector_builder_add_allow_path(b, s, n);
        }
        5 if h.built < 1 && inp.byte()? == 0xa5 => {
            h.built += 1;
            let b = at(&h.builders, inp.pick(h.builders.len()));
            let mut d = null_mut();
            let out = if inp.byte()? & 1 == 1 {
                &mut d as *mut _
            } else {
                null_mut()
            };
            if hotplex_detector_builder_build(b, out) == OK {
                h.detectors.push(d);
            }
        }
        6 => {
            let i = inp.pick(h.builders.len());
            hotplex_detector_builder_free(take(&mut h.builders, i));
        }
        7..=9 => {
            let d = h.detector(inp);
            let (s, n) = inp.text();
            let mut v = null_mut();
            let st = match op % 24 {
                7 => hotplex_detector_check_command(d, s, n, &mut v),
                8 => hotplex_detector_check_prompt(d, s, n, &mut v),
                _ => {
                    let (j, jn) = inp.text();
                    hotplex_detector_check_tool(d, s, n, j, jn, &mut v)
                }
            };
            if st == OK {
                assert!(!v.is_null());
                h.verdicts.push(v);
            } else {
                assert!(v.is_null(), "out-param written on failure");
            }
        }
        10 => {
            let d = h.detector(inp);
            let (s, n) = inp.text();
            let mut j = null_mut();
            if hotplex_detector_explain(d, s, n, &mut j) == OK {
                h.strings.push(j);
            }
        }
        11 => {
            let v = at(&h.verdicts, inp.pick(h.verdicts.len()));
            hotplex_verdict_level(v);
            hotplex_verdict_blocked(v);
            hotplex_verdict_category(v);
            hotplex_verdict_category_name(v);
            hotplex_verdict_rule_id(v);
            hotplex_verdict_reason(v);
            hotplex_verdict_canonical(v);
            let (mut a, mut b) = (0usize, 0usize);
            hotplex_verdict_span(v, &mut a, &mut b);
            hotplex_verdict_span(v, null_mut(), null_mut());
            let n = hotplex_verdict_suggestion_count(v);
            hotplex_verdict_suggestion(v, inp.byte()? as usize % (n + 2));
            let mut j = null_mut();
            if hotplex_verdict_to_json(v, &mut j) == OK {
                h.strings.push(j);
            }
        }
        12 => {
            let i = inp.pick(h.verdicts.len());
            hotplex_verdict_free(take(&mut h.verdicts, i));
        }
        13 => {
            let i = inp.pick(h.strings.len());
            hotplex_string_free(take(&mut h.strings, i));
        }
        14 if h.engines.is_empty() && inp.byte()? == 0xa5 => {
            let (s, n) = if inp.byte()? & 3 == 0 {
                inp.text()
            } else {
                (ENGINE_OPTIONS.as_ptr().cast(), ENGINE_OPTIONS.len())
            };
            let mut e = null_mut();
            if hotplex_engine_new(s, n, &mut e) == OK {
                h.engines.push(e);
            }
        }
        15 if h.streams.len() < 4 => {
            let e = h.engine(inp);
            let (sid, sn) = inp.text();
            let (p, pn) = inp.text();
            let (o, on) = inp.text();
            let mut s = null_mut();
            let st = if inp.byte()? & 1 == 0 {
                hotplex_engine_submit(e, sid, sn, p, pn, o, on, &mut s)
            } else {
                hotplex_engine_start(e, sid, sn, p, pn, o, on, &mut s)
            };
            if st == OK {
                h.streams.push(s);
            }
        }
        16 => {
            let s = at(&h.streams, inp.pick(h.streams.len()));
            let mut j = null_mut();
            let timeout = i64::from(inp.byte()? % 50);
            if hotplex_turn_stream_next(s, timeout, &mut j) == OK && !j.is_null() {
                h.strings.push(j);
            }
        }
        17 => {
            let s = at(&h.streams, inp.pick(h.streams.len()));
            let mut j = null_mut();
            if hotplex_turn_stream_finish(s, &mut j) == OK && !j.is_null() {
                h.strings.push(j);
            }
        }
        18 => {
            let s = at(&h.streams, inp.pick(h.streams.len()));
            hotplex_turn_stream_cancel(s);
            let mut fd = -1;
            hotplex_turn_stream_fd(s, &mut fd);
        }
        19 => {
            let i = inp.pick(h.streams.len());
            hotplex_turn_stream_free(take(&mut h.streams, i));
        }
        20 => {
            let e = h.engine(inp);
            let (sid, sn) = inp.text();
            let mut j = null_mut();
            let st = match inp.byte()? % 5 {
                0 => hotplex_engine_sessions(e, &mut j),
                1 => hotplex_engine_metrics_text(e, &mut j),
                2 => hotplex_engine_metrics_snapshot(e, &mut j),
                3 => hotplex_engine_session_stats(e, sid, sn, &mut j),
                _ => {
                    let mut existed = false;
                    hotplex_engine_stop_session(e, sid, sn, &mut existed)
                }
            };
            if st == OK && !j.is_null() {
                h.strings.push(j);
            }
        }
        21 => {
            // Closing is for a run's own engine only (or NULL).
            let e = at(&h.engines, inp.pick(h.engines.len()));
            hotplex_engine_close(e);
        }
        22 => {
            let i = inp.pick(h.engines.len());
            hotplex_engine_free(take(&mut h.engines, i));
        }
        _ => {
            let code = i32::from(inp.byte()?) - 128;
            assert!(!hotplex_status_name(code).is_null());
            hotplex_last_error_message();
            hotplex_last_error_detail();
        }
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let mut h = Handles::default();
    let mut inp = Input(data);
    // SAFETY: `step` keeps every documented contract (see the module docs).
    unsafe {
        while step(&mut h, &mut inp).is_some() {}
        for s in h.streams.drain(..) {
            hotplex_turn_stream_free(s);
        }
        for e in h.engines.drain(..) {
            hotplex_engine_free(e);
        }
        for v in h.verdicts.drain(..) {
            hotplex_verdict_free(v);
        }
        for s in h.strings.drain(..) {
            hotplex_string_free(s);
        }
        for b in h.builders.drain(..) {
            hotplex_detector_builder_free(b);
        }
        for d in h.detectors.drain(..) {
            hotplex_detector_free(d);
        }
    }
});
