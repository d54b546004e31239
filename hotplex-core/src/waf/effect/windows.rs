//! Windows commands an agent runs under WSL: `cmd.exe /c ...`, PowerShell
//! (`-Command`, `-EncodedCommand`), and the system tools (`vssadmin`,
//! `diskpart`, `reg`, `wsl --unregister`, `bcdedit`). Windows paths are
//! mapped onto the policy's places: a drive root is the root, `%USERPROFILE%`
//! is home, `%TEMP%` a temp directory, `..\x` a parent path.

use super::{decode, Kind, Sink};
use crate::verdict::Level;

/// Maps a Windows path to the POSIX-like form the policy classifies.
pub(crate) fn win_path(tok: &str) -> String {
    let t = tok.trim_matches(['"', '\'']);
    let lower = t.to_ascii_lowercase();
    let mut rest: &str = t;
    let mut root = String::new();
    for (var, to) in [
        ("%userprofile%", "~"),
        ("%homepath%", "~"),
        ("$env:userprofile", "~"),
        ("$home", "~"),
        ("%systemroot%", "/windows"),
        ("%windir%", "/windows"),
        ("$env:windir", "/windows"),
        ("$env:systemroot", "/windows"),
        ("%temp%", "/tmp"),
        ("%tmp%", "/tmp"),
        ("$env:temp", "/tmp"),
        ("$env:tmp", "/tmp"),
        ("%systemdrive%", "/"),
        ("$env:systemdrive", "/"),
    ] {
        if lower.starts_with(var) {
            root = to.to_owned();
            rest = &t[var.len()..];
            break;
        }
    }
    if root.is_empty() {
        let b = t.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            root = "/".to_owned();
            rest = &t[2..];
        } else if let Some(r) = t.strip_prefix('~') {
            root = "~".to_owned();
            rest = r;
        }
    }
    let rest = rest.replace('\\', "/");
    let joined = if root.is_empty() {
        rest
    } else if root.ends_with('/') {
        format!("{root}{}", rest.trim_start_matches('/'))
    } else {
        format!("{root}/{}", rest.trim_start_matches('/'))
    };
    let norm = super::super::canon::normalize(&joined.to_ascii_lowercase());
    // `C:\Users\name` is a home directory like `/home/name`.
    match norm.strip_prefix("/users/") {
        Some(user) if !user.contains('/') => format!("/home/{user}"),
        _ => norm,
    }
}

/// Splits Windows command text on `&`, `&&`, `||`, `|` (outside double
/// quotes) and each statement into words (double quotes kept together).
fn statements(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in code.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '&' | '|' | '\n' | ';' if !quoted => {
                if in_word {
                    cur.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    cur.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        cur.push(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `cmd /c CODE`: every statement's effects; returns the statements as
/// canonical command texts (lower-cased command word) for the rules.
pub(crate) fn cmd_code(code: &str, fed: bool, s: &mut Sink<'_>) -> Vec<Vec<String>> {
    let stmts = statements(code);
    let n = stmts.len();
    for (k, st) in stmts.iter().enumerate() {
        let Some(first) = st.first() else {
            continue;
        };
        let name = first.to_ascii_lowercase();
        let name = name.trim_end_matches(".exe").trim_end_matches(".com");
        // Piped or chained from an `echo` script: diskpart reads it.
        let fed_here = fed || k > 0 && k + 1 == n;
        let flags = |f: &str| st.iter().any(|a| a.eq_ignore_ascii_case(f));
        let paths = || {
            st.iter()
                .skip(1)
                .filter(|a| !a.starts_with('/'))
                .map(|a| win_path(a))
        };
        match name {
            "rd" | "rmdir" => {
                let kind = if flags("/s") {
                    Kind::DeleteTree
                } else {
                    Kind::Delete
                };
                for p in paths() {
                    s.push(kind, p, "rd /s");
                }
            }
            "del" | "erase" => {
                let kind = if flags("/s") {
                    Kind::DeleteTree
                } else {
                    Kind::Delete
                };
                for p in paths() {
                    s.push(kind, p, "del");
                }
            }
            "diskpart" => {
                let level = if fed_here || flags("/s") {
                    Level::Critical
                } else {
                    Level::Moderate
                };
                s.push_at(Kind::Device, "disk", "diskpart", Some(level));
            }
            "powershell" | "pwsh" => powershell(st, s),
            "type" => {
                for p in paths() {
                    s.push(Kind::Read, p, "type");
                }
            }
            _ => command_effects(name, st, s),
        }
    }
    stmts
}

/// System tools whose effects do not depend on a path: shadow copies,
/// distributions, registry keys, boot configuration, accounts, tasks.
pub(crate) fn command_effects(name: &str, argv: &[String], s: &mut Sink<'_>) {
    let has = |w: &str| argv.iter().any(|a| a.eq_ignore_ascii_case(w));
    match name {
        "vssadmin" if has("delete") || has("resize") => s.push_at(
            Kind::Destroy,
            "shadow copies",
            "vssadmin delete shadows",
            Some(Level::Critical),
        ),
        "wmic" if has("shadowcopy") && has("delete") => s.push_at(
            Kind::Destroy,
            "shadow copies",
            "wmic shadowcopy delete",
            Some(Level::Critical),
        ),
        "wbadmin" if has("delete") => s.push_at(
            Kind::Destroy,
            "backups",
            "wbadmin delete",
            Some(Level::Critical),
        ),
        "wsl" if has("--unregister") => s.push_at(
            Kind::Destroy,
            "a WSL distribution",
            "wsl --unregister",
            Some(Level::Critical),
        ),
        "reg" if has("delete") => s.push_at(
            Kind::Destroy,
            "registry keys",
            "reg delete",
            Some(Level::High),
        ),
        "bcdedit" if has("/delete") || has("/deletevalue") => s.push_at(
            Kind::Destroy,
            "boot configuration",
            "bcdedit /delete",
            Some(Level::Critical),
        ),
        "format"
            if argv
                .iter()
                .skip(1)
                .any(|a| a.len() == 2 && a.ends_with(':')) =>
        {
            s.push_at(Kind::Device, "a drive", "format", Some(Level::Critical))
        }
        "net" if has("localgroup") && has("/add") => s.push_at(
            Kind::Privilege,
            "a group grant",
            "net localgroup /add",
            Some(Level::Critical),
        ),
        "schtasks" if has("/create") => s.push_at(
            Kind::Persist,
            "a scheduled task",
            "schtasks /create",
            Some(Level::High),
        ),
        _ => {}
    }
}

/// `powershell [-NoProfile ...] -Command CODE | -EncodedCommand B64 | CODE`.
pub(crate) fn powershell(argv: &[String], s: &mut Sink<'_>) {
    let mut i = 1;
    let mut code: Option<String> = None;
    while i < argv.len() {
        let a = argv[i].to_ascii_lowercase();
        let opt = a.trim_start_matches(['-', '/']);
        if !a.starts_with('-') && !a.starts_with('/') {
            code = Some(argv[i..].join(" "));
            break;
        }
        if opt == "ec" || opt.starts_with('e') && "encodedcommand".starts_with(opt) {
            match argv.get(i + 1).and_then(|b| decode::utf16le_base64(b)) {
                Some(text) => code = Some(text),
                None => s.push_at(
                    Kind::Exec,
                    "encoded command",
                    "powershell undecodable -EncodedCommand",
                    Some(Level::Moderate),
                ),
            }
            break;
        }
        if opt == "c" || opt.len() >= 2 && "command".starts_with(opt) {
            code = Some(argv[i + 1..].join(" "));
            break;
        }
        if opt.len() >= 2 && "file".starts_with(opt) {
            break;
        }
        // Options that take a value.
        if [
            "executionpolicy",
            "ep",
            "windowstyle",
            "w",
            "configurationname",
            "outputformat",
            "inputformat",
            "workingdirectory",
            "wd",
            "version",
        ]
        .iter()
        .any(|o| opt == *o || opt.len() >= 3 && o.starts_with(opt))
        {
            i += 1;
        }
        i += 1;
    }
    if let Some(c) = code {
        ps_code(&c, s);
    }
}

/// PowerShell command aliases and cmdlets that remove items.
const PS_REMOVE: &[&str] = &["remove-item", "rm", "ri", "del", "erase", "rd", "rmdir"];
/// Cmdlets and aliases that list items (the input of a removal pipeline).
const PS_LIST: &[&str] = &["get-childitem", "gci", "ls", "dir"];
/// Cmdlets that fetch from the network.
const PS_NET: &[&str] = &[
    "invoke-webrequest",
    "iwr",
    "invoke-restmethod",
    "irm",
    "downloadstring",
    "downloadfile",
    "net.webclient",
    "start-bitstransfer",
    "curl",
    "wget",
];

/// Judges PowerShell code: removals (also fed by `Get-ChildItem`), disk
/// cmdlets, code downloaded into `Invoke-Expression`, secrets sent out.
fn ps_code(code: &str, s: &mut Sink<'_>) {
    let lower = code.to_ascii_lowercase();
    let net = PS_NET.iter().any(|n| lower.contains(n));
    if (lower.contains("iex") || lower.contains("invoke-expression")) && net {
        s.push_at(
            Kind::Exec,
            "downloaded script",
            "powershell download and invoke",
            Some(Level::Critical),
        );
    } else if lower.contains("iex") || lower.contains("invoke-expression") {
        s.push_at(
            Kind::Exec,
            "dynamic script",
            "powershell invoke-expression",
            Some(Level::Moderate),
        );
    }
    for stmt in lower.split([';', '\n']) {
        let mut listed: Option<(String, bool)> = None;
        for seg in stmt.split('|') {
            let words: Vec<&str> = seg.split_whitespace().collect();
            let Some(&cmd) = words.first() else { continue };
            let recurse = words
                .iter()
                .any(|w| w.len() >= 2 && "-recurse".starts_with(w) && w.starts_with("-r"));
            let operands = || {
                let mut v = Vec::new();
                let mut k = 1;
                while k < words.len() {
                    let w = words[k];
                    if w.starts_with('-') {
                        if matches!(w, "-path" | "-literalpath" | "-lp") {
                            if let Some(p) = words.get(k + 1) {
                                v.push(win_path(p));
                            }
                            k += 1;
                        }
                    } else {
                        v.push(win_path(w));
                    }
                    k += 1;
                }
                v
            };
            if PS_LIST.contains(&cmd) {
                listed = operands().into_iter().next().map(|p| (p, recurse));
            } else if PS_REMOVE.contains(&cmd) {
                let mut targets = operands();
                let mut rec = recurse;
                if targets.is_empty() {
                    if let Some((p, r)) = listed.take() {
                        targets.push(p);
                        rec |= r;
                    }
                }
                for t in targets {
                    s.push(
                        if rec { Kind::DeleteTree } else { Kind::Delete },
                        t,
                        "Remove-Item",
                    );
                }
            } else if matches!(
                cmd,
                "format-volume" | "clear-disk" | "initialize-disk" | "remove-partition"
            ) {
                s.push_at(
                    Kind::Device,
                    "a disk",
                    "powershell disk cmdlet",
                    Some(Level::Critical),
                );
            } else if matches!(cmd, "get-content" | "gc" | "cat" | "type") || cmd.ends_with(".ssh")
            {
                for p in operands() {
                    s.push(Kind::Read, p.clone(), "Get-Content");
                    if net {
                        s.push(Kind::Send, p, "powershell web request");
                    }
                }
            } else if PS_LIST.contains(&cmd) {
                // handled above
            }
            if net {
                for w in &words {
                    let p = win_path(w);
                    if super::is_secret(&p) {
                        s.push(Kind::Send, p, "powershell web request");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths_map_onto_places() {
        assert_eq!(win_path("C:\\"), "/");
        assert_eq!(win_path("C:\\Windows\\System32"), "/windows/system32");
        assert_eq!(win_path("%USERPROFILE%"), "~");
        assert_eq!(win_path("C:\\Users\\dev"), "/home/dev");
        assert_eq!(win_path("..\\shared"), "../shared");
        assert_eq!(win_path(".\\dist"), "dist");
    }
}
