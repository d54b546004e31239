//! Severity levels and rule categories, with the seed's names and numbers.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How dangerous a command is.
///
/// The numeric values are the seed's and are part of the C ABI: `Critical = 1`,
/// `High = 2`, `Moderate = 3`, `Safe = -1`. A *smaller positive* number is more
/// severe. `Critical` and `High` block; `Moderate` means "a person should
/// confirm"; `Safe` means nothing matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[repr(i32)]
pub enum Level {
    /// Irreversible or host-wide damage (`rm -rf /`, `mkfs`, reverse shells).
    Critical = 1,
    /// High impact; blocked (`sudo su -`, `crontab -r`, secret reads).
    High = 2,
    /// Risky; a person should confirm (`git reset --hard`, `pkill -9`).
    Moderate = 3,
    /// No rule matched.
    Safe = -1,
}

impl Level {
    /// All levels, most severe first.
    pub const ALL: [Level; 4] = [Level::Critical, Level::High, Level::Moderate, Level::Safe];

    /// The seed's lower-case name: `"critical"`, `"high"`, `"moderate"`, `"safe"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Critical => "critical",
            Level::High => "high",
            Level::Moderate => "moderate",
            Level::Safe => "safe",
        }
    }

    /// The seed's numeric value (see the type docs).
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The level for a seed number, if it names one.
    pub const fn from_i32(n: i32) -> Option<Level> {
        match n {
            1 => Some(Level::Critical),
            2 => Some(Level::High),
            3 => Some(Level::Moderate),
            -1 => Some(Level::Safe),
            _ => None,
        }
    }

    /// Whether a verdict at this level stops the command (critical or high).
    pub const fn blocks(self) -> bool {
        matches!(self, Level::Critical | Level::High)
    }

    /// A rank where larger is more severe (Safe 0 .. Critical 3), for comparisons.
    pub const fn severity(self) -> u8 {
        match self {
            Level::Safe => 0,
            Level::Moderate => 1,
            Level::High => 2,
            Level::Critical => 3,
        }
    }

    /// The more severe of two levels.
    pub fn max(self, other: Level) -> Level {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = String;

    /// Parses a level name, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Level::Critical),
            "high" => Ok(Level::High),
            "moderate" => Ok(Level::Moderate),
            "safe" => Ok(Level::Safe),
            other => Err(format!(
                "unknown level {other:?} (expected critical, high, moderate or safe)"
            )),
        }
    }
}

/// What kind of danger a rule guards against: the seed's twelve categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[repr(i32)]
pub enum Category {
    /// Code smuggled into a command: substitutions, decoders into shells, `eval`.
    Injection = 1,
    /// Gaining privileges: root shells, setuid bits, sudoers edits.
    Privilege = 2,
    /// Reverse shells, exfiltration, fetch-then-execute.
    Network = 3,
    /// Surviving a restart: cron, services, shell rc files, authorized keys.
    Persistence = 4,
    /// Reading secrets and credentials.
    Recon = 5,
    /// Escaping containers: privileged runs, host mounts, namespace entry.
    Container = 6,
    /// Loading or removing kernel modules, kernel tunables.
    Kernel = 7,
    /// Recursive or bulk deletion outside the working tree.
    FileDelete = 8,
    /// Host-wide damage: filesystems, devices, power, system files.
    System = 9,
    /// Ownership and mode changes of system paths.
    Permission = 10,
    /// Destructive database statements.
    Database = 11,
    /// Destroying uncommitted work or rewriting published history.
    Git = 12,
}

impl Category {
    /// All twelve categories, in the seed's order.
    pub const ALL: [Category; 12] = [
        Category::Injection,
        Category::Privilege,
        Category::Network,
        Category::Persistence,
        Category::Recon,
        Category::Container,
        Category::Kernel,
        Category::FileDelete,
        Category::System,
        Category::Permission,
        Category::Database,
        Category::Git,
    ];

    /// The seed's category string, e.g. `"file_delete"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Injection => "injection",
            Category::Privilege => "privilege",
            Category::Network => "network",
            Category::Persistence => "persistence",
            Category::Recon => "recon",
            Category::Container => "container",
            Category::Kernel => "kernel",
            Category::FileDelete => "file_delete",
            Category::System => "system",
            Category::Permission => "permission",
            Category::Database => "database",
            Category::Git => "git",
        }
    }

    /// The seed's three fixed suggestions for this category (two for
    /// `permission`, which the seed left out of its map).
    pub fn suggestions(self) -> &'static [&'static str] {
        match self {
            Category::FileDelete => &[
                "Use a path inside the project directory instead of a system or home path",
                "Delete specific files rather than whole directory trees",
                "Move files to a trash directory so the change can be undone",
            ],
            Category::System => &[
                "Operate on files inside the project instead of devices or system files",
                "Ask an administrator to perform host-level changes",
                "Use a disposable VM or container for destructive experiments",
            ],
            Category::Network => &[
                "Download files first and review them before running anything",
                "Do not send credentials or environment variables to remote hosts",
                "Use the project's package manager instead of piping scripts to a shell",
            ],
            Category::Privilege => &[
                "Run the command without elevated privileges",
                "Ask an administrator to grant the specific permission needed",
                "Use a container or VM when root access is really required",
            ],
            Category::Injection => &[
                "Write the command out literally instead of building it at run time",
                "Avoid eval, decoders piped to shells and nested command substitution",
                "Review any downloaded or decoded script before running it",
            ],
            Category::Persistence => &[
                "Do not modify startup files, cron tables or services from an agent",
                "Document the change and let a person apply it",
                "Use project-local scripts instead of shell profile changes",
            ],
            Category::Recon => &[
                "Do not read credentials, keys or other secrets",
                "Use the project's own configuration files instead",
                "Ask the user to provide the specific value that is needed",
            ],
            Category::Container => &[
                "Run containers without --privileged and without host mounts",
                "Mount only the project directory into the container",
                "Avoid entering host namespaces",
            ],
            Category::Kernel => &[
                "Do not load or unload kernel modules from an agent",
                "Do not change kernel parameters at run time",
                "Ask an administrator to perform kernel changes",
            ],
            Category::Database => &[
                "Add a WHERE clause to limit the statement",
                "Back up the data before destructive statements",
                "Run destructive statements against a test database first",
            ],
            Category::Git => &[
                "Commit or stash work before discarding changes",
                "Use --force-with-lease instead of --force",
                "Create a backup branch before rewriting history",
            ],
            Category::Permission => &[
                "Change permissions only on files inside the project",
                "Use the narrowest permission change that works",
            ],
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;

    /// Parses a category string, case-insensitively; `-` is accepted for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Category::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == norm)
            .ok_or_else(|| format!("unknown category {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_keep_the_seed_numbers() {
        assert_eq!(Level::Critical.as_i32(), 1);
        assert_eq!(Level::High.as_i32(), 2);
        assert_eq!(Level::Moderate.as_i32(), 3);
        assert_eq!(Level::Safe.as_i32(), -1);
        for l in Level::ALL {
            assert_eq!(Level::from_i32(l.as_i32()), Some(l));
            assert_eq!(l.as_str().parse::<Level>(), Ok(l));
        }
        assert_eq!(Level::from_i32(0), None);
    }

    #[test]
    fn only_critical_and_high_block() {
        assert!(Level::Critical.blocks());
        assert!(Level::High.blocks());
        assert!(!Level::Moderate.blocks());
        assert!(!Level::Safe.blocks());
    }

    #[test]
    fn max_picks_the_more_severe_level() {
        assert_eq!(Level::Moderate.max(Level::Critical), Level::Critical);
        assert_eq!(Level::High.max(Level::Safe), Level::High);
    }

    #[test]
    fn categories_round_trip_through_their_names() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            assert!(!c.suggestions().is_empty());
        }
        assert_eq!("FILE-DELETE".parse::<Category>(), Ok(Category::FileDelete));
        assert!("develop-tools".parse::<Category>().is_err());
    }
}
