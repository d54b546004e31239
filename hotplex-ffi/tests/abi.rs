//! The C ABI, exercised through the extern functions exactly as C calls them.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use hotplex::*;

fn last_error() -> Option<String> {
    let p = hotplex_last_error_message();
    // SAFETY: a non-NULL message is NUL-terminated and valid until the next
    // status-returning call on this thread.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

fn cstr(p: *const c_char) -> Option<String> {
    // SAFETY: the accessors return NULL or a NUL-terminated string owned by a
    // live verdict.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
}

/// A sentinel that an untouched out-param keeps.
fn sentinel<T>() -> *mut T {
    0xdead_beef_usize as *mut T
}

fn new_detector() -> *mut hotplex_detector {
    let mut d = ptr::null_mut();
    // SAFETY: `d` is a valid out-param.
    assert_eq!(unsafe { hotplex_detector_new(&mut d) }, hotplex_status::Ok);
    assert!(!d.is_null());
    d
}

fn check_command(d: *const hotplex_detector, cmd: &[u8]) -> (hotplex_status, *mut hotplex_verdict) {
    let mut v = sentinel();
    // SAFETY: `cmd` is readable for its length; `v` is a valid out-param.
    let st = unsafe { hotplex_detector_check_command(d, cmd.as_ptr().cast(), cmd.len(), &mut v) };
    (st, v)
}

#[test]
fn rm_rf_root_is_blocked_and_critical() {
    let d = new_detector();
    let (st, v) = check_command(d, b"rm -rf /");
    assert_eq!(st, hotplex_status::Ok);
    assert_eq!(last_error(), None);
    // SAFETY: `v` is a live verdict until freed below.
    unsafe {
        assert!(hotplex_verdict_blocked(v));
        assert_eq!(hotplex_verdict_level(v), hotplex_level::Critical);
        assert_eq!(hotplex_verdict_category(v), hotplex_category::FileDelete);
        assert_eq!(
            cstr(hotplex_verdict_category_name(v)).as_deref(),
            Some("file_delete")
        );
        assert!(cstr(hotplex_verdict_rule_id(v)).is_some());
        assert!(!cstr(hotplex_verdict_reason(v)).unwrap().is_empty());
        let (mut s, mut e) = (usize::MAX, usize::MAX);
        assert_eq!(hotplex_verdict_span(v, &mut s, &mut e), hotplex_status::Ok);
        assert!(s < e && e <= 8, "{s}..{e}");
        let n = hotplex_verdict_suggestion_count(v);
        assert!(n > 0);
        for i in 0..n {
            assert!(cstr(hotplex_verdict_suggestion(v, i)).is_some());
        }
        assert!(hotplex_verdict_suggestion(v, n).is_null());

        let mut json: *mut c_char = ptr::null_mut();
        assert_eq!(hotplex_verdict_to_json(v, &mut json), hotplex_status::Ok);
        let text = cstr(json).unwrap();
        hotplex_string_free(json);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["level"], "critical");
        assert_eq!(value["blocked"], true);
        assert_eq!(value["category"], "file_delete");

        hotplex_verdict_free(v);
        hotplex_detector_free(d);
    }
}

#[test]
fn ls_is_safe() {
    let d = new_detector();
    let (st, v) = check_command(d, b"ls -la");
    assert_eq!(st, hotplex_status::Ok);
    // SAFETY: live handles, freed once.
    unsafe {
        assert!(!hotplex_verdict_blocked(v));
        assert_eq!(hotplex_verdict_level(v), hotplex_level::Safe);
        assert_eq!(hotplex_verdict_category(v), hotplex_category::None);
        assert!(hotplex_verdict_rule_id(v).is_null());
        assert!(hotplex_verdict_canonical(v).is_null());
        assert!(hotplex_verdict_category_name(v).is_null());
        assert_eq!(hotplex_verdict_suggestion_count(v), 0);
        // No span: INVALID_ARGUMENT, out-params untouched.
        let (mut s, mut e) = (7, 9);
        assert_eq!(
            hotplex_verdict_span(v, &mut s, &mut e),
            hotplex_status::InvalidArgument
        );
        assert_eq!((s, e), (7, 9));
        assert!(last_error().unwrap().contains("span"));
        hotplex_verdict_free(v);
        hotplex_detector_free(d);
    }
}

#[test]
fn null_handles_and_out_params_are_invalid_arguments() {
    // SAFETY: every pointer is NULL or valid; that is what is being tested.
    unsafe {
        assert_eq!(
            hotplex_detector_new(ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        assert!(last_error().unwrap().contains("NULL"));
        assert_eq!(
            hotplex_detector_builder_new(ptr::null_mut()),
            hotplex_status::InvalidArgument
        );

        // NULL detector: the out-param keeps its value.
        let (st, v) = check_command(ptr::null(), b"ls");
        assert_eq!(st, hotplex_status::InvalidArgument);
        assert_eq!(v, sentinel());
        assert!(last_error().unwrap().contains("detector"));

        let d = new_detector();
        let cmd = b"ls";
        assert_eq!(
            hotplex_detector_check_command(d, cmd.as_ptr().cast(), 2, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        // NULL text with a length is invalid; with length 0 it is "".
        let (st, v) = {
            let mut v = sentinel();
            let st = hotplex_detector_check_prompt(d, ptr::null(), 3, &mut v);
            (st, v)
        };
        assert_eq!(st, hotplex_status::InvalidArgument);
        assert_eq!(v, sentinel());
        let mut v = sentinel();
        assert_eq!(
            hotplex_detector_check_command(d, ptr::null(), 0, &mut v),
            hotplex_status::Ok
        );
        assert_eq!(last_error(), None);
        assert_eq!(hotplex_verdict_level(v), hotplex_level::Safe);
        hotplex_verdict_free(v);

        // Builder functions.
        let r = b"x|y|high|system";
        assert_eq!(
            hotplex_detector_builder_add_rules(ptr::null_mut(), r.as_ptr().cast(), r.len()),
            hotplex_status::InvalidArgument
        );
        assert_eq!(
            hotplex_detector_builder_set_builtin_rules(ptr::null_mut(), false),
            hotplex_status::InvalidArgument
        );
        assert_eq!(
            hotplex_detector_builder_add_allow_path(ptr::null_mut(), ptr::null(), 0),
            hotplex_status::InvalidArgument
        );
        assert_eq!(
            hotplex_detector_builder_set_audit_callback(ptr::null_mut(), None, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        let mut out = sentinel();
        assert_eq!(
            hotplex_detector_builder_build(ptr::null(), &mut out),
            hotplex_status::InvalidArgument
        );
        assert_eq!(out, sentinel());

        // Verdict functions.
        let mut json = sentinel();
        assert_eq!(
            hotplex_verdict_to_json(ptr::null(), &mut json),
            hotplex_status::InvalidArgument
        );
        assert_eq!(json, sentinel());
        let (mut s, mut e) = (1, 2);
        assert_eq!(
            hotplex_verdict_span(ptr::null(), &mut s, &mut e),
            hotplex_status::InvalidArgument
        );
        assert_eq!((s, e), (1, 2));

        // Accessors on NULL: documented values, fail closed.
        assert!(hotplex_verdict_blocked(ptr::null()));
        assert_eq!(hotplex_verdict_level(ptr::null()), hotplex_level::Critical);
        assert_eq!(
            hotplex_verdict_category(ptr::null()),
            hotplex_category::None
        );
        assert!(hotplex_verdict_rule_id(ptr::null()).is_null());
        assert!(hotplex_verdict_reason(ptr::null()).is_null());
        assert!(hotplex_verdict_canonical(ptr::null()).is_null());
        assert_eq!(hotplex_verdict_suggestion_count(ptr::null()), 0);
        assert!(hotplex_verdict_suggestion(ptr::null(), 0).is_null());

        // Every free accepts NULL.
        hotplex_detector_free(ptr::null_mut());
        hotplex_detector_builder_free(ptr::null_mut());
        hotplex_verdict_free(ptr::null_mut());
        hotplex_string_free(ptr::null_mut());
        hotplex_detector_free(d);
    }
}

#[test]
fn invalid_utf8_is_a_utf8_error() {
    let d = new_detector();
    let (st, v) = check_command(d, b"rm -rf \xff/");
    assert_eq!(st, hotplex_status::Utf8);
    assert_eq!(v, sentinel());
    let msg = last_error().unwrap();
    assert!(msg.contains("UTF-8"), "{msg}");

    // SAFETY: valid pointers and lengths.
    unsafe {
        let name = b"Bash";
        let json = b"{\"command\": \"\xc3\x28\"}";
        let mut v = sentinel();
        let st = hotplex_detector_check_tool(
            d,
            name.as_ptr().cast(),
            name.len(),
            json.as_ptr().cast(),
            json.len(),
            &mut v,
        );
        assert_eq!(st, hotplex_status::Utf8);
        assert_eq!(v, sentinel());

        let mut b = ptr::null_mut();
        assert_eq!(hotplex_detector_builder_new(&mut b), hotplex_status::Ok);
        let path = b"/tmp/\xfe";
        assert_eq!(
            hotplex_detector_builder_add_allow_path(b, path.as_ptr().cast(), path.len()),
            hotplex_status::Utf8
        );
        hotplex_detector_builder_free(b);
        hotplex_detector_free(d);
    }
}

#[test]
fn tool_checks_need_a_json_object() {
    let d = new_detector();
    // SAFETY: valid pointers and lengths; handles freed once.
    unsafe {
        let check = |name: &str, json: &str| {
            let mut v = sentinel();
            let st = hotplex_detector_check_tool(
                d,
                name.as_ptr().cast(),
                name.len(),
                json.as_ptr().cast(),
                json.len(),
                &mut v,
            );
            (st, v)
        };
        let (st, v) = check("Bash", r#"{"command": "rm -rf /"}"#);
        assert_eq!(st, hotplex_status::Ok);
        assert!(hotplex_verdict_blocked(v));
        hotplex_verdict_free(v);

        let (st, v) = check("Bash", "[1, 2]");
        assert_eq!(st, hotplex_status::InvalidArgument);
        assert_eq!(v, sentinel());
        assert!(last_error().unwrap().contains("JSON object"));
        hotplex_detector_free(d);
    }
}

#[test]
fn bad_rules_name_their_line_and_leave_the_builder_usable() {
    // SAFETY: valid pointers and lengths; handles freed once.
    unsafe {
        let mut b = ptr::null_mut();
        assert_eq!(hotplex_detector_builder_new(&mut b), hotplex_status::Ok);
        let rules =
            "# comment\nfoo_tool\\s+--wipe|Wipes things|high|system\nbar|oops|extreme|system\n";
        assert_eq!(
            hotplex_detector_builder_add_rules(b, rules.as_ptr().cast(), rules.len()),
            hotplex_status::InvalidRule
        );
        let msg = last_error().unwrap();
        assert!(msg.contains("line 3"), "{msg}");

        let bad_regex = "([unclosed|desc|high|system";
        assert_eq!(
            hotplex_detector_builder_add_rules(b, bad_regex.as_ptr().cast(), bad_regex.len()),
            hotplex_status::InvalidRule
        );
        assert!(last_error().unwrap().contains("line 1"));

        // Nothing was added; a good rule still works.
        let good = "foo_tool\\s+--wipe|Wipes things|high|system";
        assert_eq!(
            hotplex_detector_builder_add_rules(b, good.as_ptr().cast(), good.len()),
            hotplex_status::Ok
        );
        assert_eq!(
            hotplex_detector_builder_set_builtin_rules(b, false),
            hotplex_status::Ok
        );
        let mut d = ptr::null_mut();
        assert_eq!(
            hotplex_detector_builder_build(b, &mut d),
            hotplex_status::Ok
        );

        let (st, v) = check_command(d, b"foo_tool --wipe");
        assert_eq!(st, hotplex_status::Ok);
        assert_eq!(hotplex_verdict_level(v), hotplex_level::High);
        assert_eq!(hotplex_verdict_category(v), hotplex_category::System);
        hotplex_verdict_free(v);

        // Built-ins are off in this detector.
        let (_, v) = check_command(d, b"rm -rf /");
        assert!(!hotplex_verdict_blocked(v));
        hotplex_verdict_free(v);

        // The builder is still usable after build.
        assert_eq!(
            hotplex_detector_builder_set_builtin_rules(b, true),
            hotplex_status::Ok
        );
        let mut d2 = ptr::null_mut();
        assert_eq!(
            hotplex_detector_builder_build(b, &mut d2),
            hotplex_status::Ok
        );
        hotplex_detector_builder_free(b);
        let (_, v) = check_command(d2, b"rm -rf /");
        assert!(hotplex_verdict_blocked(v));
        hotplex_verdict_free(v);

        hotplex_detector_free(d);
        hotplex_detector_free(d2);
    }
}

#[test]
fn relative_allow_paths_are_rejected() {
    // SAFETY: valid pointers and lengths; handles freed once.
    unsafe {
        let mut b = ptr::null_mut();
        assert_eq!(hotplex_detector_builder_new(&mut b), hotplex_status::Ok);
        let rel = "relative/dir";
        assert_eq!(
            hotplex_detector_builder_add_allow_path(b, rel.as_ptr().cast(), rel.len()),
            hotplex_status::InvalidArgument
        );
        let abs = "/tmp/project";
        assert_eq!(
            hotplex_detector_builder_add_allow_path(b, abs.as_ptr().cast(), abs.len()),
            hotplex_status::Ok
        );
        hotplex_detector_builder_free(b);
    }
}

/// One audit call: kind, input, level, rule id.
type Event = (hotplex_check_kind, String, hotplex_level, Option<String>);

/// What the audit callback below records.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
}

unsafe extern "C" fn record(
    user_data: *mut c_void,
    kind: hotplex_check_kind,
    input: *const c_char,
    input_len: usize,
    verdict: *const hotplex_verdict,
) {
    // SAFETY: user_data is the &Recorder passed below, alive for the test;
    // input is input_len bytes followed by a NUL; verdict is live for the call.
    unsafe {
        let rec = &*(user_data as *const Recorder);
        let bytes = std::slice::from_raw_parts(input.cast::<u8>(), input_len);
        assert_eq!(*input.add(input_len), 0, "input is NUL-terminated");
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let level = hotplex_verdict_level(verdict);
        let rule = cstr(hotplex_verdict_rule_id(verdict));
        rec.events.lock().unwrap().push((kind, text, level, rule));
    }
}

#[test]
fn audit_callback_sees_every_non_safe_verdict() {
    let rec = Recorder::default();
    // SAFETY: `rec` outlives the detector; valid pointers and lengths.
    unsafe {
        let mut b = ptr::null_mut();
        assert_eq!(hotplex_detector_builder_new(&mut b), hotplex_status::Ok);
        let ud = &rec as *const Recorder as *mut c_void;
        assert_eq!(
            hotplex_detector_builder_set_audit_callback(b, Some(record), ud),
            hotplex_status::Ok
        );
        let mut d = ptr::null_mut();
        assert_eq!(
            hotplex_detector_builder_build(b, &mut d),
            hotplex_status::Ok
        );
        // Removing the callback affects only later builds.
        assert_eq!(
            hotplex_detector_builder_set_audit_callback(b, None, ptr::null_mut()),
            hotplex_status::Ok
        );
        let mut quiet = ptr::null_mut();
        assert_eq!(
            hotplex_detector_builder_build(b, &mut quiet),
            hotplex_status::Ok
        );
        hotplex_detector_builder_free(b);

        for cmd in [&b"ls -la"[..], b"rm -rf /", b"git status"] {
            let (st, v) = check_command(d, cmd);
            assert_eq!(st, hotplex_status::Ok);
            hotplex_verdict_free(v);
        }
        let (_, v) = check_command(quiet, b"rm -rf /");
        hotplex_verdict_free(v);

        let (name, json) = ("Bash", r#"{"command":"rm -rf /"}"#);
        let mut v = ptr::null_mut();
        let st = hotplex_detector_check_tool(
            d,
            name.as_ptr().cast(),
            name.len(),
            json.as_ptr().cast(),
            json.len(),
            &mut v,
        );
        assert_eq!(st, hotplex_status::Ok);
        hotplex_verdict_free(v);
        hotplex_detector_free(d);
        hotplex_detector_free(quiet);
    }
    let events = rec.events.into_inner().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, hotplex_check_kind::Command);
    assert_eq!(events[0].1, "rm -rf /");
    assert_eq!(events[0].2, hotplex_level::Critical);
    assert!(events[0].3.is_some());
    assert_eq!(events[1].0, hotplex_check_kind::Tool);
    assert_eq!(events[1].1, r#"{"command":"rm -rf /"}"#);
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count(
    _: *mut c_void,
    _: hotplex_check_kind,
    _: *const c_char,
    _: usize,
    _: *const hotplex_verdict,
) {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn one_detector_serves_many_threads() {
    let mut b = ptr::null_mut();
    let mut d = ptr::null_mut();
    // SAFETY: valid out-params.
    unsafe {
        assert_eq!(hotplex_detector_builder_new(&mut b), hotplex_status::Ok);
        assert_eq!(
            hotplex_detector_builder_set_audit_callback(b, Some(count), ptr::null_mut()),
            hotplex_status::Ok
        );
        assert_eq!(
            hotplex_detector_builder_build(b, &mut d),
            hotplex_status::Ok
        );
        hotplex_detector_builder_free(b);
    }
    // Raw pointers are not Send; the detector is thread-safe by contract.
    let addr = d as usize;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(move || {
                let d = addr as *const hotplex_detector;
                for _ in 0..25 {
                    let (st, v) = check_command(d, b"rm -rf /");
                    assert_eq!(st, hotplex_status::Ok);
                    // SAFETY: live verdict, freed once.
                    unsafe {
                        assert!(hotplex_verdict_blocked(v));
                        hotplex_verdict_free(v);
                    }
                    // An error on this thread does not leak into others.
                    let (st, _) = check_command(d, b"\xff");
                    assert_eq!(st, hotplex_status::Utf8);
                    assert!(last_error().is_some());
                }
            });
        }
    });
    assert_eq!(CALLS.load(Ordering::SeqCst), 100);
    assert_eq!(last_error(), None, "other threads' errors are theirs");
    // SAFETY: no check is in progress any more.
    unsafe { hotplex_detector_free(d) };
}

#[test]
fn nul_bytes_in_input_are_checked_not_truncated() {
    let d = new_detector();
    let (st, v) = check_command(d, b"ls\0; rm -rf /");
    assert_eq!(st, hotplex_status::Ok);
    // SAFETY: live handles, freed once.
    unsafe {
        assert!(hotplex_verdict_blocked(v));
        hotplex_verdict_free(v);
        hotplex_detector_free(d);
    }
}

#[test]
fn versions() {
    assert_eq!(hotplex_abi_version(), HOTPLEX_ABI_VERSION);
    let v = cstr(hotplex_version()).unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

fn explain(d: *const hotplex_detector, cmd: &[u8]) -> (hotplex_status, *mut c_char) {
    let mut json = sentinel();
    // SAFETY: `cmd` is readable for its length; `json` is a valid out-param.
    let st = unsafe { hotplex_detector_explain(d, cmd.as_ptr().cast(), cmd.len(), &mut json) };
    (st, json)
}

#[test]
fn explain_returns_every_stage_as_json() {
    let d = new_detector();
    let (st, json) = explain(d, b"echo hi | sudo rm -rf / > /dev/null");
    assert_eq!(st, hotplex_status::Ok);
    assert_eq!(last_error(), None);
    let text = cstr(json).unwrap();
    // SAFETY: a string from hotplex_detector_explain, freed once.
    unsafe { hotplex_string_free(json) };
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["input"], "echo hi | sudo rm -rf / > /dev/null");
    assert!(value["control"].is_null());
    assert!(value["commands"].as_array().unwrap().len() >= 2, "{value}");
    assert!(
        !value["pipelines"].as_array().unwrap().is_empty(),
        "{value}"
    );
    assert!(
        !value["redirects"].as_array().unwrap().is_empty(),
        "{value}"
    );
    assert!(value["code"].is_array());
    assert_eq!(value["incomplete"], false);
    let hits = value["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{value}");
    for hit in hits {
        for key in ["rule_id", "level", "category", "scope", "text"] {
            assert!(hit[key].is_string(), "{key} in {hit}");
        }
    }
    assert_eq!(value["verdict"]["level"], "critical");
    assert_eq!(value["verdict"]["blocked"], true);
    // The verdict is the one check_command gives, and one of the hits.
    let (st, v) = check_command(d, b"echo hi | sudo rm -rf / > /dev/null");
    assert_eq!(st, hotplex_status::Ok);
    // SAFETY: live handles, freed once.
    unsafe {
        let rule = cstr(hotplex_verdict_rule_id(v)).unwrap();
        assert_eq!(value["verdict"]["rule_id"], rule.as_str());
        assert!(hits.iter().any(|h| h["rule_id"] == rule.as_str()));
        hotplex_verdict_free(v);
    }

    // A safe command: no hits, a safe verdict.
    let (st, json) = explain(d, b"ls -la");
    assert_eq!(st, hotplex_status::Ok);
    let value: serde_json::Value = serde_json::from_str(&cstr(json).unwrap()).unwrap();
    // SAFETY: freed once.
    unsafe { hotplex_string_free(json) };
    assert_eq!(value["hits"], serde_json::json!([]));
    assert_eq!(value["verdict"]["level"], "safe");
    assert!(value["verdict"]["rule_id"].is_null());

    // NUL bytes survive (escaped) instead of truncating the JSON.
    let (st, json) = explain(d, b"ls\0; rm -rf /");
    assert_eq!(st, hotplex_status::Ok);
    let value: serde_json::Value = serde_json::from_str(&cstr(json).unwrap()).unwrap();
    // SAFETY: freed once.
    unsafe { hotplex_string_free(json) };
    assert_eq!(value["input"], "ls\0; rm -rf /");
    assert_eq!(value["verdict"]["blocked"], true);

    // SAFETY: freed once.
    unsafe { hotplex_detector_free(d) };
}

#[test]
fn explain_errors_leave_the_out_param_untouched() {
    // NULL detector.
    let (st, json) = explain(ptr::null(), b"ls");
    assert_eq!(st, hotplex_status::InvalidArgument);
    assert_eq!(json, sentinel());
    assert!(last_error().unwrap().contains("detector"));

    let d = new_detector();
    // Invalid UTF-8.
    let (st, json) = explain(d, b"rm -rf \xff/");
    assert_eq!(st, hotplex_status::Utf8);
    assert_eq!(json, sentinel());
    assert!(last_error().unwrap().contains("UTF-8"));

    // SAFETY: valid or NULL pointers; that is what is being tested.
    unsafe {
        // NULL out-param.
        assert_eq!(
            hotplex_detector_explain(d, b"ls".as_ptr().cast(), 2, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        assert!(last_error().unwrap().contains("json_out"));
        // NULL text with a length is invalid; with length 0 it is "".
        let mut json = sentinel();
        assert_eq!(
            hotplex_detector_explain(d, ptr::null(), 3, &mut json),
            hotplex_status::InvalidArgument
        );
        assert_eq!(json, sentinel());
        assert_eq!(
            hotplex_detector_explain(d, ptr::null(), 0, &mut json),
            hotplex_status::Ok
        );
        assert_eq!(last_error(), None);
        let value: serde_json::Value = serde_json::from_str(&cstr(json).unwrap()).unwrap();
        hotplex_string_free(json);
        assert_eq!(value["input"], "");
        assert_eq!(value["verdict"]["level"], "safe");
        hotplex_detector_free(d);
    }
}

// The engine's placement calls (owns, adopt, release, drain, load). No turn
// runs here, so any executable does as the agent binary; turns across two
// engines are tests/c/engine.c's and the bindings' (with the reference
// agent).

fn new_engine(options: &str) -> *mut hotplex_engine {
    let mut e = ptr::null_mut();
    // SAFETY: `options` is readable for its length; `e` is a valid out-param.
    let st = unsafe { hotplex_engine_new(options.as_ptr().cast(), options.len(), &mut e) };
    assert_eq!(st, hotplex_status::Ok, "{:?}", last_error());
    assert!(!e.is_null());
    e
}

/// Frees a JSON string from the library and parses it.
fn take_json(p: *mut c_char) -> serde_json::Value {
    let text = cstr(p).unwrap();
    // SAFETY: a string the library handed out, freed once.
    unsafe { hotplex_string_free(p) };
    serde_json::from_str(&text).unwrap()
}

fn owns(e: *const hotplex_engine, id: &str) -> (hotplex_status, bool) {
    let mut owned = false;
    // SAFETY: `id` is readable for its length; `owned` is a valid out-param.
    let st = unsafe { hotplex_engine_owns(e, id.as_ptr().cast(), id.len(), &mut owned) };
    (st, owned)
}

fn adopt(e: *const hotplex_engine, id: &str, workdir: Option<&str>) -> hotplex_status {
    let (w, n) = workdir.map_or((ptr::null(), 0), |w| (w.as_ptr().cast(), w.len()));
    // SAFETY: both strings are readable for their lengths (or NULL, 0).
    unsafe { hotplex_engine_adopt(e, id.as_ptr().cast(), id.len(), w, n) }
}

fn release(e: *const hotplex_engine, id: &str) -> (hotplex_status, bool) {
    let mut released = false;
    // SAFETY: `id` is readable for its length; `released` is valid.
    let st = unsafe { hotplex_engine_release(e, id.as_ptr().cast(), id.len(), &mut released) };
    (st, released)
}

fn drain(e: *const hotplex_engine, seconds: f64) -> (hotplex_status, *mut c_char) {
    let mut json = sentinel();
    // SAFETY: `json` is a valid out-param.
    let st = unsafe { hotplex_engine_drain(e, seconds, &mut json) };
    (st, json)
}

fn load(e: *const hotplex_engine) -> serde_json::Value {
    let mut json = sentinel();
    // SAFETY: `json` is a valid out-param.
    assert_eq!(
        unsafe { hotplex_engine_load(e, &mut json) },
        hotplex_status::Ok
    );
    take_json(json)
}

/// A fresh directory under the system's temp dir.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!(
        "hotplex-abi-{tag}-{}-{nanos}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn placement_calls_check_their_arguments() {
    let e = new_engine(r#"{"binary": "/bin/true"}"#);
    // SAFETY: valid or NULL pointers; that is what is being tested.
    unsafe {
        // NULL engine: out-params untouched.
        let mut owned = true;
        assert_eq!(
            hotplex_engine_owns(ptr::null(), c"s".as_ptr(), 1, &mut owned),
            hotplex_status::InvalidArgument
        );
        assert!(owned);
        assert!(last_error().unwrap().contains("engine"));
        assert_eq!(
            hotplex_engine_adopt(ptr::null(), c"s".as_ptr(), 1, ptr::null(), 0),
            hotplex_status::InvalidArgument
        );
        let mut released = true;
        assert_eq!(
            hotplex_engine_release(ptr::null(), c"s".as_ptr(), 1, &mut released),
            hotplex_status::InvalidArgument
        );
        assert!(released);
        let (st, json) = drain(ptr::null(), 1.0);
        assert_eq!(st, hotplex_status::InvalidArgument);
        assert_eq!(json, sentinel());
        let mut json = sentinel();
        assert_eq!(
            hotplex_engine_load(ptr::null(), &mut json),
            hotplex_status::InvalidArgument
        );
        assert_eq!(json, sentinel());

        // NULL out-params (`released` may be NULL).
        assert_eq!(
            hotplex_engine_owns(e, c"s".as_ptr(), 1, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        assert!(last_error().unwrap().contains("owns"));
        assert_eq!(
            hotplex_engine_drain(e, 1.0, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );
        assert!(last_error().unwrap().contains("json"));
        assert_eq!(
            hotplex_engine_load(e, ptr::null_mut()),
            hotplex_status::InvalidArgument
        );

        // NULL text with a length; bytes that are not UTF-8.
        assert_eq!(
            hotplex_engine_owns(e, ptr::null(), 3, &mut owned),
            hotplex_status::InvalidArgument
        );
        assert_eq!(
            hotplex_engine_adopt(e, c"s".as_ptr(), 1, ptr::null(), 4),
            hotplex_status::InvalidArgument
        );
        assert!(last_error().unwrap().contains("workdir"));
        assert_eq!(
            hotplex_engine_release(e, b"\xff".as_ptr().cast(), 1, ptr::null_mut()),
            hotplex_status::Utf8
        );

        // A deadline that is no number of seconds, before anything else.
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let (st, json) = drain(e, bad);
            assert_eq!(st, hotplex_status::InvalidArgument, "{bad}");
            assert_eq!(json, sentinel());
            assert!(last_error().unwrap().contains("deadline_seconds"), "{bad}");
        }
        hotplex_engine_close(e);
        hotplex_engine_free(e);
    }
}

#[test]
fn without_placement_every_session_is_owned_and_none_moves() {
    let e = new_engine(r#"{"binary": "/bin/true"}"#);
    assert_eq!(owns(e, "chat-1"), (hotplex_status::Ok, true));
    assert_eq!(last_error(), None);

    assert_eq!(adopt(e, "chat-1", None), hotplex_status::InvalidConfig);
    assert!(last_error().unwrap().contains("placement"));
    assert_eq!(
        adopt(e, "chat-1", Some("/tmp")),
        hotplex_status::InvalidConfig
    );

    let (st, released) = release(e, "chat-1");
    assert_eq!((st, released), (hotplex_status::InvalidConfig, false));
    assert!(last_error().unwrap().contains("placement"));

    let (st, json) = drain(e, 0.0);
    assert_eq!(st, hotplex_status::InvalidConfig);
    assert_eq!(json, sentinel());

    let l = load(e);
    assert_eq!(l["sessions"], 0);
    assert_eq!(l["busy"], 0);
    assert_eq!(l["queued"], 0);
    assert_eq!(l["spares"], 0);
    assert!(l["free_slots"].as_u64().unwrap() > 0);
    assert!(l["agent_memory_bytes"].is_u64());
    assert_eq!(l["draining"], false);
    // SAFETY: a live engine, freed once.
    unsafe {
        hotplex_engine_close(e);
        hotplex_engine_free(e);
    }
}

#[test]
fn two_placed_engines_share_a_session_one_at_a_time() {
    let root = temp_dir("placement");
    let store = root.join("store");
    let engine = |owner: &str| {
        let work = root.join(owner);
        std::fs::create_dir_all(&work).unwrap();
        let opts = serde_json::json!({
            "binary": "/bin/true",
            "default_workdir": work,
            "env": {"CLAUDE_CONFIG_DIR": root.join(format!("{owner}-config"))},
            "placement": {"owner": owner, "store": store, "lease_ttl": 30.0},
        });
        new_engine(&opts.to_string())
    };
    let (a, b) = (engine("host-a"), engine("host-b"));

    // Nobody holds a session never used.
    assert_eq!(owns(a, "chat-1"), (hotplex_status::Ok, false));
    assert_eq!(owns(b, "chat-1"), (hotplex_status::Ok, false));

    // A takes it; B cannot while A holds it, and learns who does.
    assert_eq!(adopt(a, "chat-1", None), hotplex_status::Ok);
    assert_eq!(
        adopt(a, "chat-1", None),
        hotplex_status::Ok,
        "again: a no-op"
    );
    assert_eq!(owns(a, "chat-1"), (hotplex_status::Ok, true));
    assert_eq!(owns(b, "chat-1"), (hotplex_status::Ok, false));
    assert_eq!(adopt(b, "chat-1", None), hotplex_status::OwnedElsewhere);
    let detail = hotplex_last_error_detail();
    assert!(!detail.is_null());
    // SAFETY: NUL-terminated, valid until the next status-returning call.
    let detail: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(detail) }.to_str().unwrap()).unwrap();
    assert_eq!(detail["error"], "owned_elsewhere");
    assert_eq!(detail["owner"], "host-a");
    assert_eq!(detail["session"], "chat-1");

    // A lets it go; B takes it up.
    assert_eq!(release(a, "chat-1"), (hotplex_status::Ok, true));
    assert_eq!(release(a, "chat-1"), (hotplex_status::Ok, false));
    assert_eq!(owns(a, "chat-1"), (hotplex_status::Ok, false));
    let work_b = root.join("host-b").join("elsewhere");
    assert_eq!(
        adopt(b, "chat-1", Some(work_b.to_str().unwrap())),
        hotplex_status::Ok
    );
    assert_eq!(owns(b, "chat-1"), (hotplex_status::Ok, true));
    // `released` may be NULL.
    let id = "chat-2";
    assert_eq!(adopt(b, id, None), hotplex_status::Ok);
    // SAFETY: `id` is readable for its length.
    let st = unsafe { hotplex_engine_release(b, id.as_ptr().cast(), id.len(), ptr::null_mut()) };
    assert_eq!(st, hotplex_status::Ok);
    assert_eq!(adopt(b, id, None), hotplex_status::Ok);

    // B drains: both sessions released, sorted; then it takes no new one.
    let (st, json) = drain(b, 1.0);
    assert_eq!(st, hotplex_status::Ok, "{:?}", last_error());
    assert_eq!(take_json(json), serde_json::json!(["chat-1", "chat-2"]));
    assert_eq!(load(b)["draining"], true);
    assert_eq!(load(a)["draining"], false);
    assert_eq!(owns(b, "chat-1"), (hotplex_status::Ok, false));
    let (st, json) = drain(b, 0.0);
    assert_eq!(st, hotplex_status::Ok);
    assert_eq!(take_json(json), serde_json::json!([]));
    let mut stream = sentinel();
    // SAFETY: strings readable for their lengths; `stream` is valid.
    let st = unsafe {
        hotplex_engine_submit(
            b,
            c"chat-3".as_ptr(),
            6,
            c"hi".as_ptr(),
            2,
            ptr::null(),
            0,
            &mut stream,
        )
    };
    assert_eq!(st, hotplex_status::CapacityExceeded);
    assert!(last_error().unwrap().contains("draining"));
    assert_eq!(stream, sentinel());
    // A can have them again.
    assert_eq!(adopt(a, "chat-2", None), hotplex_status::Ok);

    // SAFETY: live engines, freed once.
    unsafe {
        for e in [a, b] {
            hotplex_engine_close(e);
            hotplex_engine_free(e);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
