//! Engine and turn options: the one definition of every option, its default
//! and its validation.
//!
//! Bindings do not copy these: they hand the host's options to
//! [`EngineOptions::from_json`] / [`TurnOptions::from_json`] as a JSON object
//! (Python through a dict, Node through napi's serde support with its
//! camelCase keys turned into these snake_case ones, C and Go as JSON text).
//! On that wire every duration is a number of **seconds** (a float), every
//! path a string, `env` an object of strings; unknown keys are rejected with
//! an error that names them, and so is every bad value
//! ([`Error::InvalidConfig`] with the option's name first).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::hooks::{HookHandler, HookSpec};
use super::permission::PermissionHandler;
use super::session::{ImageInput, SessionOptions};
use super::tools::{ToolHandler, ToolServer};
use crate::proc::{ContainmentPreference, DEFAULT_ENV_ALLOW};
use crate::waf::Detector;
use crate::{Error, Result};

/// How an engine runs its agents. The defaults given here are the only copy
/// of them: every binding reads them from the core.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// The agent program: a name looked up in `PATH` (the agent's `PATH`
    /// when `env` sets one) or a path. Resolved when the engine is built.
    /// Default `claude`.
    #[schemars(with = "String")]
    pub binary: PathBuf,
    /// Extra arguments appended to the CLI's (`claude-code`), or the ACP
    /// agent's whole argument list (`acp`: e.g. `["acp"]` for `opencode`).
    pub args: Vec<String>,
    /// The protocol the agents speak: `claude-code` (default) or `acp`
    /// (the Agent Client Protocol). A session may
    /// choose another one (`SessionOptions.provider`). An `acp` engine
    /// refuses, by name, the options only Claude Code takes
    /// (`permission_mode`, `allowed_tools`, `disallowed_tools`,
    /// `system_prompt`, `model`, `hooks`, `tools`, `prewarm`).
    pub provider: super::Provider,
    /// Environment variables set for the agent (override inherited ones).
    #[serde(deserialize_with = "env_map", serialize_with = "env_map_out")]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub env: Vec<(String, String)>,
    /// Host variables the agent inherits (`*` suffix = prefix match).
    /// Default: `PATH`, `HOME`, `USER`, `LANG`, `LC_*`, `TERM`, `TMPDIR`,
    /// `SHELL`; secrets are passed through `env`.
    pub env_allow: Vec<String>,
    /// Most sessions at once. Default 64.
    pub max_sessions: usize,
    /// Most processes starting at once. Default 4.
    pub max_concurrent_starts: usize,
    /// A session with no turn and no output for this long is stopped (its
    /// conversation resumes on the next turn). Seconds on the wire.
    /// Default 1800 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub idle_timeout: Duration,
    /// Default limit of one turn, after the agent first answered. Seconds
    /// on the wire. Default 300 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub turn_timeout: Duration,
    /// Limit for the agent to answer a live control (`set_model`,
    /// `context_usage`, ...). Seconds on the wire. Default 30 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub control_timeout: Duration,
    /// How long a question or plan the agent asks (`ask_user_question`,
    /// `exit_plan_mode`) may wait for its answer. The turn's own timeout
    /// does not run while one waits (a person may take minutes). Seconds on
    /// the wire. Default 1800 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub question_timeout: Duration,
    /// What happens when `question_timeout` passes: unset, the turn is
    /// interrupted and ends with `QuestionTimeout` (the process stays hot);
    /// set, the question or plan is declined with this text, which the
    /// agent reads as the person's answer (e.g. "No answer; use your best
    /// judgement"), and the turn goes on.
    pub question_timeout_answer: Option<String>,
    /// Limit for a new process to print its first line. Seconds on the
    /// wire. Default 30 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub startup_timeout: Duration,
    /// How long an interrupted turn may take to end before the process is
    /// killed. Seconds on the wire. Default 5 s.
    #[serde(deserialize_with = "seconds", serialize_with = "as_seconds")]
    #[schemars(with = "f64")]
    pub interrupt_grace: Duration,
    /// The kill ladder's two grace periods (after closing stdin, after
    /// SIGTERM). Not an option on the wire. Default 2 s and 3 s.
    #[serde(skip)]
    pub kill_grace: (Duration, Duration),
    /// Resume markers and containment records live here; unset keeps
    /// markers in memory (resume works within this engine only).
    #[schemars(with = "Option<String>")]
    pub state_dir: Option<PathBuf>,
    /// Salt of the deterministic provider session id. Default `default`.
    pub namespace: String,
    /// `--permission-mode`.
    pub permission_mode: Option<String>,
    /// `--allowed-tools` (comma-joined).
    pub allowed_tools: Vec<String>,
    /// `--disallowed-tools` (comma-joined).
    pub disallowed_tools: Vec<String>,
    /// `--append-system-prompt`.
    pub system_prompt: Option<String>,
    /// `--model`.
    pub model: Option<String>,
    /// Workdirs must lie under one of these (after resolving symlinks).
    /// Empty: any directory.
    #[schemars(with = "Vec<String>")]
    pub allowed_roots: Vec<PathBuf>,
    /// Workdir of a session's first turn when the turn names none. Default:
    /// the host's cwd. Later turns without a workdir stay in the session's
    /// workdir (its conversation lives there).
    #[schemars(with = "Option<String>")]
    pub default_workdir: Option<PathBuf>,
    /// Largest prompt accepted, in bytes. Default 1 MiB.
    pub max_prompt_bytes: usize,
    /// Live text: start agents with `--include-partial-messages`, so turns
    /// yield `answer_delta`, `thinking_delta` and `tool_input_delta` events
    /// as the model generates (the complete `answer` still follows).
    /// Default off.
    pub partial_messages: bool,
    /// Longest line of agent output kept, in bytes. A longer line is read
    /// to its end and dropped (counted in `bad_lines`); one that is a
    /// turn's `result` fails the turn with `TurnFailed`. The buffer grows
    /// only while such a line is read and is released with it, so idle
    /// sessions hold none. Default 16 MiB.
    pub max_line_bytes: usize,
    /// Most events one turn keeps (in `Turn.events`) and streams. Past it
    /// (or past `max_turn_event_bytes`), the turn's further events are
    /// dropped and counted (`TurnStats.events_dropped`), after one `error`
    /// event saying so; the turn's closing events (`session_stats`,
    /// `error`, `danger_block`) and its answer still arrive. Default
    /// 100,000.
    pub max_turn_events: usize,
    /// Most bytes of event payload (texts, tool inputs and outputs) one
    /// turn keeps and streams; see `max_turn_events`. Default 64 MiB.
    pub max_turn_event_bytes: usize,
    /// Resource limits of each session's process tree (memory, processes,
    /// CPU seconds, open files); none by default. See
    /// [`SessionLimits`](super::SessionLimits).
    pub limits: super::SessionLimits,
    /// Placement across hosts (see [`crate::placement`]): this engine owns
    /// a session only while it holds the session's lease in a store the
    /// hosts share, and keeps each session's transcript there after every
    /// turn, so another host can take the session up. `None` (default):
    /// every session is this engine's, nothing is kept elsewhere.
    pub placement: Option<PlacementOptions>,
    /// Spare processes to keep started for new conversations, one entry
    /// per workdir and set of session options (see
    /// [`PrewarmProfile`](super::PrewarmProfile)); none by default. A later
    /// entry for the same workdir and options replaces an earlier one.
    /// [`crate::Engine::prewarm`] changes them at run time.
    pub prewarm: Vec<super::PrewarmProfile>,
    /// The WAF; `None` uses the built-in rules. Not on the wire (bindings
    /// pass their `Detector` object).
    #[serde(skip)]
    #[schemars(skip)]
    pub detector: Option<Arc<Detector>>,
    /// Decides tool calls the WAF allowed; `None` allows them. Not on the
    /// wire (bindings pass a callback).
    #[serde(skip)]
    #[schemars(skip)]
    pub permission_handler: Option<PermissionHandler>,
    /// Host hooks registered with every agent (see [`super::hooks`]); they
    /// need a `hook_handler`. Bindings build them from the host's functions.
    pub hooks: Vec<HookSpec>,
    /// Calls the host's hooks. Not on the wire.
    #[serde(skip)]
    #[schemars(skip)]
    pub hook_handler: Option<HookHandler>,
    /// Host-defined tools, served to every agent as in-process MCP servers
    /// (see [`super::tools`]); they need a `tool_handler`.
    pub tools: Vec<ToolServer>,
    /// Calls the host's tools. Not on the wire.
    #[serde(skip)]
    #[schemars(skip)]
    pub tool_handler: Option<ToolHandler>,
    /// Receives the engine's lifecycle records (off the hot path, through a
    /// bounded queue). Not on the wire (bindings pass a callback).
    #[serde(skip)]
    #[schemars(skip)]
    pub observer: Option<crate::telemetry::Observer>,
    /// Where records the observer's own delivery loses are counted, with
    /// the engine's (see [`crate::telemetry::DropCounter`]). Not on the wire.
    #[serde(skip)]
    #[schemars(skip)]
    pub observer_drops: Option<crate::telemetry::DropCounter>,
    /// How agents are contained. Not on the wire.
    #[serde(skip)]
    #[schemars(skip)]
    pub containment: ContainmentPreference,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            binary: PathBuf::from("claude"),
            args: Vec::new(),
            provider: super::Provider::ClaudeCode,
            env: Vec::new(),
            env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect(),
            max_sessions: 64,
            max_concurrent_starts: 4,
            idle_timeout: Duration::from_secs(1800),
            turn_timeout: Duration::from_secs(300),
            control_timeout: Duration::from_secs(30),
            question_timeout: Duration::from_secs(1800),
            question_timeout_answer: None,
            startup_timeout: Duration::from_secs(30),
            interrupt_grace: Duration::from_secs(5),
            kill_grace: (Duration::from_secs(2), Duration::from_secs(3)),
            state_dir: None,
            namespace: "default".into(),
            permission_mode: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            system_prompt: None,
            model: None,
            allowed_roots: Vec::new(),
            default_workdir: None,
            max_prompt_bytes: 1 << 20,
            partial_messages: false,
            max_line_bytes: 16 << 20,
            max_turn_events: 100_000,
            max_turn_event_bytes: 64 << 20,
            limits: super::SessionLimits::default(),
            placement: None,
            prewarm: Vec::new(),
            detector: None,
            permission_handler: None,
            hooks: Vec::new(),
            hook_handler: None,
            tools: Vec::new(),
            tool_handler: None,
            observer: None,
            observer_drops: None,
            containment: ContainmentPreference::default(),
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("binary", &self.binary)
            .field("args", &self.args)
            .field("provider", &self.provider)
            .field("max_sessions", &self.max_sessions)
            .field("idle_timeout", &self.idle_timeout)
            .field("turn_timeout", &self.turn_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl EngineOptions {
    /// Options from their wire form: a JSON object whose keys are the field
    /// names above (absent or `null`: the default). Fails with
    /// [`Error::InvalidConfig`] naming the option: an unknown key, a value
    /// of the wrong type or range (`max_sessions: -1`, `env: {"A": 1}`,
    /// `turn_timeout: -1`).
    pub fn from_json(v: &Value) -> Result<EngineOptions> {
        let opts: EngineOptions = from_wire(v, "engine")?;
        opts.validate()?;
        Ok(opts)
    }

    /// The options in their wire form (what [`from_json`](Self::from_json)
    /// reads): `EngineOptions::default().to_json()` is how bindings show the
    /// defaults without a copy of them. Options that cannot travel as JSON
    /// (the detector, the permission handler, containment, the kill ladder)
    /// are left out.
    pub fn to_json(&self) -> Value {
        super::to_value(self)
    }

    /// Checks the values no type can express (positive durations and
    /// counts, a non-empty binary, no Claude-only option for an `acp`
    /// engine). [`crate::Engine::new`] calls it too.
    pub fn validate(&self) -> Result<()> {
        let bad = |name: &str, what: &str| Err(Error::InvalidConfig(format!("{name}: {what}")));
        if self.max_sessions == 0 {
            return bad("max_sessions", "must be at least 1");
        }
        if self.max_concurrent_starts == 0 {
            return bad("max_concurrent_starts", "must be at least 1");
        }
        // A line must at least hold a result; an event budget of zero
        // would drop every event.
        if self.max_line_bytes < 4096 {
            return bad("max_line_bytes", "must be at least 4096");
        }
        if self.max_turn_events == 0 {
            return bad("max_turn_events", "must be at least 1");
        }
        if self.max_turn_event_bytes < 4096 {
            return bad("max_turn_event_bytes", "must be at least 4096");
        }
        for p in &self.prewarm {
            p.validate()?;
        }
        HookSpec::validate_all(&self.hooks)?;
        ToolServer::validate_all(&self.tools)?;
        for (name, d) in [
            ("control_timeout", self.control_timeout),
            ("idle_timeout", self.idle_timeout),
            ("turn_timeout", self.turn_timeout),
            ("question_timeout", self.question_timeout),
            ("startup_timeout", self.startup_timeout),
            ("interrupt_grace", self.interrupt_grace),
        ] {
            if d.is_zero() {
                return bad(name, "must be a positive number of seconds");
            }
        }
        if self.binary.as_os_str().is_empty() {
            return bad("binary", "must not be empty");
        }
        if self.namespace.is_empty() {
            return bad("namespace", "must not be empty");
        }
        if self.provider == super::Provider::Acp {
            super::provider::refuse_claude_only(
                &self.to_json(),
                &EngineOptions::default().to_json(),
                super::provider::CLAUDE_ONLY_ENGINE_OPTIONS,
                "",
            )?;
        }
        if self.question_timeout_answer.as_deref() == Some("") {
            return bad(
                "question_timeout_answer",
                "must not be empty (unset it to end the turn instead)",
            );
        }
        self.limits.validate()
    }

    /// The agent program as it will be run: a path with a slash is made
    /// absolute against the host's cwd (the agent starts in its workdir),
    /// a bare name is looked up in the agent's `PATH` (from `env`, else the
    /// host's). Fails with [`Error::InvalidConfig`] naming what was tried
    /// and how to fix it.
    pub fn resolve_binary(&self) -> Result<PathBuf> {
        resolve_program(&self.binary, &self.env, "binary")
    }
}

/// Resolves an agent program (see [`EngineOptions::resolve_binary`]):
/// `env` is the agent's environment (its `PATH` is searched), `what` the
/// option named in errors.
pub(crate) fn resolve_program(b: &Path, env: &[(String, String)], what: &str) -> Result<PathBuf> {
    if b.as_os_str().is_empty() {
        return Err(Error::InvalidConfig(format!("{what}: must not be empty")));
    }
    if b.components().count() > 1 || b.is_absolute() {
        let path = if b.is_relative() {
            std::env::current_dir()
                .map_err(|e| Error::InvalidConfig(format!("{what}: current directory: {e}")))?
                .join(b)
        } else {
            b.to_owned()
        };
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::InvalidConfig(format!(
                "{what}: {} is not an executable file (hint: set the {what} option to the path of the agent CLI, e.g. /usr/local/bin/claude)",
                path.display()
            )))
        };
    }
    let path_var = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let found = std::env::split_paths(&path_var)
        .map(|dir| dir.join(b))
        .find(|p| is_executable(p));
    found.ok_or_else(|| {
        Error::InvalidConfig(format!(
            "{what}: {:?} was not found in PATH ({}) (hint: install it, e.g. `npm install -g @anthropic-ai/claude-code` or `npm install -g opencode-ai`, or set the {what} option to the agent CLI's full path)",
            b.display().to_string(),
            path_var.to_string_lossy()
        ))
    })
}

/// Per-turn options.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TurnOptions {
    /// The agent's working directory (created if missing). Unset: the
    /// session's current workdir, or for a session's first turn the
    /// engine's `default_workdir`. A session whose process runs elsewhere
    /// is restarted in the new directory.
    #[schemars(with = "Option<String>")]
    pub workdir: Option<PathBuf>,
    /// Overrides the engine's `turn_timeout`. Seconds on the wire.
    #[serde(deserialize_with = "opt_seconds", serialize_with = "opt_as_seconds")]
    #[schemars(with = "Option<f64>")]
    pub timeout: Option<Duration>,
    /// Overrides the engine's `question_timeout` for this turn's questions
    /// and plans. Seconds on the wire.
    #[serde(deserialize_with = "opt_seconds", serialize_with = "opt_as_seconds")]
    #[schemars(with = "Option<f64>")]
    pub question_timeout: Option<Duration>,
    /// Skip the prompt check: a higher layer already approved this prompt
    /// (the seed's `WAFApproved`). Tool calls are still screened.
    pub waf_approved: bool,
    /// Deliver this turn's delta events. Unset: the engine's
    /// `partial_messages`. `true` needs the engine option (its agents must
    /// have been started to print them); `false` leaves them out.
    pub partial_messages: Option<bool>,
    /// The session's agent options from this turn on (see
    /// [`SessionOptions`]): unset keeps the session's current ones; options
    /// that differ from those its process runs with restart it, resuming
    /// the conversation.
    pub session: Option<SessionOptions>,
    /// Task instructions sent with this turn's prompt, in the seed's
    /// `<context>`/`<user_query>` layout ([`super::session::with_instructions`]).
    /// Screened by the WAF with the prompt.
    pub instructions: Option<String>,
    /// Images sent with the prompt (content blocks before its text).
    pub images: Vec<ImageInput>,
}

impl TurnOptions {
    /// Turn options from their wire form (see [`EngineOptions::from_json`]).
    pub fn from_json(v: &Value) -> Result<TurnOptions> {
        let t: TurnOptions = from_wire(v, "turn")?;
        t.validate()?;
        Ok(t)
    }

    /// Checks the session options and images.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.session {
            s.validate()?;
        }
        for i in &self.images {
            i.validate()?;
        }
        Ok(())
    }
}

/// Deserializes `v` (an object, or `null` for all defaults), with errors
/// that start with the path of the offending option.
pub(crate) fn from_wire<T: for<'de> Deserialize<'de> + Default + Serialize>(
    v: &Value,
    what: &str,
) -> Result<T> {
    if v.is_null() {
        return Ok(T::default());
    }
    let Some(obj) = v.as_object() else {
        return Err(Error::InvalidConfig(format!(
            "{what} options must be an object"
        )));
    };
    // A misspelt key is an error even when its value is null (which
    // otherwise means "the default" and is dropped below).
    let known = super::to_value(&T::default());
    if let Some(unknown) = obj.keys().find(|k| known.get(k.as_str()).is_none()) {
        let mut names: Vec<&String> = known
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        names.sort();
        let names: Vec<String> = names.iter().map(|k| format!("`{k}`")).collect();
        return Err(Error::InvalidConfig(format!(
            "{what} options: unknown field `{unknown}`, expected one of {}",
            names.join(", ")
        )));
    }
    // `null` means "the default": drop such keys rather than fail on them.
    let cleaned: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(cleaned)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // serde says "unknown field `x`, expected one of ...".
            Error::InvalidConfig(format!("{what} options: {inner}"))
        } else {
            Error::InvalidConfig(format!("{path}: {inner}"))
        }
    })
}

/// Where an engine's sessions are owned and kept across hosts
/// ([`EngineOptions::placement`]; see [`crate::placement`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlacementOptions {
    /// This engine's name among the owners (a replica, pod or host name;
    /// unique among the engines sharing the store, no spaces).
    pub owner: String,
    /// Where leases and transcripts live, reached by every host: a
    /// directory ([`crate::placement::DirStore`]), or a Redis server's URL
    /// ([`crate::placement::RedisStore`]): `redis://[:password@]host[:port][/db]`,
    /// or a Unix socket, `redis+unix:///path/to.sock` (or `unix://`).
    /// `rediss://` is refused: TLS is not built in. A Redis store is
    /// connected to when the engine starts; an unreachable one is an error.
    #[schemars(with = "String")]
    pub store: PathBuf,
    /// How long a lease lasts unless renewed (the engine renews its leases
    /// every third of it); a host silent for longer loses its sessions to
    /// the next host asked for them. Seconds on the wire. Default 15 s.
    #[serde(
        default = "default_lease_ttl",
        deserialize_with = "seconds",
        serialize_with = "as_seconds"
    )]
    #[schemars(with = "f64")]
    pub lease_ttl: Duration,
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(15)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn to_duration<E: serde::de::Error>(s: f64) -> Result<Duration, E> {
    if !s.is_finite() || s <= 0.0 {
        return Err(E::custom(format!(
            "must be a positive number of seconds, not {s}"
        )));
    }
    Duration::try_from_secs_f64(s).map_err(E::custom)
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    to_duration(f64::deserialize(d)?)
}

fn opt_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<f64>::deserialize(d)?.map(to_duration).transpose()
}

fn as_seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_as_seconds<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_seconds(d, s),
        None => s.serialize_none(),
    }
}

fn env_map_out<S: Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(env.iter().map(|(k, v)| (k, v)))
}

fn env_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let m = std::collections::BTreeMap::<String, String>::deserialize(d)?;
    Ok(m.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        match EngineOptions::from_json(&v) {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn defaults_come_from_one_place() {
        let o = EngineOptions::from_json(&json!({})).unwrap();
        let d = EngineOptions::default();
        assert_eq!(o.max_sessions, d.max_sessions);
        assert_eq!(o.turn_timeout, Duration::from_secs(300));
        assert_eq!(o.env_allow, d.env_allow);
        assert!(EngineOptions::from_json(&Value::Null).is_ok());
    }

    #[test]
    fn the_wire_form_round_trips_with_seconds() {
        let d = EngineOptions::default().to_json();
        assert_eq!(d["turn_timeout"], 300.0);
        assert_eq!(d["env"], json!({}));
        assert!(d.get("detector").is_none());
        let back = EngineOptions::from_json(&d).unwrap();
        assert_eq!(back.turn_timeout, Duration::from_secs(300));
    }

    #[test]
    fn wire_values_are_seconds_paths_and_string_maps() {
        let o = EngineOptions::from_json(&json!({
            "binary": "/bin/sh", "turn_timeout": 1.5, "env": {"B": "2", "A": "1"},
            "state_dir": "/tmp/x", "max_sessions": 3, "model": null
        }))
        .unwrap();
        assert_eq!(o.turn_timeout, Duration::from_millis(1500));
        assert_eq!(
            o.env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(o.state_dir.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(o.max_sessions, 3);
    }

    #[test]
    fn bad_values_name_the_option() {
        assert!(err(json!({"turn_timeout": -1})).starts_with("turn_timeout:"));
        assert!(err(json!({"turn_timeout": 0})).starts_with("turn_timeout:"));
        assert!(err(json!({"max_sessions": -1})).starts_with("max_sessions:"));
        assert!(err(json!({"max_sessions": 0})).starts_with("max_sessions:"));
        assert!(err(json!({"env": {"A": 1}})).starts_with("env.A:"));
        assert!(err(json!({"args": "x"})).starts_with("args:"));
        let unknown = err(json!({"max_sesions": 3}));
        assert!(unknown.contains("max_sesions"), "{unknown}");
        let unknown_null = err(json!({"max_sesions": null}));
        assert!(unknown_null.contains("max_sesions"), "{unknown_null}");
        assert!(err(json!([1])).contains("object"));
    }

    #[test]
    fn turn_options_reject_unknown_keys_and_bad_timeouts() {
        let t = TurnOptions::from_json(&json!({"workdir": "/w", "timeout": 2})).unwrap();
        assert_eq!(t.timeout, Some(Duration::from_secs(2)));
        assert!(TurnOptions::from_json(&json!({"timout": 2})).is_err());
        assert!(TurnOptions::from_json(&json!({"timeout": -2})).is_err());
    }

    #[test]
    fn the_binary_is_resolved_with_a_hint() {
        let o = EngineOptions {
            binary: "sh".into(),
            ..EngineOptions::default()
        };
        assert!(o.resolve_binary().unwrap().is_absolute());
        let missing = EngineOptions {
            binary: "no-such-agent-cli".into(),
            ..EngineOptions::default()
        };
        let Err(Error::InvalidConfig(m)) = missing.resolve_binary() else {
            panic!("a missing binary must be InvalidConfig")
        };
        assert!(m.contains("no-such-agent-cli") && m.contains("hint"), "{m}");
        let path = EngineOptions {
            binary: "/nonexistent/agent".into(),
            ..EngineOptions::default()
        };
        assert!(
            matches!(path.resolve_binary(), Err(Error::InvalidConfig(m)) if m.contains("/nonexistent/agent"))
        );
    }
}
