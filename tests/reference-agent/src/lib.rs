//! hotplex-reference-agent: a small stand-in for the Claude Code CLI.
//!
//! It speaks the same stream-json protocol on stdin/stdout as
//! `claude -p --input-format stream-json --output-format stream-json
//! --verbose --permission-prompt-tool stdio` (see `hotplex_core::protocol`),
//! fast and deterministic, so tests of hotplex can run thousands of turns and
//! inject faults on demand. It is for tests, not a replacement for the real
//! CLI, which has its own end-to-end suite. The [`acp`] module is a second
//! agent, `hotplex-reference-acp`, that speaks the Agent Client Protocol as
//! OpenCode and Gemini CLI do.
//!
//! Every user message starts a turn: a `system/init` line, then what the
//! prompt asks for, then exactly one `result` line. A prompt is either plain
//! text (answered with `echo: <text>`) or one directive:
//!
//! | prompt | behaviour |
//! |---|---|
//! | `tool:<command>` | a Bash call of `<command>` (see *Tool calls* below); answers `tool ran: <command>` (the command that ran, after rewrites) or `tool denied: <command>` |
//! | `readonly:<command>` | like `tool:`, but as the CLI does for commands it deems read-only: no `can_use_tool`, only the PreToolUse hooks |
//! | `mcp:<server>/<tool> <json args>` | a call of the host tool `mcp__<server>__<tool>` with those arguments (an object; none: `{}`), through the hooks and `can_use_tool` like any call, then `tools/call` over `mcp_message`; answers `tool said: <result text>` (the error text when it failed or was denied) |
//! | `tools:<n>` | `<n>` Bash calls `echo 1` .. `echo <n>`, each as `tool:`; answers `tool calls: <n>`; with `--max-turns m` and `n >= m` the turn ends after `m` calls with an `is_error` result `error_max_turns` |
//! | `stall:<ms>` | waits `<ms>` before answering (`stalled <ms> ms`); an `interrupt` control request ends the turn early with an `is_error` result |
//! | `crash` | exits with status 3 in the middle of the turn |
//! | `garbage` | prints a line that is not JSON, then answers |
//! | `flood:<n>` | prints `<n>` assistant text lines, then answers |
//! | `exit` | answers, then exits cleanly |
//! | `fail` | ends the turn with an `is_error` result |
//! | `hang` | never answers, ignores interrupts and reads nothing (only a kill ends it) |
//! | `recall` | answers `history: <earlier prompts joined by " \| ">` |
//! | `after:<text>` | answers `<text>`, then in the same write as the `result` prints stray output (an assistant message and a text delta saying `STALE`) |
//! | `double:<text>` | answers `<text>`, then prints a second `result` (`STALE`) in the same write |
//! | `late:<ms>:<text>` | answers `<text>`; `<ms>` later prints a stray `result` (`STALE`) naming this turn's message |
//! | `badutf8` | prints an assistant message and a `result` whose text holds invalid UTF-8 |
//! | `surrogate` | answers with a `result` whose text is a lone surrogate escape (`\ud800`), as Node prints a cut emoji |
//! | `badresult` | prints a `result` line that is not valid JSON (cut short), then waits for the next message |
//! | `bigline:<mib>` | prints one assistant text line of `<mib>` MiB, then answers |
//! | `closeout` | closes its stdout and keeps running, ignoring stdin's EOF (only signals end it) |
//! | `model?` | answers `model: <current model or "default">` |
//! | `mode?` | answers `mode: <current permission mode or "default">` |
//! | `args?` | answers `args: <its command line without the program name, joined by " ">` |
//! | `env?<NAME>` | answers `env: <the variable's value or "(unset)">` |
//! | `images?` | answers `images: <number of image blocks in the user message>` |
//! | `tools?` | answers `tools: <the tools it knows, joined by ", ">` (`Bash`, then the host's as `mcp__<server>__<tool>`) |
//! | `late?` | answers `late answers: <n>`: control responses read that answered nothing it still waited for (a cancelled hook's late answer, ...) |
//! | `json:<json>` | answers the JSON text; with `--json-schema` the `result` carries it as `structured_output` |
//! | `control:<subtype>` | sends the host a control request `{"subtype": "<subtype>"}`, waits, answers `control answered: success` or `control answered: error: <error text>` |
//! | `cancel:<ms>` | sends a `PostToolUse` hook callback for a made-up Bash call (`no hook` when no PostToolUse hook matches Bash), waits `<ms>`, sends `control_cancel_request` for it and answers `cancelled` without waiting for the hook's answer (one that comes later is read and ignored) |
//! | `ask:<question>? <label> \| <label> ...` | asks the person through `AskUserQuestion` (see *Questions and plans*); more `ask:`/`askmulti:` lines of the prompt are more questions of the same call; answers `tool said: <the tool result>` |
//! | `askmulti:<question>? <label> \| ...` | like `ask:`, a question that allows several choices |
//! | `plan:<text>` | in permission mode `plan`, proposes `<text>` (`\n` is a newline) through `ExitPlanMode`; a rejection makes it revise (`<text>\nRevised after: <feedback>`) and propose again, at most 3 times (then answers `plan rejected: <feedback>`); an approval answers `plan approved after <n> rejections; mode: <mode now>`. Outside plan mode it fails as the CLI's does (`tool said: <tool_use_error>You are not in plan mode...`) |
//!
//! Every answer ends with ` [context: <text>]` for each `additionalContext`
//! a hook gave during the turn, in order. With `--json-schema`, a turn
//! without a `json:` directive carries `structured_output`
//! `{"answer": "<prompt>"}`.
//!
//! **Hooks.** `initialize` may register hooks (`hooks: {Event: [{matcher,
//! hookCallbackIds, timeout}]}`; a matcher of `null`, `""` or `*` matches
//! every tool, else a tool name or `A|B` alternatives). The agent calls
//! them with `hook_callback` requests and waits for each answer:
//! `UserPromptSubmit` (input `{hook_event_name, prompt, session_id}`) when
//! a message arrives; `PreToolUse` (`{hook_event_name, tool_name,
//! tool_input, tool_use_id, session_id}`) before each tool call, in
//! registration order: a `permissionDecision: "deny"` denies the call (the
//! reason is the tool's error) and asks no further hook, an
//! `updatedInput` replaces the input; `PostToolUse` (adds `tool_response`:
//! for Bash `{stdout, stderr, interrupted, isImage}`, for a host tool its
//! `content` blocks) after a call that ran, `PostToolUseFailure` (adds
//! `error`) after one that ran and failed; `Stop` (`{hook_event_name,
//! session_id, stop_hook_active}`) before the `result`. An
//! `additionalContext` in any hook's `hookSpecificOutput` is appended to
//! the answer. A UserPromptSubmit answer `{"decision": "block", "reason":
//! R}` blocks the prompt as the CLI does: a `system/informational` line and
//! a `result` whose text is `UserPromptSubmit operation blocked by
//! hook:\nR\n\nOriginal prompt: <prompt>`, no answer, and the prompt is not
//! kept (the session's transcript is created, empty of it).
//!
//! **Tool calls.** Each call prints its `tool_use`, runs the PreToolUse
//! hooks, then (unless `readonly:`, denied, or allowed for good by an
//! earlier `updatedPermissions`) asks `can_use_tool` (with
//! `permission_suggestions` `[{"type": "addRules", "rules": [{"toolName":
//! <tool>}], "behavior": "allow", "destination": "session"}]` and
//! `tool_use_id`). An allow may carry `updatedInput` (used) and
//! `updatedPermissions` (an `addRules` allow rule naming the tool, without
//! `ruleContent` or with the exact command, makes later such calls skip
//! `can_use_tool`); a deny with `interrupt: true` ends the turn with an
//! `is_error` result `error_during_execution`. Bash commands are never
//! executed: their result is `ran: <command>`. A host tool is called with
//! an `mcp_message` `tools/call`; its result is the text of the returned
//! `content` blocks, an error when `isError` or a JSON-RPC error. Then the
//! `tool_result` and the PostToolUse hooks.
//!
//! **Questions and plans**, as the CLI asks them (`tests/e2e/FACTS.md` w,
//! x): the `tool_use` (`AskUserQuestion {questions: [{question, header:
//! "Q<n>", options: [{label, description: "about <label>"}],
//! multiSelect}]}` or `ExitPlanMode {plan}`), the PreToolUse hooks, then a
//! `can_use_tool` request (with `tool_use_id` and `requires_user_interaction:
//! true`) that waits without a timeout. An allow of a question gives the
//! tool result `Your questions have been answered: "<question>"="<answer>",
//! ... You can now continue with these answers in mind.` (answers keyed by
//! question text, a list joined with `,`; none: `The user did not answer the
//! questions.`); an allow of a plan switches the mode to the `setMode` of its
//! `updatedPermissions`, else to the mode before plan mode (`default` for a
//! process started in plan mode), and prints a `system/status` line with the
//! new `permissionMode`; a deny is the tool's error result. An `interrupt`
//! while it waits makes the agent send `control_cancel_request` for the
//! request, answer the interrupt, and end the turn like the CLI: the rejected
//! tool result, `[Request interrupted by user for tool use]`, an `is_error`
//! result `error_during_execution`.
//!
//! **Host tools.** With `--mcp-config` naming servers of `"type": "sdk"`,
//! the agent, before it answers its first message, sends each server the
//! MCP `initialize` (id 0), `notifications/initialized` and `tools/list`
//! (id 1) as `mcp_message` control requests, waiting for each answer, and
//! knows the listed tools as `mcp__<server>__<tool>`.
//!
//! **Control requests from the host** are answered between turns and during
//! them (while a turn stalls or waits for the host): `initialize` and
//! `interrupt` with `success`; `set_model {model}` (`null`: the default)
//! and `set_permission_mode {mode}` with `success`, changing what `model?`,
//! `mode?` and `system/init` (`model`, `permissionMode`) report (a
//! `system/status` line with the new `permissionMode` follows the answer,
//! as the CLI prints); `get_context_usage` with `{totalTokens, maxTokens: 200000, percentage,
//! categories: [{name: "messages", tokens}]}` (growing with the
//! conversation); `mcp_status` with `{mcpServers: [{name, status:
//! "connected"}]}` for the sdk servers; any other subtype with an error
//! response `Unsupported control request subtype: <subtype>`.
//!
//! **Arguments.** `--session-id <id>` / `--resume <id>` set the reported
//! session id; `--fork-session` with `--resume <id>` copies that
//! conversation's transcript to a new made-up id (reported in `system/init`
//! and `result`; the original is unchanged), with `--resume-session-at
//! <message uuid>` only up to and including that message (an unknown one
//! fails at start, as the CLI's does); `--model <m>` and
//! `--permission-mode <m>` set the initial model and mode; `--max-turns
//! <n>` and `--json-schema <json>` as above; `--mcp-config <json or path>`
//! declares the host's servers; `--no-live-controls` (test-only) answers
//! `set_model`, `set_permission_mode`, `get_context_usage` and
//! `mcp_status` with the unsupported-subtype error, as an old CLI would;
//! `--ignore-prompt-blocks` (test-only) answers a prompt that a
//! UserPromptSubmit hook blocked as if it had not;
//! `--startup-delay-ms <n>` waits before reading input; `--exit-at-start`
//! exits at once with status 2; `--include-partial-messages` streams each
//! answer as 4 `stream_event` text deltas before the complete message, as
//! the CLI does; `--replay-user-messages` echoes each user message (with
//! its `uuid`, `isReplay: true`) after the turn's `system/init` and tags
//! the `result` with `user_message_uuid`, as the CLI does (the echo since
//! 2.1.197, the tag since 2.1.332); `--own-message-uuids` makes it replace
//! the host's message uuids with its own in both. The CLI's other options
//! that take a value (`--system-prompt`, `--append-system-prompt`,
//! `--max-budget-usd`, `--fallback-model`, `--effort`, `--agents`,
//! `--settings`, `--setting-sources`, `--add-dir`, `--plugin-dir`,
//! `--allowed-tools`, ...) consume it and are otherwise only shown by
//! `args?`; everything else is ignored.
//!
//! **Transcripts.** With `HOTPLEX_REF_STATE=<dir>` the agent keeps a
//! transcript per session id there (`<id>.txt`); without it but with
//! `CLAUDE_CONFIG_DIR`, where the CLI keeps them
//! (`$CLAUDE_CONFIG_DIR/projects/<key of the cwd>/<id>.jsonl`, one prompt a
//! line); like the CLI (2.1.197), `--resume` of
//! an id without one prints an error `result` and `No conversation found
//! with session ID: <id>` on stderr and exits 1, and `--session-id` of an id
//! with one prints `Error: Session ID <id> is already in use.` and exits 1.
//! `total_cost_usd` is a running total per process, as the CLI's is.

/// The reference ACP agent (binary `hotplex-reference-acp`).
pub mod acp;

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// What the stdin reader thread hands to the turn loop.
enum Input {
    Line(Value),
    Eof,
}

/// The CLI options that take a value: the value is consumed with the flag
/// (so `--model x` never leaves `x` to be read as a flag).
const VALUE_FLAGS: &[&str] = &[
    "--input-format",
    "--output-format",
    "--permission-prompt-tool",
    "--allowed-tools",
    "--allowedTools",
    "--disallowed-tools",
    "--disallowedTools",
    "--mcp-config",
    "--max-turns",
    "--json-schema",
    "--system-prompt",
    "--append-system-prompt",
    "--model",
    "--permission-mode",
    "--max-budget-usd",
    "--fallback-model",
    "--effort",
    "--agents",
    "--settings",
    "--setting-sources",
    "--add-dir",
    "--plugin-dir",
    "--resume-session-at",
];

/// The control requests an old CLI does not know (`--no-live-controls`).
const LIVE_CONTROLS: &[&str] = &[
    "set_model",
    "set_permission_mode",
    "get_context_usage",
    "mcp_status",
];

/// The command line, read.
#[derive(Default)]
struct Args {
    /// Everything after the program name, as given (`args?`).
    argv: Vec<String>,
    /// `--session-id` / `--resume`: the id, and whether it resumes.
    session: Option<(String, bool)>,
    fork: bool,
    /// `--resume-session-at`: the message a resumed conversation ends at.
    resume_at: Option<String>,
    startup_delay: Duration,
    partial: bool,
    replay: bool,
    own_uuids: bool,
    live_controls: bool,
    /// `--ignore-prompt-blocks`: a UserPromptSubmit block is ignored.
    ignore_blocks: bool,
    model: Option<String>,
    mode: Option<String>,
    max_turns: Option<u32>,
    json_schema: bool,
    mcp_config: Option<String>,
}

impl Args {
    fn parse(argv: Vec<String>) -> Args {
        let mut a = Args {
            live_controls: true,
            ..Args::default()
        };
        let mut it = argv.iter().cloned();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--include-partial-messages" => a.partial = true,
                "--replay-user-messages" => a.replay = true,
                "--own-message-uuids" => a.own_uuids = true,
                "--fork-session" => a.fork = true,
                "--resume-session-at" => a.resume_at = it.next(),
                f if f.starts_with("--resume-session-at=") => {
                    a.resume_at = Some(f["--resume-session-at=".len()..].to_owned());
                }
                "--no-live-controls" => a.live_controls = false,
                "--ignore-prompt-blocks" => a.ignore_blocks = true,
                "--session-id" | "--resume" => {
                    if let Some(v) = it.next() {
                        a.session = Some((v, flag == "--resume"));
                    }
                }
                "--startup-delay-ms" => {
                    let ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                    a.startup_delay = Duration::from_millis(ms);
                }
                "--exit-at-start" => {
                    eprintln!("reference agent: told to exit at start");
                    std::process::exit(2);
                }
                f if VALUE_FLAGS.contains(&f) => {
                    let v = it.next();
                    match f {
                        "--model" => a.model = v,
                        "--permission-mode" => a.mode = v,
                        "--max-turns" => a.max_turns = v.and_then(|v| v.parse().ok()),
                        "--json-schema" => a.json_schema = v.is_some(),
                        "--mcp-config" => a.mcp_config = v,
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        a.argv = argv;
        a
    }

    /// The names of the `sdk` servers in `--mcp-config` (JSON, or a path
    /// to a JSON file, as the CLI takes it).
    fn sdk_servers(&self) -> Vec<String> {
        let Some(text) = &self.mcp_config else {
            return Vec::new();
        };
        let config: Value = serde_json::from_str(text)
            .ok()
            .or_else(|| {
                let file = std::fs::read_to_string(text).ok()?;
                serde_json::from_str(&file).ok()
            })
            .unwrap_or(Value::Null);
        config["mcpServers"]
            .as_object()
            .map(|servers| {
                servers
                    .iter()
                    .filter(|(_, s)| s["type"].as_str() == Some("sdk"))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs the agent on this process's stdin/stdout with `args` (the command
/// line without the program name) and returns when it should exit (or
/// exits the process itself, for `crash` and startup failures).
///
/// The binary calls this; the hotplex demo calls it too, re-executing
/// itself as its own agent so it needs no second program.
pub fn run(args: impl IntoIterator<Item = String>) {
    let args = Args::parse(args.into_iter().collect());
    let (mut session_id, resume) = args
        .session
        .clone()
        .unwrap_or_else(|| (format!("ref-{}", std::process::id()), false));
    // Transcripts, like the CLI's: one file per session id, one prompt per
    // line, so `--resume` of an unknown id fails as the real CLI's does and
    // `recall` proves a resumed conversation kept its history.
    let state = std::env::var_os("HOTPLEX_REF_STATE").map(PathBuf::from);
    // Without it, where the CLI keeps them: under CLAUDE_CONFIG_DIR, in
    // `projects/<the cwd with every non-alphanumeric character as ->/`.
    let cli_dir = std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|_| state.is_none())
        .map(|c| {
            let cwd = std::env::current_dir().unwrap_or_default();
            let key: String = cwd
                .to_string_lossy()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            PathBuf::from(c).join("projects").join(key)
        });
    if let Some(d) = &cli_dir {
        let _ = std::fs::create_dir_all(d);
    }
    let path_of = |id: &str| match (&state, &cli_dir) {
        (Some(d), _) => Some(d.join(format!("{id}.txt"))),
        (None, Some(d)) => Some(d.join(format!("{id}.jsonl"))),
        (None, None) => None,
    };
    let mut transcript = path_of(&session_id);
    let existing = transcript
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let history: Vec<String> = match (existing, &transcript) {
        (Some(_), Some(_)) if !resume => {
            eprintln!("Error: Session ID {session_id} is already in use.");
            std::process::exit(1);
        }
        (Some(t), _) => {
            // A line is `<prompt>` or `<prompt>\x1f<message uuid>`.
            let lines: Vec<(&str, Option<&str>)> = t
                .lines()
                .map(|l| match l.split_once('\x1f') {
                    Some((p, u)) => (p, Some(u)),
                    None => (l, None),
                })
                .collect();
            let keep = match &args.resume_at {
                // As the CLI: the conversation up to and including that
                // message; an id it lacks fails at start.
                Some(at) => match lines.iter().position(|(_, u)| *u == Some(at.as_str())) {
                    Some(i) => i + 1,
                    None => {
                        let why = format!("No message found with message.uuid of: {at}");
                        println!(
                            "{}",
                            json!({"type": "result", "subtype": "error_during_execution",
                                "is_error": true, "num_turns": 0, "session_id": session_id,
                                "errors": [why]})
                        );
                        eprintln!("{why}");
                        std::process::exit(1);
                    }
                },
                None => lines.len(),
            };
            lines[..keep].iter().map(|(p, _)| (*p).to_owned()).collect()
        }
        (None, Some(_)) if resume => {
            let why = format!("No conversation found with session ID: {session_id}");
            println!(
                "{}",
                json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
                    "num_turns": 0, "session_id": session_id, "errors": [why]})
            );
            eprintln!("{why}");
            std::process::exit(1);
        }
        _ => Vec::new(),
    };
    if args.fork && resume {
        // As the CLI's `--fork-session`: the conversation continues under a
        // new id from a copy; the original transcript is left as it was.
        session_id = made_up_uuid(&session_id);
        transcript = path_of(&session_id);
        if let Some(p) = &transcript {
            // The copy keeps the prompts (the message ids stay the original's).
            let mut text = history.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("reference agent: cannot copy the transcript: {e}");
                std::process::exit(1);
            }
        }
    }
    std::thread::sleep(args.startup_delay);
    // stdin is read on its own thread so that an interrupt or a live
    // control can arrive while a turn is stalling or waiting for the host.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(Input::Line(v)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Input::Eof);
    });
    let mut agent = Agent {
        session_id,
        rx,
        queued: VecDeque::new(),
        out: std::io::stdout(),
        turns: 0,
        transcript,
        history,
        hooks: Vec::new(),
        sdk_servers: args.sdk_servers(),
        mcp_ready: false,
        mcp_tools: Vec::new(),
        granted: Vec::new(),
        seq: 0,
        awaited: None,
        late: 0,
        model: args.model.clone(),
        mode: args.mode.clone(),
        pre_plan_mode: None,
        message_uuid: None,
        args,
    };
    agent.run();
}

/// A uuid-like id that no other process makes (the pid, the clock and
/// `seed` hashed), as the CLI makes for a forked conversation.
fn made_up_uuid(seed: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut bits = [0u64; 2];
    for (i, b) in bits.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (i, seed, std::process::id(), std::time::SystemTime::now()).hash(&mut h);
        *b = h.finish();
    }
    let hex = format!("{:016x}{:016x}", bits[0], bits[1]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// Hook callbacks registered for one event and matcher (`initialize`).
struct HookGroup {
    event: String,
    /// `None`: every tool; else a tool name or `A|B` alternatives.
    matcher: Option<String>,
    ids: Vec<String>,
}

impl HookGroup {
    fn matches(&self, tool: Option<&str>) -> bool {
        match (&self.matcher, tool) {
            (None, _) | (_, None) => true,
            (Some(m), Some(t)) => m.split('|').any(|alt| alt.trim() == t),
        }
    }
}

/// An allow rule the host granted (`updatedPermissions`): the tool, and
/// the exact command it is limited to, if any.
struct Grant {
    tool: String,
    content: Option<String>,
}

/// What a turn learned on its way (hook contexts) and how it ends.
#[derive(Default)]
struct TurnNotes {
    /// `additionalContext` values of the turn's hooks, in order.
    contexts: Vec<String>,
    /// Tool calls made so far (for their ids).
    calls: usize,
    /// A permission answer asked to stop the turn (`interrupt: true`).
    interrupted: bool,
}

impl TurnNotes {
    /// Keeps the `additionalContext` of a hook's output.
    fn note(&mut self, hook_output: &Value) {
        if let Some(c) = hook_output["hookSpecificOutput"]["additionalContext"].as_str() {
            self.contexts.push(c.to_owned());
        }
    }
}

/// How a question or plan was answered.
enum Asked {
    /// Allowed: the host's decision (`updatedInput`, `updatedPermissions`).
    Allowed(Value),
    /// Denied (by a hook or the host): the reason.
    Denied(String),
    /// An interrupt came while it waited: the turn ends.
    Interrupted,
}

/// What the CLI tells the model about a question or plan an interrupt
/// cancelled (FACTS w).
const REJECTED_TOOL_USE: &str = "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed.";

/// How one tool call went.
enum Outcome {
    /// It ran; its result text.
    Ran(String),
    /// It ran and failed (a host tool's error); the error text.
    Failed(String),
    /// It was denied (by a hook or the host); the reason.
    Denied(String),
}

struct Agent {
    session_id: String,
    rx: Receiver<Input>,
    /// User messages that arrived while a turn was waiting (answered next).
    queued: VecDeque<Value>,
    out: std::io::Stdout,
    turns: u64,
    transcript: Option<PathBuf>,
    history: Vec<String>,
    /// The hooks registered by `initialize`, in order.
    hooks: Vec<HookGroup>,
    /// The `sdk` servers of `--mcp-config`.
    sdk_servers: Vec<String>,
    /// The sdk servers' tools were listed (before the first answer).
    mcp_ready: bool,
    /// The host's tools, as `mcp__<server>__<tool>`.
    mcp_tools: Vec<String>,
    /// Allow rules kept from `updatedPermissions`.
    granted: Vec<Grant>,
    /// Request ids of this agent's own control requests.
    seq: u64,
    /// A request whose answer may still come while the agent does
    /// something else (`cancel:` before it cancels).
    awaited: Option<String>,
    /// Control responses that answered nothing awaited (`late?`).
    late: u64,
    /// The current model (`--model`, `set_model`); `None`: the default.
    model: Option<String>,
    /// The current permission mode; `None`: the default.
    mode: Option<String>,
    /// The mode before plan mode, which a plain plan approval returns to.
    pre_plan_mode: Option<String>,
    /// The `uuid` of the user message being answered.
    message_uuid: Option<String>,
    args: Args,
}

impl Agent {
    fn emit(&mut self, v: Value) {
        let mut lock = self.out.lock();
        let _ = writeln!(lock, "{v}");
        let _ = lock.flush();
    }

    fn run(&mut self) {
        loop {
            let v = match self.queued.pop_front() {
                Some(v) => v,
                None => match self.rx.recv() {
                    Ok(Input::Line(v)) => v,
                    Ok(Input::Eof) | Err(_) => return,
                },
            };
            match v.get("type").and_then(Value::as_str) {
                Some("user") => {
                    let text = user_text(&v);
                    self.message_uuid = v.get("uuid").and_then(Value::as_str).map(str::to_owned);
                    if self.args.own_uuids {
                        self.message_uuid = Some(format!("ref-message-{}", self.turns + 1));
                    }
                    if !self.turn(&text, &v) {
                        return;
                    }
                }
                Some("control_request") => self.answer_control(&v),
                Some("control_response") => self.unawaited(&v),
                _ => {}
            }
        }
    }

    /// A control response nobody waits for (any more) is read and counted.
    fn unawaited(&mut self, v: &Value) {
        let id = v["response"]["request_id"].as_str();
        if id.is_none() || id != self.awaited.as_deref() {
            self.late += 1;
        }
    }

    /// Answers a host control request (see the module docs).
    fn answer_control(&mut self, v: &Value) {
        let id = v.get("request_id").cloned().unwrap_or(Value::Null);
        let req = &v["request"];
        let subtype = req["subtype"].as_str().unwrap_or("");
        let unsupported = || Err(format!("Unsupported control request subtype: {subtype}"));
        let answer: Result<Value, String> =
            if !self.args.live_controls && LIVE_CONTROLS.contains(&subtype) {
                unsupported()
            } else {
                match subtype {
                    "initialize" => {
                        self.hooks = hook_groups(&req["hooks"]);
                        Ok(json!({}))
                    }
                    // A stalling turn notices the interrupt itself.
                    "interrupt" => Ok(json!({})),
                    "set_model" => {
                        self.model = req["model"].as_str().map(str::to_owned);
                        Ok(json!({}))
                    }
                    "set_permission_mode" => match req["mode"].as_str() {
                        Some(m) => {
                            self.set_mode(m);
                            Ok(json!({}))
                        }
                        None => Err("set_permission_mode needs a mode".into()),
                    },
                    "get_context_usage" => Ok(self.context_usage()),
                    "mcp_status" => Ok(json!({"mcpServers": self.sdk_servers.iter()
                        .map(|s| json!({"name": s, "status": "connected"})).collect::<Vec<_>>()})),
                    _ => unsupported(),
                }
            };
        let changed_mode = subtype == "set_permission_mode" && answer.is_ok();
        let response = match answer {
            Ok(r) => json!({"subtype": "success", "request_id": id, "response": r}),
            Err(e) => json!({"subtype": "error", "request_id": id, "error": e}),
        };
        self.emit(json!({"type": "control_response", "response": response}));
        if changed_mode {
            self.status();
        }
    }

    /// Switches the permission mode, remembering the one plan mode left.
    fn set_mode(&mut self, m: &str) {
        let now = self.mode.as_deref().unwrap_or("default");
        if m == "plan" && now != "plan" {
            self.pre_plan_mode = Some(now.to_owned());
        }
        self.mode = Some(m.to_owned());
    }

    /// The `system/status` line the CLI prints after a mode change.
    fn status(&mut self) {
        let mode = self.mode.clone().unwrap_or_else(|| "default".into());
        self.emit(
            json!({"type": "system", "subtype": "status", "status": null,
            "permissionMode": mode, "session_id": self.session_id}),
        );
    }

    /// `get_context_usage`: made-up numbers that grow with the conversation.
    fn context_usage(&self) -> Value {
        let chars: usize = self.history.iter().map(String::len).sum();
        let tokens = 1000 + 10 * chars as u64 + 50 * self.history.len() as u64;
        let max = 200_000u64;
        json!({"totalTokens": tokens, "maxTokens": max,
            "percentage": tokens as f64 * 100.0 / max as f64,
            "categories": [{"name": "messages", "tokens": tokens - 1000}]})
    }

    /// A fresh id for one of the agent's own control requests.
    fn next_id(&mut self, what: &str) -> String {
        self.seq += 1;
        format!("{what}-{}", self.seq)
    }

    /// Sends a control request and waits for its answer (the whole
    /// `response`: `subtype`, `response` or `error`).
    fn ask(&mut self, what: &str, request: Value) -> Value {
        let request_id = self.next_id(what);
        self.emit(json!({"type": "control_request", "request_id": request_id, "request": request}));
        self.await_response(&request_id)
    }

    /// Runs one turn; returns false when the agent should exit.
    fn turn(&mut self, prompt: &str, message: &Value) -> bool {
        self.turns += 1;
        let started = Instant::now();
        if !self.mcp_ready {
            self.list_host_tools();
        }
        let tools: Vec<String> = std::iter::once("Bash".to_owned())
            .chain(self.mcp_tools.iter().cloned())
            .collect();
        self.emit(
            json!({"type": "system", "subtype": "init", "session_id": self.session_id,
            "model": self.model.as_deref().unwrap_or("reference-model"),
            "cwd": std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "tools": tools, "mcp_servers": self.sdk_servers.iter()
                .map(|s| json!({"name": s, "status": "connected"})).collect::<Vec<_>>(),
            "permissionMode": self.mode.as_deref().unwrap_or("default"),
            "claude_code_version": "reference"}),
        );
        if self.args.replay {
            let mut echo = message.clone();
            echo["session_id"] = json!(self.session_id);
            echo["parent_tool_use_id"] = Value::Null;
            echo["isReplay"] = json!(true);
            echo["uuid"] = json!(self
                .message_uuid
                .clone()
                .unwrap_or_else(|| format!("ref-message-{}", self.turns)));
            self.emit(echo);
        }
        let mut notes = TurnNotes::default();
        let mut blocked: Option<String> = None;
        for id in self.hook_ids("UserPromptSubmit", None) {
            let input = json!({"hook_event_name": "UserPromptSubmit", "prompt": prompt,
                "session_id": self.session_id});
            let out = self.hook(&id, input, None);
            if out["decision"] == "block" && blocked.is_none() {
                blocked = Some(out["reason"].as_str().unwrap_or_default().to_owned());
            }
            notes.note(&out);
        }
        if let Some(reason) = blocked.filter(|_| !self.args.ignore_blocks) {
            // As the CLI does: no answer, and the prompt stays out of the
            // conversation; its transcript exists from now on.
            let text = format!(
                "UserPromptSubmit operation blocked by hook:\n{reason}\n\nOriginal prompt: {prompt}"
            );
            self.emit(
                json!({"type": "system", "subtype": "informational", "content": text,
                "level": "warning", "session_id": self.session_id}),
            );
            if let Some(p) = &self.transcript {
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p);
            }
            let result = self.result_line("success", false, &text, started);
            self.emit(result);
            return true;
        }
        // Output the host must never hand to the next turn: written with
        // the result, in one write.
        let mut trailer: Vec<String> = Vec::new();
        // A stray result to print this long after the turn's own.
        let mut late: Option<(String, Duration)> = None;
        let mut answer = format!("echo: {prompt}");
        let mut is_error = false;
        let mut subtype = "success";
        let mut structured = self.args.json_schema.then(|| json!({"answer": prompt}));
        if prompt == "recall" {
            answer = format!("history: {}", self.history.join(" | "));
        }
        self.remember(prompt);
        if prompt == "fail" {
            answer = "the turn failed on purpose".into();
            is_error = true;
            subtype = "error_during_execution";
        } else if prompt == "hang" {
            // Ignores interrupts: only the kill ladder ends this turn.
            std::thread::sleep(Duration::from_secs(3600));
        } else if let Some(cmd) = prompt.strip_prefix("tool:") {
            answer = self.bash_call(cmd, false, &mut notes);
        } else if let Some(cmd) = prompt.strip_prefix("readonly:") {
            answer = self.bash_call(cmd, true, &mut notes);
        } else if let Some(rest) = prompt.strip_prefix("mcp:") {
            answer = self.mcp_directive(rest, &mut notes);
        } else if let Some(n) = prompt.strip_prefix("tools:") {
            let n: u32 = n.trim().parse().unwrap_or(1);
            let limit = self.args.max_turns.unwrap_or(u32::MAX);
            for i in 1..=n.min(limit) {
                self.bash_call(&format!("echo {i}"), false, &mut notes);
                if notes.interrupted {
                    break;
                }
            }
            answer = format!("tool calls: {n}");
            if n >= limit && !notes.interrupted {
                answer = format!("Reached maximum number of turns ({limit})");
                is_error = true;
                subtype = "error_max_turns";
            }
        } else if let Some(ms) = prompt.strip_prefix("stall:") {
            let ms: u64 = ms.trim().parse().unwrap_or(1000);
            if self.stall(Duration::from_millis(ms)) {
                self.emit(json!({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]}}));
                answer = String::new();
                is_error = true;
                subtype = "error_during_execution";
            } else {
                answer = format!("stalled {ms} ms");
            }
        } else if prompt == "crash" {
            self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "about to crash"}]}, "session_id": self.session_id}));
            std::process::exit(3);
        } else if prompt == "garbage" {
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "this line is not JSON {{");
            let _ = lock.flush();
        } else if let Some(n) = prompt.strip_prefix("flood:") {
            let n: usize = n.trim().parse().unwrap_or(100);
            for i in 0..n {
                self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": format!("line {i}")}]}, "session_id": self.session_id}));
            }
        } else if let Some(text) = prompt.strip_prefix("after:") {
            answer = text.to_owned();
            trailer.push(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": "STALE"}]}, "session_id": self.session_id}).to_string());
            trailer.push(json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "STALE"}}, "session_id": self.session_id, "parent_tool_use_id": null}).to_string());
        } else if let Some(text) = prompt.strip_prefix("double:") {
            answer = text.to_owned();
            trailer.push(
                self.result_line("success", false, "STALE", started)
                    .to_string(),
            );
        } else if let Some(rest) = prompt.strip_prefix("late:") {
            let (ms, text) = rest.split_once(':').unwrap_or((rest, "late"));
            answer = text.to_owned();
            late = Some((
                self.result_line("success", false, "STALE", started)
                    .to_string(),
                Duration::from_millis(ms.parse().unwrap_or(50)),
            ));
        } else if prompt == "badutf8" {
            let mut lock = self.out.lock();
            let _ = lock.write_all(b"{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"bad \xff\xfe bytes\"}]}}\n");
            let res = self
                .result_line("success", false, "@@", started)
                .to_string();
            let mut bytes = res.into_bytes();
            if let Some(at) = bytes.windows(2).position(|w| w == b"@@") {
                bytes.splice(at..at + 2, b"bad \xff bytes".iter().copied());
            }
            bytes.push(b'\n');
            let _ = lock.write_all(&bytes);
            let _ = lock.flush();
            return true;
        } else if prompt == "surrogate" {
            let res = self
                .result_line("success", false, "@@", started)
                .to_string();
            let res = res.replace("@@", "cut \\ud800 emoji");
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "{res}");
            let _ = lock.flush();
            return true;
        } else if prompt == "badresult" {
            let res = self
                .result_line("success", false, "cut short", started)
                .to_string();
            let mut lock = self.out.lock();
            let _ = writeln!(lock, "{}", &res[..res.len() - 2]);
            let _ = lock.flush();
            return true;
        } else if let Some(mib) = prompt.strip_prefix("bigline:") {
            let mib: usize = mib.trim().parse().unwrap_or(1);
            // Written in pieces: a debug build stays fast at 100 MiB.
            let chunk = vec![b'x'; 1 << 20];
            let mut lock = self.out.lock();
            let _ = lock
                .write_all(br#"{"type":"assistant","message":{"content":[{"type":"text","text":""#);
            for _ in 0..mib {
                let _ = lock.write_all(&chunk);
            }
            let _ = lock.write_all(b"\"}]}}\n");
            let _ = lock.flush();
            drop(lock);
            answer = format!("printed {mib} MiB");
        } else if prompt == "closeout" {
            // SAFETY: closing our own stdout; nothing else writes to it.
            unsafe { close_stdout() };
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        } else if prompt == "model?" {
            answer = format!("model: {}", self.model.as_deref().unwrap_or("default"));
        } else if prompt == "mode?" {
            answer = format!("mode: {}", self.mode.as_deref().unwrap_or("default"));
        } else if prompt == "args?" {
            answer = format!("args: {}", self.args.argv.join(" "));
        } else if let Some(name) = prompt.strip_prefix("env?") {
            let value = std::env::var(name).unwrap_or_else(|_| "(unset)".into());
            answer = format!("env: {value}");
        } else if prompt == "images?" {
            let images = message["message"]["content"]
                .as_array()
                .map_or(0, |blocks| {
                    blocks
                        .iter()
                        .filter(|b| b["type"].as_str() == Some("image"))
                        .count()
                });
            answer = format!("images: {images}");
        } else if prompt == "tools?" {
            answer = format!("tools: {}", tools.join(", "));
        } else if prompt == "late?" {
            answer = format!("late answers: {}", self.late);
        } else if let Some(text) = prompt.strip_prefix("json:") {
            answer = text.to_owned();
            if self.args.json_schema {
                structured = serde_json::from_str(text).ok();
            }
        } else if let Some(sub) = prompt.strip_prefix("control:") {
            let r = self.ask("ctl", json!({"subtype": sub}));
            answer = match r["subtype"].as_str() {
                Some("success") => "control answered: success".into(),
                _ => format!(
                    "control answered: error: {}",
                    r["error"].as_str().unwrap_or("no reason given")
                ),
            };
        } else if let Some(ms) = prompt.strip_prefix("cancel:") {
            let ms: u64 = ms.trim().parse().unwrap_or(100);
            answer = self.cancel_hook(Duration::from_millis(ms));
        } else if prompt.starts_with("ask:") || prompt.starts_with("askmulti:") {
            answer = self.ask_directive(prompt, &mut notes);
        } else if let Some(text) = prompt.strip_prefix("plan:") {
            answer = self.plan_directive(&text.replace("\\n", "\n"), &mut notes);
        }
        if notes.interrupted {
            // As the CLI after a denial with `interrupt: true`.
            self.emit(json!({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user for tool use]"}]}}));
            answer = String::new();
            is_error = true;
            subtype = "error_during_execution";
        }
        if !answer.is_empty() {
            for c in &notes.contexts {
                answer.push_str(&format!(" [context: {c}]"));
            }
        }
        if !answer.is_empty() && self.args.partial {
            // As the CLI does (2.1.197): the message's text deltas, then the
            // complete message.
            let chars: Vec<char> = answer.chars().collect();
            for piece in chars.chunks(chars.len().div_ceil(4).max(1)) {
                let text: String = piece.iter().collect();
                self.emit(json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}, "session_id": self.session_id,
                    "parent_tool_use_id": null}));
            }
        }
        if !answer.is_empty() {
            self.emit(json!({"type": "assistant", "message": {"content": [{"type": "text", "text": answer}],
                "usage": {"input_tokens": prompt.len(), "output_tokens": answer.len()}}, "session_id": self.session_id}));
        }
        for id in self.hook_ids("Stop", None) {
            let input = json!({"hook_event_name": "Stop", "session_id": self.session_id,
                "stop_hook_active": false});
            self.hook(&id, input, None);
        }
        let mut result = self.result_line(subtype, is_error, &answer, started);
        result["usage"]["input_tokens"] = json!(prompt.len());
        if let (Some(s), false) = (structured, is_error) {
            result["structured_output"] = s;
        }
        let mut text = result.to_string();
        for t in trailer {
            text.push('\n');
            text.push_str(&t);
        }
        let mut lock = self.out.lock();
        let _ = writeln!(lock, "{text}");
        let _ = lock.flush();
        drop(lock);
        if let Some((stray, after)) = late {
            // Started only now: the stray result must follow the real one.
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{stray}");
                let _ = out.flush();
            });
        }
        prompt != "exit"
    }

    /// A `result` line for the current turn (tagged with the message's
    /// uuid under `--replay-user-messages`).
    fn result_line(&self, subtype: &str, is_error: bool, answer: &str, started: Instant) -> Value {
        let mut v = json!({"type": "result", "subtype": subtype, "is_error": is_error,
            "result": answer, "duration_ms": started.elapsed().as_millis() as u64, "duration_api_ms": 0,
            "num_turns": 1, "session_id": self.session_id, "total_cost_usd": self.turns as f64 * 0.001,
            "usage": {"input_tokens": 0, "output_tokens": answer.len(), "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "permission_denials": []});
        if let (true, Some(u)) = (self.args.replay, &self.message_uuid) {
            v["user_message_uuid"] = json!(u);
        }
        v
    }

    /// Appends a prompt to the transcript, if there is one.
    fn remember(&mut self, prompt: &str) {
        self.history.push(prompt.replace('\n', " "));
        if let Some(p) = &self.transcript {
            let mut f = match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                Ok(f) => f,
                Err(_) => return,
            };
            let line = prompt.replace('\n', " ");
            let _ = match &self.message_uuid {
                Some(u) => writeln!(f, "{line}\x1f{u}"),
                None => writeln!(f, "{line}"),
            };
        }
    }

    /// The callback ids of the hooks registered for `event` that match
    /// `tool` (every hook of the event when there is no tool), in order.
    fn hook_ids(&self, event: &str, tool: Option<&str>) -> Vec<String> {
        self.hooks
            .iter()
            .filter(|g| g.event == event && g.matches(tool))
            .flat_map(|g| g.ids.iter().cloned())
            .collect()
    }

    /// Calls hook `id` with `input` and returns its output (`{}` for an
    /// error answer).
    fn hook(&mut self, id: &str, input: Value, tool_use_id: Option<&str>) -> Value {
        let r = self.ask(
            "hook",
            json!({"subtype": "hook_callback", "callback_id": id, "input": input,
                "tool_use_id": tool_use_id}),
        );
        match r["response"] {
            Value::Object(_) => r["response"].clone(),
            _ => json!({}),
        }
    }

    /// A `tool:`/`readonly:` Bash call; the answer text.
    fn bash_call(&mut self, command: &str, read_only: bool, notes: &mut TurnNotes) -> String {
        let input = json!({"command": command, "description": "reference agent tool call"});
        let (input, outcome) = self.tool_call("Bash", input, read_only, notes);
        let command = input["command"].as_str().unwrap_or(command);
        match outcome {
            Outcome::Ran(_) => format!("tool ran: {command}"),
            Outcome::Failed(_) | Outcome::Denied(_) => format!("tool denied: {command}"),
        }
    }

    /// An `mcp:<server>/<tool> <json args>` call; the answer text.
    fn mcp_directive(&mut self, rest: &str, notes: &mut TurnNotes) -> String {
        let (target, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let Some((server, tool)) = target.split_once('/') else {
            return format!("bad mcp directive: {target:?} is not <server>/<tool>");
        };
        let args = match args.trim() {
            "" => json!({}),
            text => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => return format!("bad mcp directive: arguments {text:?} are not an object"),
            },
        };
        let name = format!("mcp__{server}__{tool}");
        let (_, outcome) = self.tool_call(&name, args, false, notes);
        match outcome {
            Outcome::Ran(text) | Outcome::Failed(text) => format!("tool said: {text}"),
            Outcome::Denied(why) => format!("tool said: Permission denied: {why}"),
        }
    }

    /// One tool call as the CLI makes it (see the module docs): hooks,
    /// permission, the call itself, its result, the after-hooks. Returns
    /// the input it ran with and how it went.
    fn tool_call(
        &mut self,
        name: &str,
        mut input: Value,
        read_only: bool,
        notes: &mut TurnNotes,
    ) -> (Value, Outcome) {
        let tool_id = self.next_tool_id(notes);
        self.emit(json!({"type": "assistant", "message": {"content": [{"type": "tool_use", "id": tool_id, "name": name, "input": input}]}, "session_id": self.session_id}));
        // Like the CLI: the PreToolUse hooks see every tool call first
        // (hotplex's WAF hook among them); read-only commands then run
        // without a permission request.
        let mut denied: Option<String> = None;
        for id in self.hook_ids("PreToolUse", Some(name)) {
            let hook_input = json!({"hook_event_name": "PreToolUse", "tool_name": name,
                "tool_input": input, "tool_use_id": tool_id, "session_id": self.session_id});
            let out = self.hook(&id, hook_input, Some(&tool_id));
            notes.note(&out);
            let specific = &out["hookSpecificOutput"];
            if specific["permissionDecision"].as_str() == Some("deny") {
                let why = specific["permissionDecisionReason"]
                    .as_str()
                    .unwrap_or("denied");
                denied = Some(why.to_owned());
                break;
            }
            if specific["updatedInput"].is_object() {
                input = specific["updatedInput"].clone();
            }
        }
        if denied.is_none() && !read_only && !self.is_granted(name, &input) {
            let request = json!({"subtype": "can_use_tool", "tool_name": name, "input": input,
                "permission_suggestions": [{"type": "addRules", "rules": [{"toolName": name}],
                    "behavior": "allow", "destination": "session"}],
                "tool_use_id": tool_id});
            let decision = self.ask("perm", request)["response"].clone();
            if decision["behavior"].as_str() == Some("allow") {
                // Like the CLI, an allow may rewrite the call and grant rules.
                if decision["updatedInput"].is_object() {
                    input = decision["updatedInput"].clone();
                }
                self.grant(&decision["updatedPermissions"]);
            } else {
                let why = decision["message"].as_str().unwrap_or("denied");
                denied = Some(why.to_owned());
                notes.interrupted = decision["interrupt"].as_bool() == Some(true);
            }
        }
        let outcome = match denied {
            Some(why) => Outcome::Denied(why),
            None if name.starts_with("mcp__") => self.call_host_tool(name, &input),
            None => Outcome::Ran(format!("ran: {}", input["command"].as_str().unwrap_or(""))),
        };
        let (content, is_error) = match &outcome {
            Outcome::Ran(text) => (text.clone(), false),
            Outcome::Failed(why) => (why.clone(), true),
            Outcome::Denied(why) => (format!("Permission denied: {why}"), true),
        };
        self.emit(json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": content, "is_error": is_error}]}, "session_id": self.session_id}));
        let after = match &outcome {
            Outcome::Ran(text) => Some(("PostToolUse", "tool_response", tool_response(name, text))),
            Outcome::Failed(why) => Some(("PostToolUseFailure", "error", json!(why))),
            Outcome::Denied(_) => None,
        };
        if let Some((event, key, value)) = after {
            for id in self.hook_ids(event, Some(name)) {
                let mut hook_input = json!({"hook_event_name": event, "tool_name": name,
                    "tool_input": input, "tool_use_id": tool_id, "session_id": self.session_id});
                hook_input[key] = value.clone();
                let out = self.hook(&id, hook_input, Some(&tool_id));
                notes.note(&out);
            }
        }
        (input, outcome)
    }

    /// `ask:`/`askmulti:` lines: one `AskUserQuestion` call; the answer
    /// text.
    fn ask_directive(&mut self, prompt: &str, notes: &mut TurnNotes) -> String {
        let mut questions = Vec::new();
        for line in prompt.lines() {
            let (multi, rest) = match line.trim() {
                l if l.starts_with("askmulti:") => (true, &l["askmulti:".len()..]),
                l if l.starts_with("ask:") => (false, &l["ask:".len()..]),
                _ => continue,
            };
            let (question, labels) = match rest.split_once('?') {
                Some((q, l)) => (format!("{}?", q.trim()), l),
                None => (rest.trim().to_owned(), ""),
            };
            let options: Vec<Value> = labels
                .split('|')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| json!({"label": l, "description": format!("about {l}")}))
                .collect();
            questions.push(json!({"question": question,
                "header": format!("Q{}", questions.len() + 1),
                "options": options, "multiSelect": multi}));
        }
        let input = json!({ "questions": questions });
        let (tool_id, asked) = self.ask_person("AskUserQuestion", input, notes);
        let (text, is_error) = match asked {
            Asked::Interrupted => {
                self.tool_result(&tool_id, REJECTED_TOOL_USE, true);
                notes.interrupted = true;
                return String::new();
            }
            Asked::Denied(why) => (why, true),
            Asked::Allowed(decision) => (answered_text(&questions, &decision), false),
        };
        self.tool_result(&tool_id, &text, is_error);
        format!("tool said: {text}")
    }

    /// `plan:<text>`: proposes the plan until it is approved, rejected
    /// three times or interrupted; the answer text.
    fn plan_directive(&mut self, text: &str, notes: &mut TurnNotes) -> String {
        if self.mode.as_deref() != Some("plan") {
            // As the CLI: refused without asking anyone.
            let tool_id = self.next_tool_id(notes);
            self.emit(
                json!({"type": "assistant", "message": {"content": [{"type": "tool_use",
                "id": tool_id, "name": "ExitPlanMode", "input": {"plan": text}}]},
                "session_id": self.session_id}),
            );
            let why = "<tool_use_error>You are not in plan mode. To enter plan mode, call the EnterPlanMode tool first. If your plan was already approved, continue with implementation.</tool_use_error>";
            self.tool_result(&tool_id, why, true);
            return format!("tool said: {why}");
        }
        let mut plan = text.to_owned();
        let mut rejections = 0;
        loop {
            let (tool_id, asked) = self.ask_person("ExitPlanMode", json!({ "plan": plan }), notes);
            match asked {
                Asked::Interrupted => {
                    self.tool_result(&tool_id, REJECTED_TOOL_USE, true);
                    notes.interrupted = true;
                    return String::new();
                }
                Asked::Denied(why) => {
                    self.tool_result(&tool_id, &why, true);
                    rejections += 1;
                    if rejections >= 3 {
                        return format!("plan rejected: {why}");
                    }
                    plan = format!("{plan}\nRevised after: {why}");
                }
                Asked::Allowed(decision) => {
                    let chosen = decision["updatedPermissions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|u| u["type"].as_str() == Some("setMode"))
                        .find_map(|u| u["mode"].as_str().map(str::to_owned));
                    let next = chosen
                        .or_else(|| self.pre_plan_mode.take())
                        .unwrap_or_else(|| "default".into());
                    self.mode = Some(next.clone());
                    self.status();
                    let approved = decision["updatedInput"]["plan"].as_str().unwrap_or(&plan);
                    let result = format!(
                        "User has approved your plan. You can now start coding.\n\n## Approved Plan:\n{approved}"
                    );
                    self.tool_result(&tool_id, &result, false);
                    return format!("plan approved after {rejections} rejections; mode: {next}");
                }
            }
        }
    }

    /// The id of the turn's next tool call.
    fn next_tool_id(&self, notes: &mut TurnNotes) -> String {
        let id = match notes.calls {
            0 => format!("toolu_{}", self.turns),
            k => format!("toolu_{}_{k}", self.turns),
        };
        notes.calls += 1;
        id
    }

    /// Prints a tool result.
    fn tool_result(&mut self, tool_id: &str, content: &str, is_error: bool) {
        self.emit(
            json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result",
            "tool_use_id": tool_id, "content": content, "is_error": is_error}]},
            "session_id": self.session_id}),
        );
    }

    /// A call of `name` (`AskUserQuestion`, `ExitPlanMode`) that asks the
    /// person: the `tool_use`, the PreToolUse hooks, then a `can_use_tool`
    /// that waits, however long, for the answer or an interrupt.
    fn ask_person(&mut self, name: &str, input: Value, notes: &mut TurnNotes) -> (String, Asked) {
        let tool_id = self.next_tool_id(notes);
        self.emit(
            json!({"type": "assistant", "message": {"content": [{"type": "tool_use",
            "id": tool_id, "name": name, "input": input}]}, "session_id": self.session_id}),
        );
        for id in self.hook_ids("PreToolUse", Some(name)) {
            let hook_input = json!({"hook_event_name": "PreToolUse", "tool_name": name,
                "tool_input": input, "tool_use_id": tool_id, "session_id": self.session_id});
            let out = self.hook(&id, hook_input, Some(&tool_id));
            notes.note(&out);
            let specific = &out["hookSpecificOutput"];
            if specific["permissionDecision"].as_str() == Some("deny") {
                let why = specific["permissionDecisionReason"]
                    .as_str()
                    .unwrap_or("denied");
                return (tool_id, Asked::Denied(why.to_owned()));
            }
        }
        let request_id = self.next_id("ask");
        self.emit(
            json!({"type": "control_request", "request_id": request_id, "request": {
            "subtype": "can_use_tool", "tool_name": name, "display_name": name, "input": input,
            "tool_use_id": tool_id, "requires_user_interaction": true}}),
        );
        let asked = match self.await_person(&request_id) {
            None => Asked::Interrupted,
            Some(r) => {
                let decision = r["response"].clone();
                if decision["behavior"].as_str() == Some("allow") {
                    Asked::Allowed(decision)
                } else {
                    let why = decision["message"].as_str().unwrap_or("denied");
                    Asked::Denied(why.to_owned())
                }
            }
        };
        (tool_id, asked)
    }

    /// Waits for the answer to `request_id` like [`await_response`], but
    /// an `interrupt` cancels the request (`control_cancel_request` first,
    /// then the interrupt's answer, as the CLI) and returns `None`.
    ///
    /// [`await_response`]: Self::await_response
    fn await_person(&mut self, request_id: &str) -> Option<Value> {
        loop {
            match self.rx.recv() {
                Ok(Input::Line(v)) => match v.get("type").and_then(Value::as_str) {
                    Some("control_response") => {
                        if v["response"]["request_id"].as_str() == Some(request_id) {
                            return Some(v["response"].clone());
                        }
                        self.unawaited(&v);
                    }
                    Some("control_request") => {
                        if v["request"]["subtype"].as_str() == Some("interrupt") {
                            self.emit(json!({"type": "control_cancel_request",
                                "request_id": request_id}));
                            self.answer_control(&v);
                            return None;
                        }
                        self.answer_control(&v);
                    }
                    Some("user") => self.queued.push_back(v),
                    _ => {}
                },
                Ok(Input::Eof) | Err(_) => std::process::exit(0),
            }
        }
    }

    /// Whether an allow rule the host granted covers this call.
    fn is_granted(&self, name: &str, input: &Value) -> bool {
        self.granted.iter().any(|g| {
            g.tool == name
                && (g.content.is_none() || g.content.as_deref() == input["command"].as_str())
        })
    }

    /// Keeps the `addRules` allow rules of an `updatedPermissions` list.
    fn grant(&mut self, updates: &Value) {
        for u in updates.as_array().into_iter().flatten() {
            if u["type"].as_str() != Some("addRules") || u["behavior"].as_str() != Some("allow") {
                continue;
            }
            for r in u["rules"].as_array().into_iter().flatten() {
                if let Some(tool) = r["toolName"].as_str() {
                    self.granted.push(Grant {
                        tool: tool.to_owned(),
                        content: r["ruleContent"].as_str().map(str::to_owned),
                    });
                }
            }
        }
    }

    /// Sends one JSON-RPC message to the host's MCP server `server` and
    /// returns its reply (`mcp_response`; `null` for a failed request).
    fn mcp(&mut self, server: &str, message: Value) -> Value {
        let r = self.ask(
            "mcp",
            json!({"subtype": "mcp_message", "server_name": server, "message": message}),
        );
        r["response"]["mcp_response"].clone()
    }

    /// The MCP handshake with every sdk server, as the CLI does before its
    /// first answer: the tools listed become `mcp__<server>__<tool>`.
    fn list_host_tools(&mut self) {
        self.mcp_ready = true;
        for server in self.sdk_servers.clone() {
            self.mcp(
                &server,
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2024-11-05", "capabilities": {},
                    "clientInfo": {"name": "hotplex-reference-agent", "version": "0"}}}),
            );
            self.mcp(
                &server,
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            );
            let listed = self.mcp(
                &server,
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            );
            for t in listed["result"]["tools"].as_array().into_iter().flatten() {
                if let Some(name) = t["name"].as_str() {
                    self.mcp_tools.push(format!("mcp__{server}__{name}"));
                }
            }
        }
    }

    /// Calls host tool `mcp__<server>__<tool>` with `tools/call`.
    fn call_host_tool(&mut self, name: &str, arguments: &Value) -> Outcome {
        let rest = name.trim_start_matches("mcp__");
        let (server, tool) = rest.split_once("__").unwrap_or((rest, ""));
        self.seq += 1;
        let reply = self.mcp(
            server,
            json!({"jsonrpc": "2.0", "id": self.seq, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments}}),
        );
        if let Some(e) = reply.get("error") {
            let why = e["message"].as_str().unwrap_or("MCP error");
            return Outcome::Failed(format!("MCP error: {why}"));
        }
        let result = &reply["result"];
        if !result.is_object() {
            return Outcome::Failed("MCP error: no result".into());
        }
        let text = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        if result["isError"].as_bool() == Some(true) {
            Outcome::Failed(text)
        } else {
            Outcome::Ran(text)
        }
    }

    /// `cancel:<ms>`: a PostToolUse callback given up after `wait`.
    fn cancel_hook(&mut self, wait: Duration) -> String {
        let Some(id) = self
            .hook_ids("PostToolUse", Some("Bash"))
            .into_iter()
            .next()
        else {
            return "no hook".into();
        };
        let tool_use_id = format!("toolu_cancel_{}", self.turns);
        let request_id = self.next_id("hook");
        self.emit(json!({"type": "control_request", "request_id": request_id,
            "request": {"subtype": "hook_callback", "callback_id": id, "tool_use_id": tool_use_id,
                "input": {"hook_event_name": "PostToolUse", "tool_name": "Bash",
                    "tool_input": {"command": "echo cancelled"}, "tool_use_id": tool_use_id,
                    "tool_response": tool_response("Bash", "ran: echo cancelled"),
                    "session_id": self.session_id}}}));
        // An answer within the wait is read and ignored like a late one,
        // but not counted as late: it came while the agent still waited.
        self.awaited = Some(request_id.clone());
        self.stall(wait);
        self.awaited = None;
        self.emit(json!({"type": "control_cancel_request", "request_id": request_id}));
        "cancelled".into()
    }

    /// Waits for the host's control_response to `request_id` and returns
    /// its `response` object (`subtype`, `response` or `error`). Control
    /// requests meanwhile are answered, user messages kept for later.
    fn await_response(&mut self, request_id: &str) -> Value {
        loop {
            match self.rx.recv() {
                Ok(Input::Line(v)) => match v.get("type").and_then(Value::as_str) {
                    Some("control_response") => {
                        if v["response"]["request_id"].as_str() == Some(request_id) {
                            return v["response"].clone();
                        }
                        self.unawaited(&v);
                    }
                    Some("control_request") => self.answer_control(&v),
                    Some("user") => self.queued.push_back(v),
                    _ => {}
                },
                Ok(Input::Eof) | Err(_) => std::process::exit(0),
            }
        }
    }

    /// Waits `d`; returns true when an interrupt arrived first.
    fn stall(&mut self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Input::Line(v)) => match v.get("type").and_then(Value::as_str) {
                    Some("control_request") => {
                        let interrupt = v["request"]["subtype"].as_str() == Some("interrupt");
                        self.answer_control(&v);
                        if interrupt {
                            return true;
                        }
                    }
                    Some("control_response") => self.unawaited(&v),
                    Some("user") => self.queued.push_back(v),
                    _ => {}
                },
                Ok(Input::Eof) => std::process::exit(0),
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => std::process::exit(0),
            }
        }
    }
}

/// The tool result of an allowed `AskUserQuestion`, as the CLI words it:
/// each answered question (keyed by its text; a list joined with `,`).
fn answered_text(questions: &[Value], decision: &Value) -> String {
    let answers = &decision["updatedInput"]["answers"];
    let parts: Vec<String> = questions
        .iter()
        .filter_map(|q| {
            let text = q["question"].as_str()?;
            let a = match &answers[text] {
                Value::String(s) => s.clone(),
                Value::Array(list) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => return None,
            };
            Some(format!("\"{text}\"=\"{a}\""))
        })
        .collect();
    if parts.is_empty() {
        return "The user did not answer the questions.".into();
    }
    format!(
        "Your questions have been answered: {}. You can now continue with these answers in mind.",
        parts.join(", ")
    )
}

/// The hooks of an `initialize` request, in order.
fn hook_groups(config: &Value) -> Vec<HookGroup> {
    let mut groups = Vec::new();
    for (event, list) in config.as_object().into_iter().flatten() {
        for m in list.as_array().into_iter().flatten() {
            let matcher = m["matcher"]
                .as_str()
                .filter(|s| !s.is_empty() && *s != "*")
                .map(str::to_owned);
            let ids = m["hookCallbackIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect();
            groups.push(HookGroup {
                event: event.clone(),
                matcher,
                ids,
            });
        }
    }
    groups
}

/// A tool's `tool_response` as the CLI gives it to PostToolUse hooks: Bash
/// output fields, or an MCP tool's content blocks.
fn tool_response(name: &str, text: &str) -> Value {
    if name.starts_with("mcp__") {
        json!([{"type": "text", "text": text}])
    } else {
        json!({"stdout": text, "stderr": "", "interrupted": false, "isImage": false})
    }
}

/// The text of a user message: string content or the text blocks joined.
fn user_text(v: &Value) -> String {
    match &v["message"]["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Closes fd 1 (the `closeout` directive).
///
/// # Safety
/// Nothing may write to stdout afterwards.
unsafe fn close_stdout() {
    extern "C" {
        fn close(fd: i32) -> i32;
    }
    close(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn options_that_take_a_value_consume_it() {
        let a = args(&[
            "--model",
            "--fork-session",
            "--add-dir",
            "--no-live-controls",
            "--max-turns",
            "3",
        ]);
        assert_eq!(a.model.as_deref(), Some("--fork-session"));
        assert!(!a.fork, "a value is never read as a flag");
        assert!(a.live_controls);
        assert_eq!(a.max_turns, Some(3));
        let a = args(&["--setting-sources=", "--fork-session", "--resume", "x"]);
        assert!(a.fork);
        assert_eq!(a.session, Some(("x".into(), true)));
    }

    #[test]
    fn sdk_servers_are_read_from_the_mcp_config() {
        let a = args(&[
            "--mcp-config",
            r#"{"mcpServers": {"host": {"type": "sdk"}, "ext": {"command": "x"}}}"#,
        ]);
        assert_eq!(a.sdk_servers(), ["host"]);
    }

    #[test]
    fn hook_matchers_are_a_tool_name_or_alternatives() {
        let groups = hook_groups(&json!({"PreToolUse": [
            {"matcher": null, "hookCallbackIds": ["all"]},
            {"matcher": "Bash|Write", "hookCallbackIds": ["bw"]},
            {"matcher": "Read", "hookCallbackIds": ["r"]},
        ]}));
        let ids = |tool: &str| -> Vec<&str> {
            groups
                .iter()
                .filter(|g| g.matches(Some(tool)))
                .flat_map(|g| g.ids.iter().map(String::as_str))
                .collect()
        };
        assert_eq!(ids("Bash"), ["all", "bw"]);
        assert_eq!(ids("Write"), ["all", "bw"]);
        assert_eq!(ids("Read"), ["all", "r"]);
    }

    #[test]
    fn made_up_ids_look_like_uuids() {
        let id = made_up_uuid("x");
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_ne!(made_up_uuid("x"), made_up_uuid("y"));
    }
}
