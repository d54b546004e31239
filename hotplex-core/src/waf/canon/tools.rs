//! Tool-native execution: programs that run shell code they are configured
//! with rather than given as a command. Environment variables
//! (`GIT_SSH_COMMAND=...`, `PAGER=...`), git configuration (`git -c
//! alias.x='!...'`, `git config core.pager ...`), tar's checkpoint actions,
//! vim's `:!` (zip's test command and ripgrep's preprocessor are flags of
//! `shells::CODE_FLAGS`).

use std::ops::Range;

use super::{analyse_nested, Canonical, Item, Next};
use crate::waf::shell::{assignment, ParseState};

/// Environment variables whose value a program runs as a command.
const CODE_VARS: &[&str] = &[
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EDITOR",
    "GIT_PAGER",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "SSH_ASKPASS",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "MANPAGER",
    "BROWSER",
    "PROMPT_COMMAND",
    "BASH_ENV",
    "ENV",
    "SUDO_ASKPASS",
    "LESSOPEN",
    "LESSCLOSE",
];

/// Follows assignments that hand code to a program (`GIT_SSH_COMMAND=...`)
/// and records library preloading as a command text of its own
/// (`LD_PRELOAD=/tmp/x.so`).
pub(super) fn code_assignments<'a>(
    ctx: &mut ParseState,
    out: &mut Canonical,
    words: impl Iterator<Item = &'a str>,
    span: &Range<usize>,
    depth: usize,
) {
    for w in words {
        let Some((name, value)) = assignment(w) else {
            continue;
        };
        if CODE_VARS.contains(&name) && !value.is_empty() {
            analyse_nested(ctx, out, value, span, depth);
        } else if matches!(name, "LD_PRELOAD" | "LD_AUDIT" | "DYLD_INSERT_LIBRARIES") {
            out.commands.push(Item {
                text: format!("{name}={value}"),
                span: span.clone(),
            });
        }
    }
}

/// `git [GLOBAL OPTS] SUBCOMMAND ...`: global options are dropped, so that
/// `git -C ../other reset --hard` is judged as `git reset --hard`; the code
/// `-c key=value` and `git config key value` hand to git is followed.
pub(super) fn git(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    // Global options go; `-c alias.x=!cmd` and friends run code.
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "-c" || a == "-C" || a == "--git-dir" || a == "--work-tree" || a == "--namespace" {
            if a == "-c" {
                if let Some(kv) = argv.get(i + 1) {
                    git_config_code(ctx, out, kv, span, depth);
                }
            }
            i += 2;
        } else if a.starts_with("--") && a.contains('=')
            || matches!(
                a,
                "--no-pager" | "--bare" | "-p" | "--paginate" | "-P" | "--no-replace-objects"
            )
        {
            i += 1;
        } else {
            break;
        }
    }
    // `git config [--global] KEY VALUE` stores code for later.
    if argv.get(i).is_some_and(|a| a == "config") {
        let kv: Vec<&String> = argv[i + 1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .collect();
        if let [key, value, ..] = kv.as_slice() {
            git_config_code(ctx, out, &format!("{key}={value}"), span, depth);
        }
    }
    // Without its global options, git is a level of its own and
    // the innermost command (its subcommands wrap nothing).
    if i > 1 && i < argv.len() {
        let mut inner = vec!["git".to_owned()];
        inner.extend(argv[i..].iter().cloned());
        return Next::Last(inner);
    }
    Next::Done
}

/// `git -c key=value`: aliases starting with `!`, pagers, editors and ssh
/// commands are shell code.
fn git_config_code(
    ctx: &mut ParseState,
    out: &mut Canonical,
    kv: &str,
    span: &Range<usize>,
    depth: usize,
) {
    let Some((key, value)) = kv.split_once('=') else {
        return;
    };
    let key = key.to_ascii_lowercase();
    let code = if key.starts_with("alias.") {
        value.strip_prefix('!')
    } else if matches!(
        key.as_str(),
        "core.pager"
            | "core.editor"
            | "core.sshcommand"
            | "core.fsmonitor"
            | "sequence.editor"
            | "diff.external"
            | "core.askpass"
    ) || key.starts_with("pager.")
        || key.ends_with(".textconv")
        || key.ends_with(".command")
    {
        Some(value)
    } else {
        None
    };
    if let Some(c) = code {
        analyse_nested(ctx, out, c, span, depth);
    }
}

/// `tar --checkpoint-action=exec=CMD` and the other options whose value
/// tar runs as a command.
pub(super) fn tar(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    for a in argv.iter().skip(1) {
        for key in [
            "--checkpoint-action=exec=",
            "--to-command=",
            "--use-compress-program=",
            "--info-script=",
            "--new-volume-script=",
        ] {
            if let Some(c) = a.strip_prefix(key) {
                analyse_nested(ctx, out, c, span, depth);
            }
        }
    }
    Next::Done
}

/// `vim -c '!CMD'`, `vim +'!CMD'`, `vim --cmd ':!CMD'`: ex commands that
/// start with `!` run a shell command.
pub(super) fn vim(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    for (k, a) in argv.iter().enumerate() {
        let cmd = if a == "-c" || a == "--cmd" {
            argv.get(k + 1).map(String::as_str)
        } else {
            a.strip_prefix('+')
        };
        if let Some(c) = cmd.and_then(|c| c.trim_start_matches(':').strip_prefix('!')) {
            analyse_nested(ctx, out, c, span, depth);
        }
    }
    Next::Done
}
