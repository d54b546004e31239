//! Wrapper commands: `sudo`, `env`, `timeout`, `nice`, `xargs`, `find
//! -exec`, `busybox`, `flock`, `chroot`, `npx`, ... They run another
//! command, so each one is judged as written *and* the command it wraps is
//! unwrapped as a level of its own ([`super::unwrap_argv`]).
//!
//! Most wrappers are *simple*: they take some options, maybe a fixed number
//! of operands (`timeout`'s duration), and then run the rest of their
//! arguments. Those are rows of [`SIMPLE_WRAPPERS`], read by one function.
//! Wrappers that do more (set variables, read arguments from stdin, run a
//! command once per input, take a command as an option value) are code.

use std::ops::Range;

use super::args::{flag_value, skip_opts};
use super::tools::code_assignments;
use super::{analyse_nested, unwrap_argv, Canonical, Next};
use crate::waf::shell::{assignment, ParseState};

/// A wrapper that skips its own options (and a fixed number of operands)
/// and then runs the rest of its argument vector as a command.
pub(super) struct SimpleWrapper {
    /// The command names the row stands for (aliases share a row).
    names: &'static [&'static str],
    /// Whether options come before the command at all. `busybox`/`toybox`
    /// take none: their first argument is the applet, whatever it looks like.
    options: bool,
    /// Short options (single letters, in one string) that take a value;
    /// every other `-x` is skipped on its own, so it need not be listed.
    short_with_value: &'static str,
    /// Long options (without `--`) that take a separate value word.
    long_with_value: &'static [&'static str],
    /// Operands between the options and the command: `timeout`'s duration,
    /// `chroot`'s new root.
    operands: usize,
}

impl SimpleWrapper {
    /// Index in `argv` at which the wrapped command starts (`argv.len()` or
    /// more when nothing is wrapped).
    pub(super) fn command_at(&self, argv: &[String]) -> usize {
        let first_operand = if self.options {
            skip_opts(argv, 1, self.short_with_value, self.long_with_value)
        } else {
            1
        };
        first_operand + self.operands
    }
}

/// Every simple wrapper; see [`SimpleWrapper`].
static SIMPLE_WRAPPERS: &[SimpleWrapper] = &[
    SimpleWrapper {
        names: &["sudo"],
        options: true,
        short_with_value: "ugCDhprtTU",
        long_with_value: &[
            "user",
            "group",
            "chdir",
            "host",
            "prompt",
            "role",
            "type",
            "close-from",
            "other-user",
        ],
        operands: 0,
    },
    SimpleWrapper {
        names: &["doas"],
        options: true,
        short_with_value: "uC",
        long_with_value: &[],
        operands: 0,
    },
    SimpleWrapper {
        names: &["nice"],
        options: true,
        short_with_value: "n",
        long_with_value: &["adjustment"],
        operands: 0,
    },
    SimpleWrapper {
        names: &["ionice"],
        options: true,
        short_with_value: "cnp",
        long_with_value: &["class", "classdata", "pid"],
        operands: 0,
    },
    SimpleWrapper {
        names: &["stdbuf"],
        options: true,
        short_with_value: "ioe",
        long_with_value: &["input", "output", "error"],
        operands: 0,
    },
    // Tracers, detachers and proxies: their value-taking options differ,
    // but `-o FILE`, `-e EXPR`, `-s SIZE`, `-p PID` cover the common ones.
    SimpleWrapper {
        names: &[
            "setsid",
            "nohup",
            "builtin",
            "unbuffer",
            "caffeinate",
            "strace",
            "ltrace",
            "proxychains",
            "proxychains4",
            "torsocks",
            "fakeroot",
            "sg",
        ],
        options: true,
        short_with_value: "oesp",
        long_with_value: &[],
        operands: 0,
    },
    SimpleWrapper {
        names: &["time"],
        options: true,
        short_with_value: "fo",
        long_with_value: &["format", "output"],
        operands: 0,
    },
    SimpleWrapper {
        names: &["exec"],
        options: true,
        short_with_value: "a",
        long_with_value: &[],
        operands: 0,
    },
    SimpleWrapper {
        names: &["timeout"],
        options: true,
        short_with_value: "sk",
        long_with_value: &["signal", "kill-after"],
        operands: 1, // the duration
    },
    SimpleWrapper {
        names: &["chroot"],
        options: true,
        short_with_value: "",
        long_with_value: &["userspec", "groups"],
        operands: 1, // the new root
    },
    SimpleWrapper {
        names: &["busybox", "toybox"],
        options: false,
        short_with_value: "",
        long_with_value: &[],
        operands: 0,
    },
    SimpleWrapper {
        names: &["npx", "bunx", "pnpx"],
        options: true,
        short_with_value: "p",
        long_with_value: &["package", "call"],
        operands: 0,
    },
];

/// The table row for `name`, if it is a simple wrapper.
pub(super) fn simple(name: &str) -> Option<&'static SimpleWrapper> {
    SIMPLE_WRAPPERS.iter().find(|w| w.names.contains(&name))
}

/// `command CMD`: runs CMD bypassing functions; `command -v`/`-V` only
/// looks it up, so nothing is run.
pub(super) fn command(argv: &[String]) -> Next {
    if argv.iter().skip(1).any(|a| a == "-v" || a == "-V") {
        Next::Done
    } else {
        Next::At(skip_opts(argv, 1, "", &[]))
    }
}

/// `watch [OPTS] CMD...` runs its arguments through `sh -c`, so they are
/// shell input (joined by spaces), not an argument vector.
pub(super) fn watch(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let i = skip_opts(argv, 1, "nd", &["interval", "differences"]);
    if i < argv.len() {
        analyse_nested(ctx, out, &argv[i..].join(" "), span, depth);
    }
    Next::Done
}

/// `flock [OPTS] LOCK CMD...` wraps CMD; `flock LOCK -c CODE` runs CODE
/// through a shell instead.
pub(super) fn flock(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let i = skip_opts(argv, 1, "wEc", &["timeout", "conflict-exit-code"]);
    if let Some(c) = flag_value(argv, &["-c", "--command"]) {
        analyse_nested(ctx, out, &c, span, depth);
        Next::Done
    } else {
        Next::At(i + 1) // the lock file
    }
}

/// `env [OPTS] [NAME=VALUE...] CMD...`: the assignments may hand code to
/// CMD (`GIT_SSH_COMMAND=...`), and `env -S 'CMD ARGS'` splits one
/// argument into the argument vector to run.
pub(super) fn env(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    // `env -S 'cmd args'` splits its argument.
    if let Some(s) = flag_value(argv, &["-S", "--split-string"]) {
        let mut rest: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        let i = argv
            .iter()
            .position(|a| a == &s)
            .map_or(argv.len(), |p| p + 1);
        rest.extend(argv[i..].iter().cloned());
        return Next::Replace(rest);
    }
    let mut i = skip_opts(argv, 1, "uCS", &["unset", "chdir", "split-string"]);
    let first_assign = i;
    while i < argv.len() && assignment(&argv[i]).is_some() {
        i += 1;
    }
    let assigns = &argv[first_assign..i];
    code_assignments(ctx, out, assigns.iter().map(String::as_str), span, depth);
    Next::At(i)
}

/// `xargs [OPTS] CMD...` wraps CMD; when its input is known here (a
/// here-string, say), CMD with that input appended is a level of its own.
pub(super) fn xargs(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Next {
    let i = skip_opts(
        argv,
        1,
        "IinLPdEsa",
        &[
            "replace",
            "max-lines",
            "max-args",
            "max-procs",
            "delimiter",
            "eof",
            "arg-file",
            "max-chars",
        ],
    );
    if i >= argv.len() {
        Next::Done
    } else {
        // xargs appends what it reads (a here-string, say), or puts it
        // where `-I REPL` says.
        if let Some(data) = stdin {
            let glued = argv[1..i]
                .iter()
                .find_map(|a| a.strip_prefix("-I").filter(|r| !r.is_empty()))
                .map(str::to_owned);
            let repl = glued
                .or_else(|| flag_value(argv, &["-I", "--replace"]))
                .or_else(|| {
                    argv[1..i]
                        .iter()
                        .any(|a| a == "-i")
                        .then(|| "{}".to_owned())
                });
            let mut inner = argv[i..].to_vec();
            match repl.filter(|r| !r.is_empty()) {
                Some(r) => {
                    let line = data.lines().next().unwrap_or_default().trim();
                    for a in inner.iter_mut() {
                        *a = a.replace(&r, line);
                    }
                }
                None => inner.extend(data.split_whitespace().map(str::to_owned)),
            }
            unwrap_argv(ctx, out, inner, span, None, depth + 1);
        }
        Next::At(i)
    }
}

/// `parallel CMD ::: ARG...` runs CMD once per argument; without `:::` the
/// arguments are a command template, judged as shell input.
pub(super) fn parallel(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let i = skip_opts(argv, 1, "jSIn", &["jobs", "sshlogin", "max-args"]);
    match argv.iter().position(|a| a == ":::" || a == "::::") {
        Some(sep) if sep > i => {
            for arg in &argv[sep + 1..] {
                let mut inner = argv[i..sep].to_vec();
                inner.push(arg.clone());
                unwrap_argv(ctx, out, inner, span, None, depth + 1);
            }
        }
        _ if i < argv.len() => analyse_nested(ctx, out, &argv[i..].join(" "), span, depth),
        _ => {}
    }
    Next::Done
}

/// Package and environment managers: `bundle exec X`, `poetry run X`,
/// `npm exec -- X`, `uv run X`, `pnpm dlx X`, ... wrap X; their other
/// subcommands run nothing we can see.
pub(super) fn package_runner(argv: &[String]) -> Next {
    let sub = argv.get(1).map(String::as_str);
    let runs = match argv[0].as_str() {
        "npm" => sub == Some("exec"),
        _ => matches!(sub, Some("exec" | "run" | "x" | "dlx")),
    };
    if runs {
        Next::At(skip_opts(argv, 2, "n", &["name", "with", "directory"]))
    } else {
        Next::Done
    }
}

/// `find ... -exec CMD {} ;` (and `-execdir`, `-ok`, `-okdir`): every such
/// command is a level of its own, with `{}` standing for what find walks
/// (judged as its start path).
pub(super) fn find(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let start = find_start(argv);
    let mut i = 1;
    while i < argv.len() {
        if matches!(argv[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let end = argv[i + 1..]
                .iter()
                .position(|a| a == ";" || a == "+")
                .map_or(argv.len(), |p| i + 1 + p);
            let inner: Vec<String> = argv[i + 1..end]
                .iter()
                .map(|a| if a == "{}" { start.clone() } else { a.clone() })
                .collect();
            unwrap_argv(ctx, out, inner, span, None, depth + 1);
            i = end;
        }
        i += 1;
    }
    Next::Done
}

/// `docker exec [OPTS] CONTAINER CMD...`, `docker compose exec SERVICE
/// CMD...`, `kubectl exec POD -- CMD...`: the command runs inside the
/// container and is judged as it is, with the container's paths as targets.
pub(super) fn container_exec(argv: &[String]) -> Next {
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match words.as_slice() {
        [_, "exec", ..] if argv[0] != "kubectl" && argv[0] != "oc" => {
            let i = skip_opts(
                argv,
                2,
                "euw",
                &["env", "user", "workdir", "env-file", "detach-keys", "index"],
            );
            Next::At(i + 1)
        }
        [_, "compose", "exec", ..] => {
            let i = skip_opts(argv, 3, "euw", &["env", "user", "workdir", "index"]);
            Next::At(i + 1)
        }
        _ if matches!(argv[0].as_str(), "kubectl" | "oc") && words.contains(&"exec") => {
            match words.iter().position(|w| *w == "--") {
                Some(p) => Next::At(p + 1),
                None => Next::Done,
            }
        }
        _ => Next::Done,
    }
}

/// `systemd-run [OPTS] CMD...` runs CMD as a transient unit (the timer
/// options make that persistence: see the effect tables).
pub(super) fn systemd_run(argv: &[String]) -> Next {
    Next::At(skip_opts(
        argv,
        1,
        "upEHMs",
        &[
            "unit",
            "property",
            "setenv",
            "host",
            "machine",
            "slice",
            "description",
            "uid",
            "gid",
            "nice",
            "working-directory",
            "on-active",
            "on-boot",
            "on-startup",
            "on-unit-active",
            "on-unit-inactive",
            "on-calendar",
            "timer-property",
            "path-property",
            "socket-property",
            "service-type",
        ],
    ))
}

/// The first path find walks (its operands come before the expression).
pub(super) fn find_start(argv: &[String]) -> String {
    argv.iter()
        .skip(1)
        .skip_while(|a| matches!(a.as_str(), "-H" | "-L" | "-P"))
        .take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!")
        .next()
        .cloned()
        .unwrap_or_else(|| ".".to_owned())
}
