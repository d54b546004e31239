//! Commands that run shell code they are handed: the shells themselves
//! (`sh -c CODE`, a script on stdin), `eval`, `su -c`, `ssh host CMD`, and
//! `at`/`batch`/`source` reading a script from stdin. The code is parsed
//! and judged like the top-level command line, one nesting level deeper.

use std::ops::Range;

use super::args::{flag_value, skip_opts};
use super::{analyse_nested, run_file, script_content, Canonical, Next};
use crate::waf::shell::ParseState;

/// Command names of POSIX-ish shells (`busybox-sh` is busybox's applet name).
const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "ash",
    "mksh",
    "fish",
    "busybox-sh",
];

/// Whether `name` (a command word's basename) is a shell.
pub(super) fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

/// A shell with no `-c` and no script operand reads its script from stdin.
pub(super) fn reads_script_from_stdin(argv: &[String]) -> bool {
    let Some(name) = argv.first() else {
        return false;
    };
    match name.as_str() {
        n if is_shell(n) => argv.iter().skip(1).all(|a| a.starts_with('-') && a != "-c"),
        "source" | "." => matches!(
            argv.get(1).map(String::as_str),
            Some("/dev/stdin" | "-" | "/proc/self/fd/0")
        ),
        "at" | "batch" => !argv
            .iter()
            .any(|a| matches!(a.as_str(), "-f" | "-l" | "-r" | "-d" | "-c")),
        _ => false,
    }
}

/// `sh [OPTS] -c CODE [ARG0 ARG1...]`, or a shell reading its script from
/// stdin (a heredoc or here-string). The arguments after the code become
/// the positional parameters `$0`, `$1`, ... the code is parsed with.
pub(super) fn shell(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Next {
    let mut script = None;
    let mut k = 1;
    while k < argv.len() {
        let a = argv[k].as_str();
        if a == "-c"
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('c') && a.len() <= 4)
        {
            script = argv.get(k + 1).cloned();
            // `sh -c 'cmd "$0"' arg0 arg1`: positional parameters.
            for (n, v) in argv.iter().skip(k + 2).enumerate() {
                ctx.vars.insert(n.to_string(), v.clone());
            }
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        k += 1;
    }
    match script {
        Some(s) => analyse_nested(ctx, out, &s, span, depth),
        None => {
            if let (true, Some(body)) = (reads_script_from_stdin(argv), stdin) {
                analyse_nested(ctx, out, body, span, depth);
            } else if let Some(op) = argv.iter().skip(1).find(|a| !a.starts_with('-')) {
                // `bash FILE` / `bash <(...)`: a script this line wrote.
                if let Some(content) = script_content(ctx, op) {
                    run_file(ctx, out, content, span, depth);
                }
            }
        }
    }
    Next::Done
}

/// `at`, `batch`, `source -`, `. /dev/stdin`: they run their standard input
/// as a script.
pub(super) fn stdin_script(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Next {
    if let (true, Some(body)) = (reads_script_from_stdin(argv), stdin) {
        analyse_nested(ctx, out, body, span, depth);
    } else if matches!(argv[0].as_str(), "source" | ".") {
        // `source FILE`: a script this line wrote or downloaded.
        if let Some(content) = argv.get(1).and_then(|f| script_content(ctx, f)) {
            run_file(ctx, out, content, span, depth);
        }
    }
    Next::Done
}

/// `eval WORDS...`: the words, joined by spaces, are shell input.
pub(super) fn eval(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let code = argv.get(1..).unwrap_or_default().join(" ");
    analyse_nested(ctx, out, &code, span, depth);
    Next::Done
}

/// `ssh [OPTS] HOST CMD...`: the remote command is shell input (what it does
/// on the other machine is as much the agent's doing), and so is a local
/// `-o ProxyCommand=...`.
pub(super) fn ssh(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let i = skip_opts(argv, 1, "bcDEeFIiJLlmOopQRSWw", &[]);
    for (k, a) in argv.iter().enumerate() {
        if a == "-o" {
            if let Some(v) = argv.get(k + 1) {
                if let Some(pc) = v
                    .strip_prefix("ProxyCommand=")
                    .or_else(|| v.strip_prefix("ProxyCommand "))
                {
                    analyse_nested(ctx, out, pc, span, depth);
                }
            }
        }
    }
    if i + 1 < argv.len() {
        let remote = argv[i + 1..].join(" ");
        analyse_nested(ctx, out, &remote, span, depth);
    }
    Next::Done
}

/// Commands that run the value of one of their flags as shell code, by
/// name: `su -c CODE`, `zip -TT CMD` (the archive test command), `rg --pre
/// CMD` (ripgrep's preprocessor, run on every file it searches).
const CODE_FLAGS: &[(&[&str], &[&str])] = &[
    (&["su"], &["-c", "--command"]),
    (&["zip"], &["-TT", "--unzip-command"]),
    (&["rg", "ripgrep"], &["--pre"]),
];

/// The code-carrying flags of command `name`, if it is one of
/// [`CODE_FLAGS`].
pub(super) fn code_flags(name: &str) -> Option<&'static [&'static str]> {
    CODE_FLAGS
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, flags)| *flags)
}

/// Follows the code given in one of `flags` into a nested analysis.
pub(super) fn flagged_code(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
    flags: &[&str],
) -> Next {
    if let Some(c) = flag_value(argv, flags) {
        analyse_nested(ctx, out, &c, span, depth);
    }
    Next::Done
}
