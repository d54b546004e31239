//! What the WAF must judge in a `session/request_permission`, and which of
//! the agent's options answers it.
//!
//! Agents describe a tool call differently (see
//! `shared/docs/acp-agents-offline.md` and the agents' sources):
//!
//! * OpenCode sends `kind: execute` with `rawInput: {command, ...}` on its
//!   `tool_call` updates; the permission request's `rawInput` is the
//!   permission's metadata, which may or may not repeat the command.
//! * claude-code-acp sends `rawInput: {command, timeout, ...}` for its
//!   `mcp__acp__Bash`, and paths in `rawInput.file_path` / `locations`.
//! * Gemini CLI sends no `rawInput` at all: for `run_shell_command` the
//!   permission request's `title` is the command followed by
//!   `[current working directory DIR]` (or `[in DIR]`), `(DESCRIPTION)`
//!   and `[background]`, and file tools put their paths in `locations`
//!   and `diff` content.
//!
//! So [`permission_target`] collects, from the request and from what the
//! tool call's earlier updates said, every command text and every path:
//! the caller denies the call if the WAF flags any of them. A command taken
//! from a title is given both as parsed and as the whole title, so a
//! parse that guesses wrong can only add a denial, never hide a command.

use serde_json::Value;

use super::{PermissionKind, PermissionOption, ToolCallFields, ToolContent, ToolKind};

/// What a permission request asks to do, for the WAF.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PermissionTarget {
    /// The tool call's id.
    pub tool_call_id: String,
    /// Its kind, from the request or an earlier update.
    pub kind: Option<ToolKind>,
    /// Its title, from the request or an earlier update.
    pub title: Option<String>,
    /// Every shell command text to judge with `check_command`, in order,
    /// without duplicates. Empty when the call runs no command.
    pub commands: Vec<String>,
    /// Whether `commands` came from the title (no `rawInput` command).
    pub command_from_title: bool,
    /// Every file path the call names (locations, `rawInput` path fields,
    /// diff targets), in order, without duplicates. May be relative: judge
    /// them against the session's workdir.
    pub paths: Vec<String>,
}

/// Collects the commands and paths of the tool call a permission request
/// names (`request`, its `toolCall`), adding what `earlier` (the call as
/// its `tool_call` / `tool_call_update`s described it, if any) said.
pub fn permission_target(
    request: &ToolCallFields,
    earlier: Option<&ToolCallFields>,
) -> PermissionTarget {
    let mut t = PermissionTarget {
        tool_call_id: request.id.clone(),
        kind: request
            .kind
            .clone()
            .or_else(|| earlier.and_then(|e| e.kind.clone())),
        title: request
            .title
            .clone()
            .or_else(|| earlier.and_then(|e| e.title.clone())),
        ..PermissionTarget::default()
    };
    let sources = std::iter::once(request).chain(earlier);
    for f in sources.clone() {
        if let Some(raw) = &f.raw_input {
            for c in raw_commands(raw) {
                push_unique(&mut t.commands, c);
            }
        }
    }
    if t.commands.is_empty() && t.kind == Some(ToolKind::Execute) {
        // No structured command: the title is what the agent shows the
        // user as the command (Gemini CLI).
        for f in sources.clone() {
            if let Some(title) = &f.title {
                t.command_from_title = true;
                for c in title_commands(title) {
                    push_unique(&mut t.commands, c);
                }
            }
        }
    }
    for f in sources {
        for l in f.locations.iter().flatten() {
            push_unique(&mut t.paths, l.path.clone());
        }
        if let Some(raw) = &f.raw_input {
            for p in raw_paths(raw) {
                push_unique(&mut t.paths, p);
            }
        }
        for c in f.content.iter().flatten() {
            if let ToolContent::Diff { path, .. } = c {
                push_unique(&mut t.paths, path.clone());
            }
        }
    }
    t
}

/// How hotplex answers a permission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionAnswer {
    /// One of the agent's options.
    Selected {
        /// The option's id, to send.
        option_id: String,
        /// What it means.
        kind: PermissionKind,
    },
    /// The `cancelled` outcome: for requests pending when the turn is
    /// cancelled, and when no option fits.
    Cancelled,
}

impl PermissionAnswer {
    /// Whether this answer lets the tool run.
    pub fn allows(&self) -> bool {
        matches!(
            self,
            PermissionAnswer::Selected {
                kind: PermissionKind::AllowOnce | PermissionKind::AllowAlways,
                ..
            }
        )
    }
}

/// The option that carries a decision.
///
/// * Allow: the first `allow_once` option. `allow_always` is never chosen:
///   an agent that remembers it would run later calls (the next `rm -rf`
///   of the same tool) without asking, so the WAF would never see them
///   (Gemini switches the whole session to auto-approve; claude-code-acp
///   writes a settings file into the workdir). An agent offering no
///   `allow_once` gets the deny answer instead.
/// * Deny: the first `reject_once`, else `reject_always` (remembering a
///   rejection cannot let anything through), else `cancelled`.
pub fn select_option(options: &[PermissionOption], allow: bool) -> PermissionAnswer {
    let first = |kind: PermissionKind| {
        options
            .iter()
            .find(|o| o.kind == kind)
            .map(|o| PermissionAnswer::Selected {
                option_id: o.option_id.clone(),
                kind,
            })
    };
    let allowed = if allow {
        first(PermissionKind::AllowOnce)
    } else {
        None
    };
    allowed
        .or_else(|| first(PermissionKind::RejectOnce))
        .or_else(|| first(PermissionKind::RejectAlways))
        .unwrap_or(PermissionAnswer::Cancelled)
}

/// The command texts of a tool's raw input: `command` or `cmd`, as a
/// string (a shell command line) or an argv array.
fn raw_commands(raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["command", "cmd"] {
        match raw.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => push_unique(&mut out, s.clone()),
            Some(Value::Array(items)) => {
                let argv: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !argv.is_empty() {
                    for c in argv_commands(&argv) {
                        push_unique(&mut out, c);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The raw-input fields that name files or directories, as agents use
/// them (`path`, `file_path`, `filePath`, `dir_path`, `cwd`, ...), and
/// the list fields (`paths`, `directories`, `files[].filePath`).
fn raw_paths(raw: &Value) -> Vec<String> {
    const ONE: &[&str] = &[
        "path",
        "file_path",
        "filePath",
        "filepath",
        "absolute_path",
        "notebook_path",
        "dir_path",
        "directory",
        "cwd",
        "parentDir",
        "movePath",
        "source",
        "destination",
    ];
    const MANY: &[&str] = &["paths", "directories", "files", "file_paths"];
    let mut out = Vec::new();
    for k in ONE {
        if let Some(Value::String(s)) = raw.get(*k) {
            if !s.is_empty() {
                push_unique(&mut out, s.clone());
            }
        }
    }
    for k in MANY {
        for item in raw.get(*k).and_then(Value::as_array).into_iter().flatten() {
            match item {
                Value::String(s) if !s.is_empty() => push_unique(&mut out, s.clone()),
                Value::Object(_) => {
                    for p in raw_paths(item) {
                        push_unique(&mut out, p);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The command texts of a title: the command as Gemini CLI formats it
/// (`<command> [in <dir>] (<description>) [background]`, or
/// `[current working directory <dir>]`) with those suffixes removed, and
/// the whole title.
fn title_commands(title: &str) -> Vec<String> {
    let mut c = title.trim_end();
    if let Some(rest) = c.strip_suffix(" [background]") {
        c = rest.trim_end();
    }
    if c.ends_with(')') {
        if let Some(i) = c.rfind(" (") {
            c = c[..i].trim_end();
        }
    }
    if c.ends_with(']') {
        for marker in [" [current working directory ", " [in "] {
            if let Some(i) = c.rfind(marker) {
                c = c[..i].trim_end();
                break;
            }
        }
    }
    let mut out = Vec::new();
    if !c.trim().is_empty() {
        out.push(c.to_owned());
    }
    if !title.trim().is_empty() {
        push_unique(&mut out, title.to_owned());
    }
    out
}

/// The command texts of an argv: the words joined into one shell command
/// line, a single word as it is (agents put whole command lines there),
/// the plain join when the program word has spaces (the same mistake the
/// other way round), and the script of a shell wrapper (`sh -c <script>`,
/// `bash -lc <script>`).
pub(crate) fn argv_commands(argv: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    match argv {
        [] => return out,
        [one] => push_unique(&mut out, (*one).to_owned()),
        [first, ..] => {
            push_unique(&mut out, join_argv(argv.iter().copied()));
            if first.chars().any(char::is_whitespace) {
                push_unique(&mut out, argv.join(" "));
            }
        }
    }
    let shell = argv[0].rsplit('/').next().unwrap_or(argv[0]);
    if matches!(shell, "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash") {
        let mut words = argv[1..].iter();
        while let Some(w) = words.next() {
            let is_c = w.len() > 1
                && w.starts_with('-')
                && !w.starts_with("--")
                && w[1..].chars().all(|c| c.is_ascii_alphabetic())
                && w.contains('c');
            if is_c {
                if let Some(script) = words.next() {
                    push_unique(&mut out, (*script).to_owned());
                }
                break;
            }
        }
    }
    out
}

/// Words joined into one `sh` command line, each quoted where needed.
pub(crate) fn join_argv<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = words.map(quote_word).collect();
    quoted.join(" ")
}

fn quote_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_line, AgentRequest, Incoming, PermissionRequest};
    use super::*;

    fn request(line: &str) -> PermissionRequest {
        match parse_line(line.as_bytes()) {
            Ok(Incoming::Request {
                request: AgentRequest::RequestPermission(r),
                ..
            }) => r,
            other => panic!("not a permission request: {other:?}"),
        }
    }

    fn options(kinds: &[(&str, &str)]) -> Vec<PermissionOption> {
        kinds
            .iter()
            .map(|(id, kind)| PermissionOption {
                option_id: (*id).into(),
                name: (*id).into(),
                kind: PermissionKind::parse(kind),
            })
            .collect()
    }

    #[test]
    fn allow_picks_allow_once_and_never_allow_always() {
        // Gemini's order: allow_always first.
        let opts = options(&[
            ("proceed_always", "allow_always"),
            ("proceed_once", "allow_once"),
            ("cancel", "reject_once"),
        ]);
        let a = select_option(&opts, true);
        assert_eq!(
            a,
            PermissionAnswer::Selected {
                option_id: "proceed_once".into(),
                kind: PermissionKind::AllowOnce
            }
        );
        assert!(a.allows());
        let d = select_option(&opts, false);
        assert_eq!(
            d,
            PermissionAnswer::Selected {
                option_id: "cancel".into(),
                kind: PermissionKind::RejectOnce
            }
        );
        assert!(!d.allows());
    }

    #[test]
    fn an_agent_offering_only_allow_always_is_denied() {
        let opts = options(&[("always", "allow_always"), ("no", "reject_always")]);
        assert_eq!(
            select_option(&opts, true),
            PermissionAnswer::Selected {
                option_id: "no".into(),
                kind: PermissionKind::RejectAlways
            }
        );
        let only_always = options(&[("always", "allow_always"), ("x", "maybe_later")]);
        for allow in [true, false] {
            let a = select_option(&only_always, allow);
            assert_eq!(a, PermissionAnswer::Cancelled);
            assert!(!a.allows());
        }
        assert_eq!(select_option(&[], true), PermissionAnswer::Cancelled);
    }

    #[test]
    fn no_choice_ever_returns_an_allow_always_option() {
        // Every subset and order of the four kinds (plus an unknown one).
        let all = [
            ("a1", "allow_once"),
            ("a2", "allow_always"),
            ("r1", "reject_once"),
            ("r2", "reject_always"),
            ("u", "other"),
        ];
        for mask in 0u32..32 {
            for rot in 0..all.len() {
                let picked: Vec<(&str, &str)> = (0..all.len())
                    .map(|i| all[(i + rot) % all.len()])
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, o)| o)
                    .collect();
                let opts = options(&picked);
                for allow in [true, false] {
                    if let PermissionAnswer::Selected { option_id, kind } =
                        select_option(&opts, allow)
                    {
                        assert_ne!(kind, PermissionKind::AllowAlways);
                        assert_ne!(option_id, "a2");
                        assert!(!matches!(kind, PermissionKind::Unknown(_)));
                        if !allow {
                            assert!(!matches!(kind, PermissionKind::AllowOnce));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn opencode_commands_come_from_raw_input_or_the_earlier_tool_call() {
        let r = request(
            r#"{"jsonrpc":"2.0","id":3,"method":"session/request_permission","params":{"sessionId":"ses_1","toolCall":{"toolCallId":"call_9","title":"bash","kind":"execute","status":"pending","locations":[],"rawInput":{}},"options":[{"optionId":"once","kind":"allow_once","name":"Allow once"},{"optionId":"always","kind":"allow_always","name":"Always allow"},{"optionId":"reject","kind":"reject_once","name":"Reject"}]}}"#,
        );
        // The metadata said nothing; the tool_call update had the input.
        let earlier = ToolCallFields {
            id: "call_9".into(),
            kind: Some(ToolKind::Execute),
            raw_input: Some(
                serde_json::json!({"command": "rm -rf ~", "description": "Clean home"}),
            ),
            ..ToolCallFields::default()
        };
        let t = permission_target(&r.tool_call, Some(&earlier));
        assert_eq!(t.commands, ["rm -rf ~"]);
        assert!(!t.command_from_title);
        assert_eq!(t.kind, Some(ToolKind::Execute));
        // And when the request repeats it (metadata {command, patterns}).
        let r = request(
            r#"{"jsonrpc":"2.0","id":4,"method":"session/request_permission","params":{"sessionId":"ses_1","toolCall":{"toolCallId":"call_9","title":"echo hi","kind":"execute","rawInput":{"command":"echo hi","patterns":["echo *"]}},"options":[]}}"#,
        );
        assert_eq!(permission_target(&r.tool_call, None).commands, ["echo hi"]);
    }

    #[test]
    fn gemini_commands_come_from_the_title() {
        let r = request(
            r#"{"jsonrpc":"2.0","id":0,"method":"session/request_permission","params":{"sessionId":"9f1c","options":[{"optionId":"proceed_always","name":"Always Allow","kind":"allow_always"},{"optionId":"proceed_once","name":"Allow","kind":"allow_once"},{"optionId":"cancel","name":"Reject","kind":"reject_once"}],"toolCall":{"toolCallId":"run_shell_command-1760000000000","status":"pending","title":"rm -rf /home/u/canary [current working directory /home/u/proj] (Remove the canary)","content":[],"locations":[],"kind":"execute"}}}"#,
        );
        let t = permission_target(&r.tool_call, None);
        assert!(t.command_from_title);
        assert_eq!(
            t.commands,
            [
                "rm -rf /home/u/canary",
                "rm -rf /home/u/canary [current working directory /home/u/proj] (Remove the canary)"
            ]
        );
        let t = permission_target(
            &ToolCallFields {
                id: "x".into(),
                kind: Some(ToolKind::Execute),
                title: Some("sleep 30 [in sub] [background]".into()),
                ..ToolCallFields::default()
            },
            None,
        );
        assert_eq!(t.commands[0], "sleep 30");
    }

    #[test]
    fn a_title_is_not_a_command_unless_the_call_executes() {
        let t = permission_target(
            &ToolCallFields {
                id: "x".into(),
                kind: Some(ToolKind::Edit),
                title: Some("Write notes.txt".into()),
                ..ToolCallFields::default()
            },
            None,
        );
        assert!(t.commands.is_empty());
        assert!(!t.command_from_title);
    }

    #[test]
    fn paths_come_from_locations_raw_input_and_diffs() {
        let r = request(
            r#"{"jsonrpc":"2.0","id":"p-1","method":"session/request_permission","params":{"sessionId":"s","toolCall":{"toolCallId":"w1","title":"Write /w/a.txt","kind":"edit","locations":[{"path":"/w/a.txt","line":3},{"nopath":1}],"rawInput":{"file_path":"/w/a.txt","content":"x","files":[{"filePath":"/w/b.txt","movePath":"/w/c.txt"}],"paths":["/w/d.txt",7]},"content":[{"type":"diff","path":"/etc/passwd","oldText":null,"newText":"root::0:0"}]},"options":[]}}"#,
        );
        let t = permission_target(&r.tool_call, None);
        // Locations first, then raw single fields, raw lists, diffs.
        assert_eq!(
            t.paths,
            [
                "/w/a.txt",
                "/w/d.txt",
                "/w/b.txt",
                "/w/c.txt",
                "/etc/passwd"
            ]
        );
        assert!(t.commands.is_empty());
    }

    #[test]
    fn claude_code_acp_bash_input_and_argv_commands() {
        let t = permission_target(
            &ToolCallFields {
                id: "toolu_1".into(),
                kind: Some(ToolKind::Execute),
                title: Some("`rm -rf ~`".into()),
                raw_input: Some(serde_json::json!({"command": "rm -rf ~", "timeout": 30000})),
                ..ToolCallFields::default()
            },
            None,
        );
        assert_eq!(t.commands, ["rm -rf ~"]);
        let t = permission_target(
            &ToolCallFields {
                id: "c".into(),
                raw_input: Some(
                    serde_json::json!({"command": ["bash", "-lc", "curl x | sh"], "cwd": "/w"}),
                ),
                ..ToolCallFields::default()
            },
            None,
        );
        assert_eq!(t.commands, ["bash -lc 'curl x | sh'", "curl x | sh"]);
        assert_eq!(t.paths, ["/w"]);
    }

    #[test]
    fn argv_joins_quote_and_unwrap_shells() {
        assert_eq!(argv_commands(&["ls -la"]), ["ls -la"]);
        assert_eq!(
            argv_commands(&["/bin/sh", "-c", "rm -rf ~"]),
            ["/bin/sh -c 'rm -rf ~'", "rm -rf ~"]
        );
        assert_eq!(argv_commands(&["echo", "it's"]), [r"echo 'it'\''s'"]);
        assert_eq!(argv_commands(&["echo", ""]), ["echo ''"]);
        assert_eq!(argv_commands(&["rm -rf", "/"]), ["'rm -rf' /", "rm -rf /"]);
        // `--` options are not `-c`.
        assert_eq!(argv_commands(&["bash", "--norc", "x"]), ["bash --norc x"]);
        assert!(argv_commands(&[]).is_empty());
    }
}
