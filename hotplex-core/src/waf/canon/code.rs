//! Interpreter code: `python -c`, `perl -e`, `node -e`, code piped or
//! heredoc'd into an interpreter, `awk` programs and `sed` scripts.
//!
//! The code is recorded as a [`crate::waf::Scope::Code`] text prefixed by
//! the interpreter's name (`python3 import os; ...`), with the usual
//! spellings of the home directory folded to `'~'` so one rule covers them
//! all. Shell commands the code spells out literally (`os.system("rm -rf
//! ~")`) are followed as shell input of their own.

use std::ops::Range;

use once_cell::sync::Lazy;
use regex::Regex;

use super::args::skip_opts;
use super::{analyse, run_file, script_content, sink, Canonical, Item, Next};
use crate::verdict::Level;
use crate::waf::effect::{self, Kind};
use crate::waf::shell::ParseState;

/// The interpreter's name if argv runs one (`python3`, `perl`, ...).
pub(super) fn interpreter(argv: &[String]) -> Option<String> {
    let name = argv.first()?;
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        base,
        "python" | "perl" | "ruby" | "node" | "nodejs" | "php" | "deno" | "bun" | "lua" | "Rscript"
    )
    .then(|| name.clone())
}

/// The code operand of an interpreter (`-c CODE`, `-e CODE`, `-r CODE`).
pub(super) fn code_arg(argv: &[String]) -> Option<String> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "-e" | "-E" | "-r" | "--eval" | "-p" | "--print" | "eval" => {
                return it.next().cloned()
            }
            s if s.starts_with("-c") && s.len() > 2 && !s.starts_with("--") => {
                return Some(s[2..].to_owned())
            }
            s if s.starts_with('-') => {}
            _ => return None, // a script file: not inline code
        }
    }
    None
}

/// Expressions interpreters use for the home directory; folded to `'~'`.
static HOME_EXPR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"\$ENV\{\s*['"]?HOME['"]?\s*\}|process\.env\.HOME|process\.env\[['"]HOME['"]\]|(?:os\.)?homedir\(\)|os\.environ\[['"]HOME['"]\]|os\.environ\.get\(['"]HOME['"]\)|os\.getenv\(['"]HOME['"]\)|getenv\(['"]HOME['"]\)|ENV\[['"]HOME['"]\]|Path\.home\(\)|os\.homedir\(\)|(?:os\.path\.)?expanduser\(['"]~['"]\)|Dir\.home"#,
    )
    .expect("static regex")
});

/// Calls that run a shell command: `system(...)`, `system "..."`,
/// `subprocess.run([...])`, `execSync(...)`, ...
static SHELL_CALL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"\b(?:system|popen|exec[vl]p?e?|exec|execSync|spawnSync|spawn|execFileSync|check_output|check_call|run|call|Popen|shell_exec|passthru|qx)\s*(?:\(|\s['"\[])"#)
        .expect("static regex")
});

/// Records interpreter code and follows shell commands it spells out
/// literally (`os.system("...")`, `system "rm", "-rf", $ENV{HOME}`).
pub(super) fn push_code(
    ctx: &mut ParseState,
    out: &mut Canonical,
    name: &str,
    code: &str,
    span: Range<usize>,
    depth: usize,
) {
    let folded = HOME_EXPR.replace_all(code, "'~'");
    out.codes.push(Item {
        text: format!("{name} {folded}"),
        span: span.clone(),
    });
    // Library calls with literal arguments; SQL in the literals.
    let mut sql = Vec::new();
    effect::interp::scan(name, &folded, &mut sink(ctx, out, &span), &mut sql);
    for stmt in sql {
        out.codes.push(Item {
            text: format!("sql {stmt}"),
            span: span.clone(),
        });
    }
    let trimmed = folded.trim();
    if trimmed.starts_with('$') && !trimmed.contains(char::is_whitespace) {
        // The code is an unexpanded variable: nobody can read it here.
        sink(ctx, out, &span).push_at(
            Kind::Exec,
            "code from a variable",
            "interpreter code not known here",
            Some(Level::Moderate),
        );
    }
    let mut shells = embedded_shell(&folded);
    if name.starts_with("ruby") || name.starts_with("perl") || name.starts_with("php") {
        // Backticks run a shell command in these languages.
        shells.extend(folded.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    for shell_text in shells {
        analyse(ctx, out, &shell_text, Some(span.clone()), depth + 1);
    }
}

/// The shell commands in interpreter code: for each shell-running call, its
/// string literals up to the end of the call, joined by spaces (so both
/// `system("rm -rf ~")` and `system("rm", "-rf", "~")` give `rm -rf ~`).
fn embedded_shell(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for m in SHELL_CALL.find_iter(code) {
        let rest = &code[m.end() - 1..];
        let mut parts: Vec<String> = Vec::new();
        let mut chars = rest.char_indices().peekable();
        let mut depth = 0i32;
        // Literals inside `{...}` are options (`spawn(cmd, {stdio: ...})`).
        let mut braces = 0i32;
        while let Some((_, c)) = chars.next() {
            match c {
                '{' => braces += 1,
                '}' => braces -= 1,
                '(' | '[' => depth += 1,
                ')' | ']' => {
                    depth -= 1;
                    if depth <= 0 && c == ')' {
                        break;
                    }
                }
                ';' | '\n' if depth <= 0 => break,
                '"' | '\'' | '`' => {
                    let mut lit = String::new();
                    let mut escaped = false;
                    for (_, d) in chars.by_ref() {
                        if escaped {
                            lit.push(d);
                            escaped = false;
                        } else if d == '\\' {
                            escaped = true;
                        } else if d == c {
                            break;
                        } else {
                            lit.push(d);
                        }
                    }
                    if braces <= 0 {
                        parts.push(lit);
                    }
                }
                _ => {}
            }
        }
        // `execvp(file, [argv0, ...])`: the first literal names the file.
        let name = m.as_str();
        if (name.starts_with("execv") || name.starts_with("execl")) && parts.len() > 1 {
            parts.remove(0);
        }
        // Several literals are an argument vector: each is one word.
        if parts.len() > 1 {
            for p in parts.iter_mut() {
                if p.contains(char::is_whitespace) {
                    *p = format!("'{}'", p.replace('\'', "'\\''"));
                }
            }
        }
        if !parts.is_empty() {
            found.push(parts.join(" "));
        }
    }
    found
}

/// `awk PROGRAM [FILE...]`: the program is interpreter code (its `system()`
/// calls are followed). A program read from a file (`-f`) is not seen.
pub(super) fn awk(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    depth: usize,
) -> Next {
    let i = skip_opts(argv, 1, "Fvf", &["field-separator", "assign", "file"]);
    if let Some(prog) = argv.get(i) {
        if !argv.iter().any(|a| a == "-f") {
            push_code(ctx, out, &argv[0], &prog.clone(), span.clone(), depth);
        }
    }
    Next::Done
}

/// `sed -e SCRIPT...` or `sed SCRIPT`: each script is recorded as code, so
/// that rules can judge the sed commands that run a shell command (`e`).
pub(super) fn sed(out: &mut Canonical, argv: &[String], span: &Range<usize>) -> Next {
    let mut scripts: Vec<String> = Vec::new();
    let mut k = 1;
    while k < argv.len() {
        if argv[k] == "-e" || argv[k] == "--expression" {
            if let Some(s) = argv.get(k + 1) {
                scripts.push(s.clone());
            }
            k += 1;
        }
        k += 1;
    }
    if scripts.is_empty() {
        let i = skip_opts(argv, 1, "lf", &["line-length", "file"]);
        if let Some(s) = argv.get(i) {
            scripts.push(s.clone());
        }
    }
    for s in scripts {
        out.codes.push(Item {
            text: format!("sed {s}"),
            span: span.clone(),
        });
    }
    Next::Done
}

/// Any other command: when it is an interpreter, its inline code operand
/// (`-c`/`-e`), or the heredoc it reads when it has no operand at all.
pub(super) fn inline_code(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Next {
    if let Some(interp) = interpreter(argv) {
        match code_arg(argv) {
            Some(code) => push_code(ctx, out, &interp, &code, span.clone(), depth),
            None => {
                // `python3 - <<EOF`: `-` reads the program from stdin.
                let stdin_prog = argv.len() == 1 || argv.len() == 2 && argv[1] == "-";
                if let (true, Some(body)) = (stdin_prog, stdin) {
                    push_code(ctx, out, &interp, body, span.clone(), depth);
                } else if let Some(f) = argv.iter().skip(1).find(|a| !a.starts_with('-')) {
                    // A script this command line wrote or downloaded.
                    match script_content(ctx, f) {
                        Some(Some(text)) => {
                            push_code(ctx, out, &interp, &text, span.clone(), depth)
                        }
                        Some(None) => run_file(ctx, out, None, span, depth),
                        None => {}
                    }
                }
            }
        }
    }
    Next::Done
}
