//! Node.js bindings for hotplex (a napi-rs addon over `hotplex-core`).
//!
//! The JavaScript surface is small and camelCase:
//!
//! ```js
//! const { Detector, Engine } = require('hotplex')
//! const d = new Detector({ onAudit: (e) => console.log(e.kind, e.verdict.level) })
//! d.checkCommand('rm -rf /') // { blocked: true, level: 'critical', ... }
//!
//! const engine = new Engine({ binary: 'claude' })
//! const turn = await engine.execute('session-1', 'hello', { onEvent: (e) => console.log(e.type) })
//! ```
//!
//! Design notes:
//!
//! * Verdicts are plain objects; `span` is converted from UTF-8 byte offsets
//!   to JavaScript string (UTF-16 code unit) offsets.
//! * Errors are JS `Error`s with a `code`: `HOTPLEX_` + the core's error
//!   name upper-cased (`HOTPLEX_INVALID_RULE`, `HOTPLEX_INVALID_CONFIG`,
//!   `HOTPLEX_CLOSED`, ...; `index.js` exports them as `ErrorCode`);
//!   [`to_js_error_for`] is the one place that maps `hotplex_core::Error`.
//! * The session pool (`Engine`, `TurnStream`) lives in [`engine`]; its
//!   design notes are there. The host's functions the agent reaches
//!   (`canUseTool`, hooks, host tools) are called through [`host`]. Metrics, the lifecycle observer and the log
//!   bridge (`setLogger`) live in [`telemetry`].
//! * The audit callback: the core calls its callback synchronously on the
//!   checking thread, and requires it to be `Send + Sync`. A JS function is
//!   neither, so the core callback only pushes owned events onto a queue; each
//!   `check*` method (which runs on the JS thread, holding an `Env`) drains
//!   the queue and calls the JS function before returning. Events therefore
//!   arrive synchronously and in call order, and an exception thrown by the
//!   callback is caught and discarded, like a panic in a Rust callback.

#![deny(missing_docs)]

mod abort;
mod engine;
mod host;
mod json;
pub mod telemetry;

use std::sync::{Arc, Mutex, MutexGuard};

use hotplex_core::waf::{self, CheckKind};
use hotplex_core::ErrorCode;
use napi::bindgen_prelude::{Function, FunctionRef, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue, Result, Status, ValueType};
use napi_derive::napi;

/// The version of the hotplex core library, e.g. `"0.1.0"`.
#[napi]
pub fn version() -> String {
    hotplex_core::VERSION.to_owned()
}

/// How this process starts each session's supervisor: `'exec'` (the small
/// program embedded in hotplex, which holds none of this process's memory)
/// or `'fork'` (a copy of this process: where the program is unavailable,
/// or with `HOTPLEX_SUPERVISOR=fork` in the environment).
#[napi(ts_return_type = "'exec' | 'fork'")]
pub fn supervisor_mode() -> String {
    hotplex_core::proc::supervisor_mode().as_str().to_owned()
}

/// The most sessions this process's open-files limit allows. Like creating
/// an `Engine`, it first raises the soft open-files limit to the hard one
/// (once per process).
#[napi]
pub fn session_ceiling() -> f64 {
    // Far below 2^53: the ceiling is the descriptor limit divided by five.
    hotplex_core::proc::session_ceiling() as f64
}

/// The outcome of screening one command, prompt or tool call.
///
/// When several rules match, the most severe one is reported (ties go to the
/// rule that comes first).
#[napi(object, object_from_js = false, use_nullable = true)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// `true` when `level` is `'critical'` or `'high'`: the caller must not run it.
    pub blocked: bool,
    /// Severity of the reported match, or `'safe'` if nothing matched.
    #[napi(ts_type = "'critical' | 'high' | 'moderate' | 'safe'")]
    pub level: String,
    /// The level's number: critical 1, high 2, moderate 3, safe -1.
    pub level_value: i32,
    /// Id of the reported rule, e.g. `'file_delete.rm_root'` (`null` when safe).
    pub rule_id: Option<String>,
    /// Category of the reported rule, e.g. `'file_delete'` (`null` when safe).
    pub category: Option<String>,
    /// Human-readable reason: the rule's description, or `'no rule matched'`.
    pub reason: String,
    /// `[start, end)` of the matched part of the input, in JavaScript string
    /// (UTF-16) offsets, so `input.slice(start, end)` is the match.
    #[napi(ts_type = "[number, number]")]
    pub span: Option<Vec<u32>>,
    /// The text the reported rule judged (the canonical simple command after
    /// quote removal and wrapper stripping, or the raw text).
    pub canonical: Option<String>,
    /// What to do instead.
    pub suggestions: Vec<String>,
}

/// What the `onAudit` callback receives for every non-safe verdict.
#[napi(object, object_from_js = false)]
pub struct AuditEvent {
    /// Which method produced the verdict.
    #[napi(ts_type = "'command' | 'prompt' | 'tool'")]
    pub kind: String,
    /// The input as given (for tool calls: the tool input as JSON text).
    pub input: String,
    /// The verdict returned to the caller.
    pub verdict: Verdict,
}

/// One rule that matched, in an `Explanation`.
#[napi(object, object_from_js = false)]
pub struct Hit {
    /// The rule's id, e.g. `'file_delete.rm_recursive_outside_tree'`.
    pub rule_id: String,
    /// The rule's level.
    #[napi(ts_type = "'critical' | 'high' | 'moderate' | 'safe'")]
    pub level: String,
    /// The level's number: critical 1, high 2, moderate 3, safe -1.
    pub level_value: i32,
    /// The rule's category, e.g. `'file_delete'`.
    pub category: String,
    /// What the rule judged.
    #[napi(ts_type = "'text' | 'script' | 'command' | 'redirect' | 'pipeline' | 'code'")]
    pub scope: String,
    /// The text it matched, readable (argument spaces and pipes restored).
    pub text: String,
}

/// Every stage of judging one command, from `Detector.explain()`: what the
/// shell front end made of it, every rule that matched and the verdict.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Explanation {
    /// The command, as given.
    pub input: String,
    /// The control-byte pre-check's verdict when it decided alone (nothing
    /// else was analysed then), else `null`.
    pub control: Option<Verdict>,
    /// Canonical simple commands, each wrapper level on its own
    /// (`'sudo rm -rf /'`, then `'rm -rf /'`).
    pub commands: Vec<String>,
    /// Redirections, as `'op target'`.
    pub redirects: Vec<String>,
    /// Pipelines, commands joined by `' | '`.
    pub pipelines: Vec<String>,
    /// Interpreter code and SQL statements, prefixed by the program.
    pub code: Vec<String>,
    /// `true` when a parse limit was hit (the verdict is then at least
    /// `'moderate'`).
    pub incomplete: bool,
    /// Every rule that matched, in scope order (not only the reported one).
    pub hits: Vec<Hit>,
    /// What the command does, as the effect model derived it
    /// (`'critical: delete-tree /etc (recursive delete)'`); the verdict is
    /// the stricter of these and the rules.
    pub effects: Vec<String>,
    /// The verdict `checkCommand` returns for the same input.
    pub verdict: Verdict,
}

/// Options for `new Detector(options)`.
#[napi(object, object_to_js = false)]
pub struct DetectorOptions {
    /// Custom rules, in the line format (`pattern|description|level|category`,
    /// one per line) or as a JSON array of rule objects. They are added after
    /// the built-in rules.
    pub rules: Option<String>,
    /// Absolute paths that file tools may touch even where a rule would object.
    pub allow_paths: Option<Vec<String>>,
    /// Whether the built-in rules are on (default `true`).
    pub builtin_rules: Option<bool>,
    /// Called synchronously, in call order, with every non-safe verdict before
    /// the check returns. Exceptions it throws are caught and ignored.
    #[napi(ts_type = "(event: AuditEvent) => void")]
    pub on_audit: Option<FunctionRef<AuditEvent, ()>>,
}

/// An audit event waiting to be handed to the JS callback.
struct Pending {
    kind: CheckKind,
    input: String,
    verdict: waf::Verdict,
}

type Queue = Arc<Mutex<Vec<Pending>>>;

fn lock(q: &Queue) -> MutexGuard<'_, Vec<Pending>> {
    // A poisoned queue still holds valid events.
    q.lock().unwrap_or_else(|e| e.into_inner())
}

/// The JS audit callback and the queue the core callback fills.
struct Audit {
    queue: Queue,
    callback: FunctionRef<AuditEvent, ()>,
}

/// The command WAF: screens shell commands, prompts and Claude Code tool
/// calls before they run.
///
/// ```js
/// const d = new Detector()
/// d.checkCommand('git status; rm -rf /').blocked // true
/// d.checkCommand("echo 'rm -rf /'").blocked      // false
/// ```
#[napi]
pub struct Detector {
    inner: waf::Detector,
    audit: Option<Audit>,
}

#[napi]
impl Detector {
    /// Builds a detector. Throws an `Error` with `code`
    /// `'HOTPLEX_INVALID_RULE'` (and the 1-based `line`) for a bad custom rule,
    /// or `'HOTPLEX_INVALID_ARGUMENT'` for a relative allow path.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<DetectorOptions>) -> Result<Self> {
        let Some(opts) = options else {
            return Ok(Detector {
                inner: waf::Detector::new(),
                audit: None,
            });
        };
        let mut b = waf::Detector::builder();
        b.builtin_rules(opts.builtin_rules.unwrap_or(true));
        if let Some(rules) = &opts.rules {
            b.rules_from_str(rules).map_err(|e| to_js_error(&env, e))?;
        }
        for p in opts.allow_paths.iter().flatten() {
            b.allow_path(p).map_err(|e| to_js_error(&env, e))?;
        }
        let audit = opts.on_audit.map(|callback| {
            let queue = Queue::default();
            let q = Arc::clone(&queue);
            b.on_audit(move |ev| {
                lock(&q).push(Pending {
                    kind: ev.kind,
                    input: ev.input.to_owned(),
                    verdict: ev.verdict.clone(),
                });
            });
            Audit { queue, callback }
        });
        let inner = b.build().map_err(|e| to_js_error(&env, e))?;
        Ok(Detector { inner, audit })
    }

    /// Screens a shell command line, as an agent's Bash tool would run it.
    #[napi]
    pub fn check_command(&self, env: Env, command: String) -> Verdict {
        let v = self.inner.check_command(&command);
        self.deliver(&env);
        to_js_verdict(&v, &command)
    }

    /// Shows how a command is judged, for debugging rules: the canonical
    /// texts of every scope, every rule that matched and the verdict. Nothing
    /// is audited.
    #[napi]
    pub fn explain(&self, command: String) -> Explanation {
        to_js_explanation(self.inner.explain(&command), &command)
    }

    /// Screens a natural-language prompt. Prose never blocks; code in it
    /// (fenced blocks, inline code, command lines) is judged as commands.
    #[napi]
    pub fn check_prompt(&self, env: Env, text: String) -> Verdict {
        let v = self.inner.check_prompt(&text);
        self.deliver(&env);
        to_js_verdict(&v, &text)
    }

    /// Screens a Claude Code tool call: `name` is the tool name (`Bash`,
    /// `Write`, `Edit`, `Read`, ...), `input` its input object, or that object
    /// as JSON text. Throws `'HOTPLEX_INVALID_ARGUMENT'` when the input is
    /// not a JSON object.
    #[napi]
    pub fn check_tool(
        &self,
        env: Env,
        name: String,
        #[napi(ts_arg_type = "string | object")] input: Unknown,
    ) -> Result<Verdict> {
        let json = tool_input_json(&env, input)?;
        let result = self.inner.check_tool(&name, &json);
        self.deliver(&env);
        let v = result.map_err(|e| to_js_error(&env, e))?;
        Ok(to_js_verdict(&v, &json))
    }
}

impl Detector {
    /// Hands queued audit events to the JS callback, oldest first. Exceptions
    /// thrown by the callback are cleared and ignored.
    fn deliver(&self, env: &Env) {
        let Some(audit) = &self.audit else { return };
        // Take the batch before calling out: the callback may itself call a
        // check method, which delivers its own (later) events re-entrantly.
        let batch = std::mem::take(&mut *lock(&audit.queue));
        if batch.is_empty() {
            return;
        }
        let Ok(cb) = audit.callback.borrow_back(env) else {
            return;
        };
        for p in batch {
            let event = AuditEvent {
                kind: p.kind.as_str().to_owned(),
                verdict: to_js_verdict(&p.verdict, &p.input),
                input: p.input,
            };
            // `call` clears a pending JS exception and returns it as `Err`.
            let _ = cb.call(event);
        }
    }
}

/// The tool input as JSON text: strings as given, objects `JSON.stringify`'d.
fn tool_input_json(env: &Env, input: Unknown) -> Result<String> {
    let invalid = |msg: String| to_js_error(env, hotplex_core::Error::InvalidArgument(msg));
    match input.get_type()? {
        ValueType::String => input.coerce_to_string()?.into_utf8()?.into_owned(),
        ValueType::Object => {
            let json: Object = env.get_global()?.get_named_property("JSON")?;
            let stringify: Function<Unknown, Unknown> = json.get_named_property("stringify")?;
            // `call`, unlike `apply`, clears the exception JSON.stringify may
            // throw (cycles, BigInt), so ours is the one the caller sees.
            let out = stringify.call(input).map_err(|e| {
                invalid(format!(
                    "tool input cannot be serialised to JSON: {}",
                    e.reason
                ))
            })?;
            if out.get_type()? != ValueType::String {
                return Err(invalid(
                    "tool input cannot be serialised to JSON".to_owned(),
                ));
            }
            out.coerce_to_string()?.into_utf8()?.into_owned()
        }
        other => Err(invalid(format!(
            "tool input must be a string or an object, got {other}"
        ))),
    }
}

/// The JS `code` of a core error code: `HOTPLEX_` + its name upper-cased
/// (`HOTPLEX_INVALID_CONFIG`, ...).
fn js_code(code: ErrorCode) -> String {
    format!("HOTPLEX_{}", code.name().to_ascii_uppercase())
}

/// The `code` of every error, in the core's table order. `index.js` builds
/// the exported `ErrorCode` object from it.
#[napi(js_name = "__errorCodes", skip_typescript)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL.into_iter().map(js_code).collect()
}

/// The one place where `hotplex_core::Error` becomes a JS `Error`; see
/// [`to_js_error_for`].
fn to_js_error(env: &Env, err: hotplex_core::Error) -> napi::Error {
    to_js_error_for(env, err, "")
}

/// Maps a core error to a JS `Error` whose `code` is [`js_code`] of
/// [`hotplex_core::Error::code`], with what [`hotplex_core::Error::detail`]
/// carries as camelCase properties (`subtype` of a failed turn, `line` of a
/// bad rule). A blocked prompt's `verdict` is a `Verdict` like
/// `Detector`'s, its `span` over `input` (the prompt) in UTF-16 offsets.
fn to_js_error_for(env: &Env, err: hotplex_core::Error, input: &str) -> napi::Error {
    js_error(env, err.code(), &err.to_string(), |obj| {
        if let hotplex_core::Error::DangerBlocked(v) = &err {
            return obj.set_named_property("verdict", to_js_verdict(v, input));
        }
        if let Some(serde_json::Value::Object(detail)) = err.detail() {
            for (k, v) in detail {
                // `error` repeats the code; `message` is the Error's own.
                if k != "error" && k != "message" {
                    obj.set_named_property(&json::camel(&k), v)?;
                }
            }
        }
        Ok(())
    })
}

/// A JS `Error` with `message`, the `code` of `code` and what `extra` sets.
fn js_error(
    env: &Env,
    code: ErrorCode,
    message: &str,
    extra: impl FnOnce(&mut Object) -> Result<()>,
) -> napi::Error {
    let build = || -> Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
        obj.set_named_property("code", js_code(code))?;
        extra(&mut obj)?;
        Ok(napi::Error::from(obj.to_unknown()))
    };
    // Fall back to a plain error (napi puts `code` on it from the status).
    build().unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, message))
}

/// Converts a core verdict, re-expressing its byte span over `input` in
/// UTF-16 code units.
fn to_js_verdict(v: &waf::Verdict, input: &str) -> Verdict {
    Verdict {
        blocked: v.blocked,
        level: v.level.as_str().to_owned(),
        level_value: v.level.as_i32(),
        rule_id: v.rule_id.clone(),
        category: v.category.map(|c| c.as_str().to_owned()),
        reason: v.reason.clone(),
        span: v
            .span
            .as_ref()
            .map(|s| vec![utf16_offset(input, s.start), utf16_offset(input, s.end)]),
        canonical: v.canonical.clone(),
        suggestions: v.suggestions.clone(),
    }
}

/// Converts a core explanation; verdict spans index `input` as in
/// [`to_js_verdict`].
fn to_js_explanation(e: waf::Explanation, input: &str) -> Explanation {
    // Exhaustive on purpose: a new field must be added here too.
    let waf::Explanation {
        input: given,
        control,
        commands,
        redirects,
        pipelines,
        code,
        incomplete,
        hits,
        effects,
        verdict,
    } = e;
    Explanation {
        input: given,
        control: control.map(|v| to_js_verdict(&v, input)),
        commands,
        redirects,
        pipelines,
        code,
        incomplete,
        hits: hits
            .into_iter()
            .map(|h| Hit {
                rule_id: h.rule_id,
                level: h.level.as_str().to_owned(),
                level_value: h.level.as_i32(),
                category: h.category.as_str().to_owned(),
                scope: h.scope.to_owned(),
                text: h.text,
            })
            .collect(),
        effects,
        verdict: to_js_verdict(&verdict, input),
    }
}

/// The UTF-16 offset of byte offset `byte` in `s` (characters that start
/// before `byte` count in full; offsets past the end clamp to the length).
fn utf16_offset(s: &str, byte: usize) -> u32 {
    let n: usize = s
        .char_indices()
        .take_while(|(i, _)| *i < byte)
        .map(|(_, c)| c.len_utf16())
        .sum();
    u32::try_from(n).unwrap_or(u32::MAX)
}
