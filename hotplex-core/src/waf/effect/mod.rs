//! The effect model: what a canonical command *does*, judged by policy.
//!
//! Regex rules recognise spellings; effects describe actions. While the
//! canonicaliser unwraps a command line it asks the tables in [`tools`]
//! (programs), [`interp`] (Python, Node, Perl, Ruby, awk code) and
//! [`windows`] (`cmd.exe`, PowerShell) what each command does: deletes a
//! path set, overwrites or re-permissions it, reads it, writes it, runs code,
//! sends data to a sink, changes privilege, persists, signals processes or
//! touches a disk device. [`judge`] then applies the labelling policy to
//! each effect's target (the root, system directories, home, the working
//! tree, temp directories, secrets). The detector reports the stricter of
//! this verdict and the regex rules' one, so a spelling no rule lists is
//! still judged by what it does.

pub(crate) mod decode;
pub(crate) mod interp;
pub(crate) mod tools;
pub(crate) mod windows;

use std::ops::Range;

use once_cell::sync::Lazy;
use regex::bytes::Regex;

use crate::verdict::{Category, Level};

/// What kind of action an effect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Deletes a path and everything under it (`rm -r`, `shutil.rmtree`).
    DeleteTree,
    /// Deletes a path (`rm`, `os.remove`, `unlink`).
    Delete,
    /// Moves a path away from where the system expects it (`mv /usr/bin x`).
    MoveAway,
    /// Empties or replaces a file's contents (`truncate -s 0`, `> f`).
    Overwrite,
    /// Writes into a path (`tee`, `cp` destination, `dd of=`).
    Write,
    /// Loosens the mode or owner of a path (`chmod 666`, `chown`).
    Repermission,
    /// Reads a path's contents.
    Read,
    /// Prints credentials a tool holds (`kubectl config view --raw`).
    SecretRead,
    /// Sends data (a path, or `env`) to the network.
    Send,
    /// Runs code the policy cannot see through (level fixed by the table).
    Exec,
    /// Gains privilege (level fixed by the table).
    Privilege,
    /// Survives the session: timers, hooks, registries (level fixed).
    Persist,
    /// Signals processes (target: `every process`, `init`, `a user`).
    Signal,
    /// Writes to a disk device or its partition table (level fixed).
    Device,
    /// Destroys system state outside files: shadow copies, registry keys,
    /// whole distributions (level fixed).
    Destroy,
}

impl Kind {
    /// The name shown in explanations.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Kind::DeleteTree => "delete-tree",
            Kind::Delete => "delete",
            Kind::MoveAway => "move-away",
            Kind::Overwrite => "overwrite",
            Kind::Write => "write",
            Kind::Repermission => "re-permission",
            Kind::Read => "read",
            Kind::SecretRead => "secret-read",
            Kind::Send => "send",
            Kind::Exec => "exec",
            Kind::Privilege => "privilege",
            Kind::Persist => "persist",
            Kind::Signal => "signal",
            Kind::Device => "device",
            Kind::Destroy => "destroy",
        }
    }
}

/// One derived action of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Effect {
    /// What is done.
    pub kind: Kind,
    /// To what: a normalised path, `env`, a sink, a mechanism.
    pub target: String,
    /// Which tool semantics produced it (`rm -r`, `shutil.rmtree`, ...).
    pub via: &'static str,
    /// The level the table fixes for kinds the target cannot decide.
    pub fixed: Option<Level>,
    /// Byte range of the command in the checked input.
    pub span: Range<usize>,
    /// Runs under `sudo`/`doas`/`pkexec` (a shell here is a root shell).
    pub privileged: bool,
}

impl Effect {
    /// `kind target (via)`, as explanations show it.
    pub(crate) fn describe(&self) -> String {
        let sudo = if self.privileged { " [as root]" } else { "" };
        format!(
            "{} {} ({}){sudo}",
            self.kind.as_str(),
            self.target,
            self.via
        )
    }
}

/// Where a path points, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `/` or everything in it.
    Root,
    /// A system directory or something under it.
    System,
    /// The home directory or one of its top-level entries, or another
    /// user's home.
    Home,
    /// Deeper inside the home directory (`~/.cache/pip`).
    HomeDeep,
    /// Another absolute path outside temp directories.
    Outside,
    /// The parent of the working tree itself (`..`, `../*`, `../..`).
    ParentTop,
    /// Something beside the working tree (`../other/x`).
    Parent,
    /// A temp directory.
    Tmp,
    /// Inside the working tree.
    Tree,
    /// A disk or memory device.
    Device,
    /// Not known here (an unexpanded variable).
    Unknown,
}

/// System directories whose loss breaks the host.
const SYSDIRS: &[&str] = &[
    "etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "boot", "var", "root", "opt",
    "srv", "sys", "proc", "dev", "run", "snap", "mnt", "media", "data", "windows",
];

/// Device name prefixes under `/dev` that hold data.
const DEVICES: &[&str] = &[
    "sd", "nvme", "hd", "vd", "xvd", "mmcblk", "disk", "mapper/", "dm-", "md", "loop", "nbd",
    "mem", "kmem", "port", "fb", "rdisk",
];

/// Classifies a (lexically normalised) path.
pub(crate) fn place(p: &str) -> Place {
    let subst = p.as_bytes().windows(2).any(|w| w == b"$(");
    if p.is_empty() || p.starts_with('$') && !p.starts_with("$TMPDIR") || subst {
        return Place::Unknown;
    }
    if p == "/" || p == "/*" || p == "/." || p.starts_with("/*") {
        return Place::Root;
    }
    // `root` itself or a path under it; compared in place, because `place`
    // runs for every effect of every command and a `format!` here was the
    // largest allocator of the effect pass.
    let tmp = |q: &str, root: &str| {
        q.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if tmp(p, "/tmp")
        || tmp(p, "/var/tmp")
        || tmp(p, "/dev/shm")
        || tmp(p, "$TMPDIR")
        || tmp(p, "/private/tmp")
    {
        return Place::Tmp;
    }
    if let Some(rest) = p.strip_prefix("/dev/") {
        return if DEVICES.iter().any(|d| rest.starts_with(d)) {
            Place::Device
        } else {
            Place::Outside
        };
    }
    if p == "~" || p == "~/*" {
        return Place::Home;
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return if rest.trim_end_matches('/').contains('/') {
            Place::HomeDeep
        } else {
            Place::Home
        };
    }
    if let Some(rest) = p.strip_prefix('/') {
        let first = rest.split('/').next().unwrap_or_default();
        let depth = rest.trim_end_matches('/').split('/').count();
        if matches!(first, "home" | "Users") && depth <= 2 || first == "root" && depth == 1 {
            return Place::Home;
        }
        if SYSDIRS.contains(&first) || first.starts_with("lib") {
            return Place::System;
        }
        return Place::Outside;
    }
    if p == ".." || p.starts_with("../") {
        let rest = p.trim_start_matches("../").trim_start_matches("..");
        return if rest.is_empty() || rest == "*" || rest.chars().all(|c| c == '.' || c == '/') {
            Place::ParentTop
        } else {
            Place::Parent
        };
    }
    if p.contains('$') {
        return Place::Unknown;
    }
    Place::Tree
}

/// Files that hold secrets, anchored: the same classes as the built-in
/// rules' `SECRET`, so both judges agree on what a secret is.
static SECRET_PATH: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(r"^(?-u)(?:{})$", super::builtin::SECRET)).expect("static regex")
});

/// Whether `p` (normalised, maybe a glob) names a secret. A glob counts when
/// one of the names it can match is a secret (`~/.ssh/id_*`).
pub(crate) fn is_secret(p: &str) -> bool {
    let p = p.trim_end_matches('/');
    if p.is_empty() || p.ends_with(".pub") || p.ends_with(".example") || p.ends_with(".sample") {
        return false;
    }
    if p.contains(['*', '?']) {
        for dir in ["/.ssh/", "/.aws/", "/.gnupg/", "/.kube/"] {
            if p.contains(dir) && !p.ends_with(".pub") {
                return true;
            }
        }
        return SECRET_PATH.is_match(p.replace(['*', '?'], "x").as_bytes());
    }
    SECRET_PATH.is_match(p.as_bytes())
}

/// The policy's finding for one effect.
pub(crate) struct Finding {
    pub level: Level,
    pub category: Category,
    pub id: &'static str,
    pub reason: &'static str,
}

fn finding(
    level: Level,
    category: Category,
    id: &'static str,
    reason: &'static str,
) -> Option<Finding> {
    Some(Finding {
        level,
        category,
        id,
        reason,
    })
}

/// Applies the labelling policy to one effect.
pub(crate) fn judge(e: &Effect) -> Option<Finding> {
    use Category as C;
    use Level as L;
    let at = place(&e.target);
    match e.kind {
        Kind::DeleteTree => match at {
            Place::Root | Place::System | Place::Home | Place::Outside | Place::ParentTop => finding(
                L::Critical,
                C::FileDelete,
                "effect.delete_tree_outside",
                "Deletes the root, a system directory, a home directory or the tree around the working tree",
            ),
            Place::Device => finding(L::Critical, C::System, "effect.wipe_device", "Wipes a disk device"),
            Place::HomeDeep | Place::Parent => finding(
                L::Moderate,
                C::FileDelete,
                "effect.delete_tree_nearby",
                "Deletes a directory outside the working tree",
            ),
            _ => None,
        },
        Kind::Delete | Kind::Overwrite => match at {
            Place::Root | Place::System | Place::Home | Place::Outside | Place::ParentTop => finding(
                L::High,
                C::FileDelete,
                "effect.delete_outside",
                "Deletes or overwrites a file outside the working tree",
            ),
            Place::Device => finding(L::Critical, C::System, "effect.wipe_device", "Overwrites a disk device"),
            Place::HomeDeep | Place::Parent => finding(
                L::Moderate,
                C::FileDelete,
                "effect.delete_nearby",
                "Deletes or overwrites a file outside the working tree",
            ),
            _ if is_secret(&e.target) => finding(
                L::Moderate,
                C::FileDelete,
                "effect.delete_secret",
                "Deletes or overwrites a secrets file",
            ),
            _ => None,
        },
        Kind::MoveAway => match at {
            Place::Root | Place::System | Place::Home => finding(
                L::Critical,
                C::System,
                "effect.move_system",
                "Moves a system path or the home directory away",
            ),
            _ => None,
        },
        Kind::Write => write_finding(&e.target, at),
        Kind::Repermission => {
            let loosens = e.via.contains("loosen");
            let system = matches!(at, Place::Root | Place::System);
            if is_secret(&e.target) && (loosens || e.via.contains("expose")) {
                finding(L::Critical, C::Permission, "effect.expose_secret", "Makes a secret readable or writable by others")
            } else if system && loosens {
                finding(L::Critical, C::Permission, "effect.repermission_system", "Makes a system path writable by others")
            } else if system && e.via.contains("owner") && is_core_system(&e.target) {
                finding(L::High, C::Permission, "effect.chown_system", "Changes the owner of a system path")
            } else {
                None
            }
        }
        Kind::Read => is_secret(&e.target).then_some(()).and_then(|()| {
            finding(L::High, C::Recon, "effect.read_secret", "Reads a credential, private key or secrets file")
        }),
        Kind::SecretRead => finding(L::High, C::Recon, "effect.read_secret", "Prints credentials a tool holds"),
        Kind::Send => (e.target == "env" || e.target == "secret" || is_secret(&e.target))
            .then_some(())
            .and_then(|()| finding(L::Critical, C::Network, "effect.send_secret", "Sends a secret or the environment to the network")),
        Kind::Exec => {
            let level = if e.privileged && e.via.contains("shell") {
                L::Critical
            } else {
                e.fixed.unwrap_or(L::Moderate)
            };
            finding(level, C::Injection, "effect.exec", exec_reason(e))
        }
        Kind::Privilege => finding(e.fixed.unwrap_or(L::Moderate), C::Privilege, "effect.privilege", "Gains privileges"),
        Kind::Persist => finding(e.fixed.unwrap_or(L::High), C::Persistence, "effect.persist", "Installs something that runs later or changes where code comes from"),
        Kind::Signal => finding(L::Critical, C::System, "effect.signal_all", "Kills every process, init, or every process of a user"),
        Kind::Device => finding(e.fixed.unwrap_or(L::Critical), C::System, "effect.device", "Rewrites a disk's partitions or contents"),
        Kind::Destroy => finding(e.fixed.unwrap_or(L::Critical), C::System, "effect.destroy", "Destroys backups, system configuration or a whole system"),
    }
}

fn exec_reason(e: &Effect) -> &'static str {
    if e.privileged && e.via.contains("shell") {
        "Opens a root shell"
    } else if e.via.contains("download") {
        "Runs code it downloads"
    } else if e.via.contains("decod") {
        "Runs decoded text that cannot be read here"
    } else {
        "Runs code that cannot be read here"
    }
}

fn write_finding(target: &str, at: Place) -> Option<Finding> {
    use Category as C;
    use Level as L;
    if at == Place::Device {
        return finding(
            L::Critical,
            C::System,
            "effect.write_device",
            "Writes straight onto a disk device",
        );
    }
    if target == "/proc/sysrq-trigger" {
        return finding(
            L::Critical,
            C::System,
            "effect.sysrq",
            "Triggers a kernel SysRq action (crash, reboot)",
        );
    }
    if target.starts_with("/proc/sys/") {
        return finding(
            L::High,
            C::Kernel,
            "effect.kernel_tunable",
            "Changes kernel parameters",
        );
    }
    if target.starts_with("/etc/sudoers") {
        return finding(L::Critical, C::Privilege, "effect.sudoers", "Edits sudoers");
    }
    if target.ends_with("/.ssh/authorized_keys") || target.ends_with("/.ssh/authorized_keys2") {
        return finding(
            L::Critical,
            C::Persistence,
            "effect.authorized_keys",
            "Adds an SSH key that grants login",
        );
    }
    if is_package_config(target) {
        return finding(
            L::High,
            C::Persistence,
            "effect.package_source",
            "Changes where packages are installed from",
        );
    }
    if at == Place::System && !target.starts_with("/dev/") && !target.starts_with("/proc/self") {
        return finding(
            L::High,
            C::System,
            "effect.write_system",
            "Writes into a system directory",
        );
    }
    None
}

/// The parts of the system whose owner matters to every program
/// (`/var/www` and `/opt` are application data).
fn is_core_system(p: &str) -> bool {
    ["/etc", "/usr", "/bin", "/sbin", "/lib", "/boot", "/root"]
        .iter()
        .any(|d| p.starts_with(d))
}

/// Package-manager configuration that decides where code is installed from.
fn is_package_config(p: &str) -> bool {
    const FILES: &[&str] = &[
        "/.npmrc",
        "/.yarnrc",
        "/.yarnrc.yml",
        "/.gemrc",
        "/pip.conf",
        "/.pydistutils.cfg",
        "/.cargo/config",
        "/.cargo/config.toml",
        "/.condarc",
    ];
    FILES
        .iter()
        .any(|f| p.ends_with(f) && (p.starts_with('~') || p.starts_with('/')))
        || p.starts_with("/etc/apt/sources.list")
        || p.starts_with("/etc/yum.repos.d/")
}

/// Appends effects while the canonicaliser walks one command.
pub(crate) struct Sink<'a> {
    pub out: &'a mut Vec<Effect>,
    pub span: Range<usize>,
    pub privileged: bool,
}

impl Sink<'_> {
    /// Records one effect.
    pub(crate) fn push(&mut self, kind: Kind, target: impl Into<String>, via: &'static str) {
        self.push_at(kind, target, via, None);
    }

    /// Records one effect whose level the table fixes.
    pub(crate) fn push_at(
        &mut self,
        kind: Kind,
        target: impl Into<String>,
        via: &'static str,
        fixed: Option<Level>,
    ) {
        if self.out.len() >= 1024 {
            return; // a bounded list: the verdict only needs the worst
        }
        self.out.push(Effect {
            kind,
            target: target.into(),
            via,
            fixed,
            span: self.span.clone(),
            privileged: self.privileged,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_follow_the_policy() {
        assert_eq!(place("/"), Place::Root);
        assert_eq!(place("/etc/ssh"), Place::System);
        assert_eq!(place("/home/alice"), Place::Home);
        assert_eq!(place("~/.cache/pip"), Place::HomeDeep);
        assert_eq!(place("/tmp/x"), Place::Tmp);
        assert_eq!(place(".."), Place::ParentTop);
        assert_eq!(place("../*"), Place::ParentTop);
        assert_eq!(place("../x/y"), Place::Parent);
        assert_eq!(place("build"), Place::Tree);
        assert_eq!(place("./~"), Place::Tree);
        assert_eq!(place("/dev/sda"), Place::Device);
    }

    #[test]
    fn secrets_include_globs_but_not_public_keys() {
        assert!(is_secret("~/.ssh/id_*"));
        assert!(is_secret("/etc/shadow"));
        assert!(!is_secret("~/.ssh/id_rsa.pub"));
        assert!(!is_secret(".env.example"));
    }
}
