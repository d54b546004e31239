//! Tool semantics: what a program does with its operands, as tables and
//! short functions rather than per-spelling patterns. The canonicaliser
//! calls [`effects`] for every wrapper level of every command, with the
//! command word already reduced to its basename and paths normalised.

use super::{Kind, Sink};
use crate::verdict::Level;

/// Programs whose operands are *not* read out as data: they list, test,
/// move metadata, authenticate with, or load the project's own files
/// (`source .env` is the project's environment, `ssh-add KEY` uses a key).
///
/// A `match` rather than a slice search: the compiler turns it into length
/// switches and inline compares, where `[&str]::contains` called `memcmp`
/// for every entry of the same length (this runs for every command).
fn is_not_reader(name: &str) -> bool {
    matches!(
        name,
        "ls" | "stat"
            | "file"
            | "test"
            | "["
            | "[["
            | "touch"
            | "mkdir"
            | "rm"
            | "rmdir"
            | "unlink"
            | "shred"
            | "srm"
            | "wipe"
            | "chmod"
            | "chown"
            | "chgrp"
            | "chattr"
            | "setfacl"
            | "ssh"
            | "ssh-add"
            | "ssh-keygen"
            | "ssh-copy-id"
            | "echo"
            | "printf"
            | "git"
            | "which"
            | "realpath"
            | "readlink"
            | "dirname"
            | "basename"
            | "du"
            | "wc"
            | "source"
            | "."
            | "export"
            | "set"
            | "unset"
            | "cd"
            | "pushd"
            | "docker"
            | "podman"
            | "docker-compose"
            | "kubectl"
            | "helm"
            | "aws"
            | "gcloud"
            | "az"
            | "terraform"
            | "tofu"
            | "ansible"
            | "ansible-playbook"
            | "sudo"
            | "doas"
            | "env"
            | "timeout"
            | "nice"
            | "xargs"
            | "find"
            | "mv"
            | "jq"
            | "yq"
            | "grep"
            | "egrep"
            | "fgrep"
            | "rg"
            | "ag"
            | "ack"
            | "code"
            | "open"
            | "xdg-open"
            | "chezmoi"
            | "sops"
            | "dotenv"
            | "direnv"
            | "scp"
            | "rsync"
            | "sftp"
            | "curl"
            | "wget"
            | "shellcheck"
            | "age-keygen"
            | "ssh-keyscan"
            | "ln"
            | "cp"
            | "install"
            | "openssl"
    )
}

/// The operands of argv (words not starting with `-`), skipping the values
/// of the listed short options (letters) and long options.
fn operands<'a>(argv: &'a [String], short_val: &str, long_val: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 1;
    let mut opts_done = false;
    while i < argv.len() {
        let a = argv[i].as_str();
        if opts_done || !a.starts_with('-') || a == "-" {
            out.push(a);
        } else if a == "--" {
            opts_done = true;
        } else if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && long_val.contains(&long) {
                i += 1;
            }
        } else if let Some(last) = a.chars().last() {
            if a.len() == 2 && short_val.contains(last) {
                i += 1;
            }
        }
        i += 1;
    }
    out
}

/// Whether a short-option cluster or long option in argv sets `letter` (for
/// clusters) or equals one of `long`.
fn has_flag(argv: &[String], letter: char, long: &[&str]) -> bool {
    argv.iter().skip(1).any(|a| {
        if let Some(l) = a.strip_prefix("--") {
            long.iter().any(|x| {
                l.strip_prefix(x)
                    .is_some_and(|r| r.is_empty() || r.starts_with('='))
            })
        } else {
            a.starts_with('-') && a.len() > 1 && a[1..].contains(letter)
        }
    })
}

/// Whether a remote `host:path` operand (scp, rsync).
fn is_remote(op: &str) -> bool {
    match op.split_once(':') {
        Some((host, _)) => !host.is_empty() && !host.contains('/') && !op.starts_with("./"),
        None => false,
    }
}

// One arm per tool reads as a table; folding each arm's condition into a
// match guard would scatter a tool's semantics over guard and body.
#[allow(clippy::collapsible_match)]
/// Derives the effects of one canonical command. `stdin` is heredoc or
/// here-string text, `piped` says another command writes to its input.
pub(crate) fn effects(argv: &[String], stdin: Option<&str>, piped: bool, s: &mut Sink<'_>) {
    let Some(name) = argv.first() else { return };
    let lower;
    let name = if name.bytes().any(|c| c.is_ascii_uppercase()) || name.ends_with(".exe") {
        lower = name.to_ascii_lowercase();
        lower.trim_end_matches(".exe")
    } else {
        name.as_str()
    };
    let fed = piped || stdin.is_some();
    match name {
        "rm" => {
            let rec = has_flag(argv, 'r', &["recursive"]) || has_flag(argv, 'R', &[]);
            for p in operands(argv, "", &[]) {
                let kind = if rec { Kind::DeleteTree } else { Kind::Delete };
                s.push(kind, p, if rec { "rm -r" } else { "rm" });
            }
        }
        "rmdir" | "unlink" | "shred" | "srm" | "wipe" => {
            for p in operands(argv, "nsu", &["iterations", "size"]) {
                s.push(Kind::Delete, p, "delete");
            }
        }
        "find" => {
            if argv.iter().any(|a| a == "-delete") {
                s.push(
                    Kind::DeleteTree,
                    super::super::canon::find_start_of(argv),
                    "find -delete",
                );
            }
        }
        "rsync" => {
            let ops = operands(
                argv,
                "efT",
                &[
                    "exclude",
                    "include",
                    "rsh",
                    "filter",
                    "temp-dir",
                    "exclude-from",
                    "include-from",
                    "files-from",
                    "password-file",
                ],
            );
            if let Some((dest, srcs)) = ops.split_last() {
                if is_remote(dest) {
                    for p in srcs {
                        s.push(Kind::Send, *p, "rsync to a remote host");
                    }
                } else if argv.iter().any(|a| a.starts_with("--del")) {
                    s.push(Kind::DeleteTree, *dest, "rsync --delete");
                }
            }
        }
        "scp" => {
            let ops = operands(argv, "cFiJloPSDX", &[]);
            if let Some((dest, srcs)) = ops.split_last() {
                if is_remote(dest) {
                    for p in srcs.iter().filter(|p| !is_remote(p)) {
                        s.push(Kind::Send, *p, "scp to a remote host");
                    }
                }
            }
        }
        "sftp" => {
            if let Some(script) = stdin {
                sftp_batch(script, s);
            }
        }
        "mv" => {
            let ops = operands(argv, "tS", &["target-directory", "suffix"]);
            if let Some((dest, srcs)) = ops.split_last() {
                for p in srcs {
                    s.push(Kind::MoveAway, *p, "mv");
                }
                s.push(Kind::Write, *dest, "mv");
            }
        }
        "cp" | "install" | "ditto" => {
            let ops = operands(
                argv,
                "tSmogT",
                &["target-directory", "suffix", "mode", "owner", "group"],
            );
            if let Some((dest, srcs)) = ops.split_last() {
                if srcs.iter().any(|p| {
                    matches!(
                        *p,
                        "/dev/null" | "/dev/zero" | "/dev/urandom" | "/dev/random"
                    )
                }) {
                    s.push(Kind::Overwrite, *dest, "copy of nothing");
                } else {
                    s.push(Kind::Write, *dest, "copy");
                }
                for p in srcs {
                    s.push(Kind::Read, *p, "copy");
                }
                // A hook copied in from outside the tree runs unread code on
                // every git operation.
                if dest.contains(".git/hooks/")
                    && srcs.iter().any(|p| super::place(p) != super::Place::Tree)
                {
                    s.push_at(
                        Kind::Persist,
                        *dest,
                        "git hook from outside the tree",
                        Some(Level::High),
                    );
                }
            }
        }
        "tee" => {
            for p in operands(argv, "", &[]) {
                s.push(Kind::Write, p, "tee");
            }
        }
        "dd" => {
            for a in argv.iter().skip(1) {
                if let Some(p) = a.strip_prefix("of=") {
                    s.push(Kind::Write, p, "dd of=");
                } else if let Some(p) = a.strip_prefix("if=") {
                    s.push(Kind::Read, p, "dd if=");
                }
            }
        }
        "truncate" => {
            if argv
                .iter()
                .any(|a| a == "0" || a == "-s0" || a == "--size=0")
            {
                for p in operands(argv, "sr", &["size", "reference"])
                    .into_iter()
                    .filter(|p| *p != "0")
                {
                    s.push(Kind::Overwrite, p, "truncate -s 0");
                }
            }
        }
        "chmod" => {
            let ops = operands(argv, "", &["reference"]);
            if let Some((mode, paths)) = ops.split_first() {
                let via = mode_via(mode);
                for p in paths {
                    s.push(Kind::Repermission, *p, via);
                }
            }
        }
        "chown" | "chgrp" => {
            let ops = operands(argv, "", &["reference", "from"]);
            for p in ops.iter().skip(1) {
                s.push(Kind::Repermission, *p, "chown owner");
            }
        }
        "kill" | "pkill" | "killall" | "killall5" | "skill" | "slay" => signal(name, argv, s),
        "fdisk" | "sfdisk" | "cfdisk" | "gdisk" | "sgdisk" | "parted" => {
            partition(name, argv, fed, s)
        }
        "hdparm" => {
            if argv.iter().any(|a| {
                a.starts_with("--security-erase")
                    || a.starts_with("--trim-sector")
                    || a == "--make-bad-sector"
                    || a.starts_with("--dco-restore")
            }) {
                s.push_at(
                    Kind::Device,
                    last_dev(argv),
                    "hdparm erase",
                    Some(Level::Critical),
                );
            }
        }
        "wipefs" => {
            if has_flag(argv, 'a', &["all"]) || has_flag(argv, 'o', &["offset"]) {
                s.push_at(
                    Kind::Device,
                    last_dev(argv),
                    "wipefs",
                    Some(Level::Critical),
                );
            }
        }
        "blkdiscard" | "mkswap" => {
            for p in operands(argv, "olpL", &["offset", "length", "step", "label"]) {
                if p.starts_with("/dev/") {
                    s.push_at(Kind::Device, p, "discard", Some(Level::Critical));
                }
            }
        }
        "diskpart" => {
            let scripted = fed || argv.iter().any(|a| a.eq_ignore_ascii_case("/s"));
            s.push_at(
                Kind::Device,
                "disk",
                "diskpart",
                Some(if scripted {
                    Level::Critical
                } else {
                    Level::Moderate
                }),
            );
        }
        "vssadmin" | "wmic" | "wbadmin" | "wsl" | "reg" | "bcdedit" | "format" | "net"
        | "schtasks" => super::windows::command_effects(name, argv, s),
        "kubectl" | "oc" => kubectl(argv, s),
        "openssl" => {
            // `-in KEY` prints or converts the key; `-key`/`-out` use or
            // write one locally.
            for w in argv.windows(2) {
                if w[0] == "-in" {
                    s.push(Kind::Read, w[1].as_str(), "openssl -in");
                }
            }
        }
        "gpg" | "gpg2" => {
            if argv.iter().any(|a| a.starts_with("--export-secret")) {
                s.push(
                    Kind::SecretRead,
                    "gpg secret keys",
                    "gpg --export-secret-keys",
                );
            }
        }
        "curl" | "wget" | "http" | "https" | "xh" => http_send(argv, s),
        "dig" | "nslookup" | "host" | "drill" | "ping" | "nc" | "ncat" | "netcat" | "telnet"
        | "socat" => {
            if argv.iter().any(|a| a.contains("$(env)")) {
                s.push(Kind::Send, "env", "name lookup or socket");
            }
        }
        "systemd-run" => {
            if argv.iter().any(|a| {
                a.starts_with("--on-")
                    || a.starts_with("--timer-property")
                    || a.contains("Restart=")
            }) {
                s.push_at(
                    Kind::Persist,
                    "systemd timer or service",
                    "systemd-run",
                    Some(Level::High),
                );
            }
        }
        "npm" | "pnpm" | "yarn" | "bun" => {
            let sub = words(argv);
            if let ["config", "set", key, ..] | ["set", key, ..] = sub.as_slice() {
                let key = key.split('=').next().unwrap_or_default();
                if key.ends_with("registry")
                    || key.contains("script-shell")
                    || key == "shell"
                    || key.ends_with("npmRegistryServer")
                {
                    s.push_at(
                        Kind::Persist,
                        key.to_owned(),
                        "package manager config",
                        Some(Level::High),
                    );
                }
            }
        }
        n if n.starts_with("pip") => {
            let sub = words(argv);
            if let ["config", "set", key, ..] = sub.as_slice() {
                if key.contains("index-url")
                    || key.contains("trusted-host")
                    || key.contains("find-links")
                {
                    s.push_at(
                        Kind::Persist,
                        (*key).to_owned(),
                        "pip config",
                        Some(Level::High),
                    );
                }
            }
        }
        "gem" => {
            if argv.iter().any(|a| a == "sources") && argv.iter().any(|a| a == "--add" || a == "-a")
            {
                s.push_at(
                    Kind::Persist,
                    "gem sources",
                    "gem sources --add",
                    Some(Level::High),
                );
            }
        }
        "git" => git(argv, s),
        "setenforce" => {
            if argv
                .get(1)
                .is_some_and(|a| a == "0" || a.eq_ignore_ascii_case("permissive"))
            {
                s.push_at(
                    Kind::Destroy,
                    "SELinux enforcement",
                    "setenforce 0",
                    Some(Level::Moderate),
                );
            }
        }
        _ => {}
    }
    if !is_not_reader(name) {
        for a in argv
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-') || a.len() == 1)
        {
            if super::is_secret(a) {
                s.push(Kind::Read, a.as_str(), "reads its operand");
            }
        }
    }
}

/// `sftp` batch text: every `put SRC` sends SRC.
pub(crate) fn sftp_batch(script: &str, s: &mut Sink<'_>) {
    for line in script.lines() {
        let mut w = line.split_whitespace();
        if matches!(w.next(), Some("put" | "mput" | "reput")) {
            if let Some(src) = w.find(|a| !a.starts_with('-')) {
                s.push(Kind::Send, super::super::canon::normalize(src), "sftp put");
            }
        }
    }
}

/// What a chmod mode grants others: `chmod loosen` when they may write,
/// `chmod expose` when they may read, plain `chmod` otherwise.
fn mode_via(mode: &str) -> &'static str {
    let (write, read) = if mode.bytes().all(|c| c.is_ascii_digit()) && !mode.is_empty() {
        let last = mode.bytes().last().map_or(0, |c| c - b'0');
        (last & 0b010 != 0, last & 0b100 != 0)
    } else {
        let mut w = false;
        let mut r = false;
        for part in mode.split(',') {
            if let Some(i) = part.find(['+', '=']) {
                let (who, perms) = (&part[..i], &part[i + 1..]);
                if who.is_empty() || who.contains('o') || who.contains('a') {
                    w |= perms.contains('w');
                    r |= perms.contains('r');
                }
            }
        }
        (w, r)
    };
    if write {
        "chmod loosen"
    } else if read {
        "chmod expose"
    } else {
        "chmod"
    }
}

/// The last `/dev/...` operand (or `disk` when none is given).
fn last_dev(argv: &[String]) -> String {
    argv.iter()
        .rev()
        .find(|a| a.starts_with("/dev/"))
        .cloned()
        .unwrap_or_else(|| "disk".to_owned())
}

/// `kill -9 -1`, `kill 1`, `pkill -u root`, `killall5`: every process, init,
/// or every process of a user.
fn signal(name: &str, argv: &[String], s: &mut Sink<'_>) {
    if name == "killall5" {
        s.push(Kind::Signal, "every process", "killall5");
        return;
    }
    if matches!(name, "pkill" | "killall" | "skill" | "slay") {
        let users = argv
            .iter()
            .any(|a| a == "-u" || a == "-U" || a == "--euid" || a == "--uid" || a == "--user");
        let pattern = operands(
            argv,
            "uUgGPstnFcx",
            &[
                "euid", "uid", "user", "group", "parent", "session", "terminal", "pidfile",
                "signal",
            ],
        );
        if users && pattern.is_empty() || name == "slay" {
            s.push(Kind::Signal, "every process of a user", "pkill -u");
        }
        return;
    }
    // kill: `-1` after the signal, or pid 1.
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "-s" || a == "-n" {
            i += 2;
            continue;
        }
        // `-1` is the target when it is not the signal (last, or after one).
        let all = a == "-1" && (i + 1 == argv.len() || i > 1);
        if all || a == "1" {
            let target = if a == "1" { "init" } else { "every process" };
            s.push(Kind::Signal, target, "kill");
        }
        i += 1;
    }
}

/// Partition editors: scripted or mutating runs rewrite the table; listing
/// (`-l`, `print`, `--dump`) only reads it; an interactive run is `moderate`.
fn partition(name: &str, argv: &[String], fed: bool, s: &mut Sink<'_>) {
    let dev = last_dev(argv);
    if dev == "disk" {
        return;
    }
    let reads = argv.iter().any(|a| {
        matches!(
            a.as_str(),
            "-l" | "--list" | "print" | "-d" | "--dump" | "-J" | "--json" | "-s" if name != "parted" || a != "-s"
        ) || a == "-p" && name == "sgdisk"
            || a == "--verify"
            || a == "-v" && name == "sgdisk"
    }) && !argv.iter().any(|a| a == "--delete");
    if reads && !fed {
        return;
    }
    let mutating = fed
        || argv.iter().any(|a| {
            matches!(
                a.as_str(),
                "--delete"
                    | "mklabel"
                    | "rm"
                    | "mkpart"
                    | "resizepart"
                    | "--zap-all"
                    | "-Z"
                    | "-o"
                    | "--clear"
                    | "-z"
                    | "--zap"
                    | "-n"
                    | "-d"
                    | "--new"
                    | "--wipe"
                    | "--wipe-partitions"
            )
        });
    let level = if mutating {
        Level::Critical
    } else {
        Level::Moderate
    };
    s.push_at(Kind::Device, dev, "partition table", Some(level));
}

/// `kubectl config view --raw`, `kubectl get secret NAME -o yaml|json|...`.
fn kubectl(argv: &[String], s: &mut Sink<'_>) {
    let words = words(argv);
    if words.starts_with(&["config", "view"])
        && argv.iter().any(|a| a == "--raw" || a == "--flatten")
    {
        s.push(
            Kind::SecretRead,
            "kubeconfig credentials",
            "kubectl config view --raw",
        );
    }
    if let ["get", kind, ..] = words.as_slice() {
        let secret = kind.starts_with("secret") || kind.starts_with("secret/");
        let named = words.len() >= 3 || kind.contains('/');
        let shows = argv.iter().any(|a| {
            a.starts_with("-o") || a.starts_with("--output") || a.starts_with("--template")
        });
        if secret && named && shows {
            s.push(
                Kind::SecretRead,
                "kubernetes secret",
                "kubectl get secret -o",
            );
        }
    }
}

/// curl/wget/httpie: data, forms, uploads and headers filled from files
/// (`@path`) or from the environment (`$(env)`).
fn http_send(argv: &[String], s: &mut Sink<'_>) {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a.contains("$(env)") {
            s.push(Kind::Send, "env", "http request");
        }
        let value_flag = matches!(
            a,
            "-d" | "--data"
                | "--data-binary"
                | "--data-raw"
                | "--data-urlencode"
                | "-F"
                | "--form"
                | "-T"
                | "--upload-file"
                | "-H"
                | "--header"
        );
        let value = if value_flag {
            i += 1;
            argv.get(i).map(String::as_str)
        } else {
            a.strip_prefix("--post-file=")
                .or_else(|| a.strip_prefix("--body-file="))
        };
        if let Some(v) = value {
            if v.contains("$(env)") {
                s.push(Kind::Send, "env", "http request");
            }
            let file = if a == "-T" || a == "--upload-file" || !value_flag {
                Some(v)
            } else {
                v.split_once('@')
                    .map(|(_, f)| f.split([';', ',']).next().unwrap_or(f))
            };
            if let Some(f) = file.filter(|f| !f.is_empty() && *f != "-") {
                s.push(Kind::Send, super::super::canon::normalize(f), "http upload");
            }
        }
        i += 1;
    }
}

/// `git config [--global|--system] core.hooksPath DIR`: global hooks run
/// in every repository (persistence); a directory inside this repository
/// is ordinary project setup.
fn git(argv: &[String], s: &mut Sink<'_>) {
    let words = words(argv);
    let ["config", key, value, ..] = words.as_slice() else {
        return;
    };
    if !key.eq_ignore_ascii_case("core.hooksPath") {
        return;
    }
    let global = argv.iter().any(|a| a == "--global" || a == "--system");
    let inside = super::place(value) == super::Place::Tree;
    let level = if global {
        Level::High
    } else if inside {
        return;
    } else {
        Level::Moderate
    };
    s.push_at(
        Kind::Persist,
        (*value).to_owned(),
        "git core.hooksPath",
        Some(level),
    );
}

/// The words of `argv` after the program that are not options (no option
/// values skipped; see [`operands`] for that).
fn words(argv: &[String]) -> Vec<&str> {
    argv.iter()
        .skip(1)
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_that_open_access_to_others() {
        assert_eq!(mode_via("666"), "chmod loosen");
        assert_eq!(mode_via("777"), "chmod loosen");
        assert_eq!(mode_via("o+w"), "chmod loosen");
        assert_eq!(mode_via("a+rw"), "chmod loosen");
        assert_eq!(mode_via("644"), "chmod expose");
        assert_eq!(mode_via("+x"), "chmod");
        assert_eq!(mode_via("u+w"), "chmod");
        assert_eq!(mode_via("600"), "chmod");
    }
}
