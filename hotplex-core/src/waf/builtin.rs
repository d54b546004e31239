//! The built-in rules.
//!
//! They cover every intent of the seed's 95 rules, judged on canonical texts
//! (see [`Scope`]) instead of raw text, with the seed's broken rules fixed:
//! the classic fork bomb matches, `DELETE`/`UPDATE` are flagged *without*
//! `WHERE`, numeric setuid modes and `mkfs -t` are caught, `dd` operands are
//! found in any order, `--privileged` applies to podman too, and no rule is
//! shadowed (the most severe match wins anyway). The seed's over-broad
//! substring rules (`eval`/`exec`/`su` without word boundaries, every `$(`
//! and backtick, any redirect to an absolute path) are gone: substitutions
//! are parsed and their commands judged instead.
//!
//! Conventions in `Command` patterns: `\s` separates arguments; whitespace
//! inside an argument is `\x1f`. Paths are lexically normalised (`//`, `/./`,
//! `..`) and `~`/`$HOME` spelled `~`.

use super::rule::{Rule, Scope as S};
use crate::verdict::{Category as C, Level as L};

/// An absolute path outside `/tmp` (the root included).
const ABS: &str = r"/(?:[^t\s/]\S*|t[^m\s/]\S*|tm[^p\s/]\S*|tmp[^\s/]\S*)?";
/// A path in the home directory (or the home directory itself).
const HOME: &str = r"~\S*";
/// The home directory itself or one of its top-level entries (`~`, `~/*`,
/// `~/.ssh`, `~/Documents`); deeper paths (`~/.cache/pip`) are less drastic.
const HOME_TOP: &str = r"~(?:/[^/\s]*)?/?";
/// End of an argument.
const E: &str = r"(?:\s|$)";
/// A recursive flag of rm/chmod/chown.
const RF: &str = r"(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)";
/// System directories whose loss breaks the host.
const SYSDIR: &str = r"/(?:etc|usr|bin|sbin|lib|lib32|lib64|boot|var|home|root|opt|srv|sys|proc|dev|run|snap|mnt|media|data)";
/// Files that hold secrets. `.pub` keys, `.env.example` and `/etc/passwd` are not.
///
/// The alternatives that may start anywhere share one leading `\S*`
/// (`\S*(?:A|B)` matches exactly what `\S*A|\S*B` does): written once, it
/// compiles to one loop instead of two dozen, which keeps every rule that
/// embeds this set (ten of them) cheaper to build and to run.
pub(crate) const SECRET: &str = r"(?:~/\.ssh/?|~/\.aws/?|~/\.kube/?|/etc/g?shadow-?|/etc/sudoers|/proc/[^\s/]+/environ|/(?:var/)?run/secrets/\S+|/etc/master\.passwd|/etc/ssl/private\S*|\S*(?:\.ssh/id_[a-z0-9_]+|\.ssh/\S*_key|\.aws/credentials|\.aws/config|\.kube/config|\.netrc|\.pgpass|\.git-credentials|\.docker/config\.json|\.npmrc|\.pypirc|\.gnupg\S*|\.config/gcloud\S*|/?\.env(?:\.local|\.prod|\.production|\.secret|\.staging)?|\.vault-token|\.cargo/credentials(?:\.toml)?|\.config/gh/hosts\.yml|\.config/hub|\.azure/\S+|\.terraform\.d/credentials\S*|\.boto|\.s3cfg|id_(?:rsa|dsa|ecdsa|ed25519)|\.(?:key|p12|pfx|keystore|jks)|credentials\.json|service[-_]account\S*\.json))";
/// Programs that read a file and print or copy it.
const READER: &str = r"(?:cat|tac|less|more|most|head|tail|bat|batcat|nl|view|strings|od|xxd|hexdump|base64|base32|tar|zip|7z|gzip|bzip2|xz|grep|egrep|fgrep|rg|ag|awk|sed|sort|uniq|cut|diff|vim|vi|nvim|nano|emacs|gpg|sha256sum|md5sum|curl|wget|dd|jq|yq|python[0-9.]*|perl|ruby|node)";
/// Programs that copy or move their leading operands to the last one.
const COPIER: &str = r"(?:cp|mv|install|ln|scp|rsync|sftp|ditto)";
/// Programs that send data over the network.
const SINK: &str = r"(?:curl|wget|nc|ncat|netcat|socat|telnet|ssh|scp|sftp|rsync|ftp|tftp|openssl|dig|nslookup|host|http|https|xh|gh|aws|gsutil)";
/// An environment variable that holds a credential (`$GITHUB_TOKEN`).
const SECRET_VAR: &str = r"\$\{?[A-Za-z0-9_]*(?:SECRET|PASSWORD|PASSWD|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY|APIKEY|TOKEN)[A-Za-z0-9_]*\}?";
/// Interpreter code that takes the whole environment.
const ENV_DUMP: &str = r"(?:dict\(os\.environ\)|os\.environ\.copy\(\)|dumps\(\s*(?:dict\()?os\.environ|str\(os\.environ\)|JSON\.stringify\(\s*process\.env\s*\)|%ENV\b|ENV\.to_h|getenv\(\))";
/// Interpreter code that talks to the network.
const NET_CALL: &str = r"(?:requests\.|urllib|urlopen|http\.client|httpx|fetch\(|axios|https?\.(?:request|get|post)|Net::HTTP|LWP|HTTP::Tiny|socket|curl)";
/// Programs that download.
const FETCH: &str = r"(?:curl|wget|fetch|aria2c|http|https|xh|lwp-request|GET)";
/// Programs that decode hidden text.
const DECODE: &str = r"(?:base64|base32|xxd|openssl|gunzip|zcat|bzcat|xzcat|uudecode|rev)";
/// Shells and interpreters that run code read from stdin.
const RUNNER: &str =
    r"(?:(?:ba|z|da|k|a|mk|fi)?sh|python[0-9.]*|perl|ruby|node|nodejs|php|lua|Rscript|osascript)";

/// A built-in rule. Patterns run in ASCII mode (`(?-u)`): `\s`, `\S`, `\w`
/// and `\b` are ASCII classes, `.` matches any byte but `\n`. Canonical
/// texts are UTF-8, and non-ASCII bytes simply count as non-space.
fn r(id: &str, cat: C, level: L, scope: S, pattern: impl Into<String>, desc: &str) -> Rule {
    Rule::new(
        id,
        cat,
        level,
        scope,
        format!("(?-u){}", pattern.into()),
        desc,
    )
}

/// The built-in rules, in evaluation order.
pub(crate) fn rules() -> Vec<Rule> {
    use C::*;
    use L::*;
    use S::{Code, Command as Cmd, Pipeline as Pipe, Redirect as Redir, Script as Text};
    vec![
        // ---------------------------------------------------------- file_delete
        r("file_delete.rm_recursive_outside_tree", FileDelete, Critical, Cmd,
          format!(r"^rm\s(?:\S+\s)*?{RF}\s(?:\S+\s)*?(?:{ABS}|{HOME_TOP}){E}|^rm\s(?:\S+\s)*?(?:{ABS}|{HOME_TOP})\s(?:\S+\s)*?{RF}{E}"),
          "Recursive delete of the root, a system directory, the home directory or a path outside the working tree"),
        r("file_delete.rm_outside_tree", FileDelete, High, Cmd,
          format!(r"^(?:rm|unlink)\s(?:\S+\s)*?(?:{ABS}|{HOME_TOP}){E}"),
          "Deletes files outside the working tree"),
        r("file_delete.rm_in_home", FileDelete, Moderate, Cmd,
          format!(r"^(?:rm|unlink)\s(?:\S+\s)*?{HOME}{E}"),
          "Deletes files in the home directory, outside the working tree"),
        r("file_delete.rm_far_parent", FileDelete, High, Cmd,
          format!(r"^rm\s(?:\S+\s)*?{RF}\s(?:\S+\s)*?\.\./\.\.(?:/\S*)?{E}|^rm\s(?:\S+\s)*?\.\./\.\.(?:/\S*)?\s(?:\S+\s)*?{RF}{E}"),
          "Recursive delete two or more levels above the working tree"),
        r("file_delete.rm_parent", FileDelete, Moderate, Cmd,
          format!(r"^rm\s(?:\S+\s)*?\.\.(?:/\S*)?{E}"),
          "Deletes a path that climbs out of the working tree"),
        r("file_delete.rm_git", Git, High, Cmd,
          format!(r"^rm\s(?:\S+\s)*?{RF}\s(?:\S+\s)*?(?:\S*/)?\.git/?{E}"),
          "Deletes the repository's history (.git)"),
        r("file_delete.rmdir_root", FileDelete, Critical, Cmd,
          format!(r"^rmdir\s(?:\S+\s)*?(?:/|{SYSDIR}/?){E}"),
          "Removes a system directory"),
        r("file_delete.find_delete", FileDelete, Critical, Cmd,
          format!(r"^find\s(?:-[HLP]\s)*(?:\S+\s)*?(?:{ABS}|{HOME})\s(?:\S+\s)*?(?:-delete|-exec\srm|-execdir\srm){E}"),
          "Bulk delete with find outside the working tree"),
        r("file_delete.shred", FileDelete, Critical, Cmd,
          format!(r"^(?:shred|srm|wipe)\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Irrecoverably overwrites files outside the working tree"),
        r("file_delete.shred_any", FileDelete, Moderate, Cmd, r"^(?:shred|srm|wipe)\s",
          "Irrecoverably overwrites files"),
        r("file_delete.rsync_delete", FileDelete, Critical, Cmd,
          format!(r"^rsync\s(?:\S+\s)*?--del\S*\s(?:\S+\s)*(?:{ABS}|{HOME})$"),
          "rsync --delete into a directory outside the working tree"),
        r("file_delete.windows_del", FileDelete, High, Cmd, r"^(?:del|erase|rd|rmdir)\s(?:\S+\s)*?/[sSqQ]\b.*\s(?:[a-zA-Z]:|%|\\)",
          "Windows recursive/quiet delete"),
        r("file_delete.truncate_system", FileDelete, High, Cmd,
          format!(r"^truncate\s(?:\S+\s)*?(?:-s\s?0|--size[=\s]0)\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Empties a file outside the working tree"),
        r("file_delete.truncate", System, Moderate, Cmd, r"^truncate\s(?:\S+\s)*?(?:-s\s?0|--size[=\s]0)(?:\s|$)",
          "Empties a file"),
        r("file_delete.overwrite_outside_tree", FileDelete, High, Redir,
          r"^(?:>|>\||&>) (?:~\S*|/(?:[^td\s/]\S*|t[^m\s/]\S*|tm[^p\s/]\S*|d[^e\s/]\S*|de[^v\s/]\S*)?)$",
          "Overwrites a file outside the working tree"),
        r("file_delete.copy_empty_over", FileDelete, High, Cmd,
          format!(r"^(?:cp|mv|install|cat|dd)\s(?:\S+\s)*?(?:if=)?/dev/(?:null|zero|u?random)\s(?:\S+\s)*?(?:of=)?(?:{ABS}|{HOME})$"),
          "Overwrites a file outside the working tree with nothing"),
        r("file_delete.copy_into_home", System, Moderate, Cmd, r"^(?:cp|mv|install|rsync)\s(?:\S+\s)+~(?:/\S*)?$",
          "Writes into the home directory, outside the working tree"),
        r("file_delete.mv_to_null", FileDelete, High, Cmd, r"^mv\s.*\s/dev/null$",
          "Moves files into /dev/null"),
        // --------------------------------------------------------------- system
        r("system.mkfs", System, Critical, Cmd, r"^(?:mkfs(?:\.\S+)?|mke2fs|mkswap|mkntfs|mkdosfs|newfs\S*|mformat)\s(?:\S+\s)*?/dev/",
          "Creates a filesystem on a device, destroying what it held"),
        r("system.mkfs_image", System, Moderate, Cmd, r"^(?:mkfs(?:\.\S+)?|mke2fs|mkswap|mkntfs|mkdosfs|newfs\S*|mformat)(?:\s|$)",
          "Creates a filesystem"),
        r("system.wipe_device", System, Critical, Cmd, r"^(?:wipefs\s(?:\S+\s)*?(?:-[a-zA-Z]*[ao]\S*|--all|--offset\S*)|blkdiscard\s(?:\S+\s)*?/dev/\S+|sgdisk\s(?:\S+\s)*?(?:-Z|-o|--zap\S*)|cryptsetup\s(?:\S+\s)*?(?:luksFormat|erase))(?:\s|$)",
          "Wipes a disk's signatures or contents"),
        r("system.partition", System, Moderate, Cmd, r"^(?:fdisk|sfdisk|cfdisk|parted|gdisk)\s(?:\S+\s)*?/dev/",
          "Edits a partition table"),
        r("system.dd_to_device", System, Critical, Cmd, r"^dd\s(?:\S+\s)*?of=/dev/(?:[^n\s]|n[^u\s]|nu[^l\s])\S*",
          "dd writes straight onto a device"),
        r("system.dd_from_random", System, Critical, Cmd, r"^dd\s(?:\S+\s)*?if=/dev/(?:zero|random|urandom)\s(?:\S+\s)*?of=(?:/(?:[^tn]|n[^u])\S*|~\S*)",
          "dd overwrites a system file with zeros or random data"),
        r("system.write_device", System, Critical, Redir, r"^(?:>|>>|>\||&>|&>>|>&|<>) /dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk|mapper/|dm-|md\d|loop|nbd|mem|kmem|port|fb)",
          "Writes straight onto a device"),
        r("system.sysrq", System, Critical, Redir, r"^(?:>|>>|>\||&>) /proc/sysrq-trigger",
          "Triggers a kernel SysRq action (crash, reboot)"),
        r("system.overwrite_system_file", System, Critical, Redir,
          r"^(?:>|>\||&>) (?:/etc/\S+|/usr/\S+|/bin/\S+|/sbin/\S+|/lib\S*/\S+|/boot/\S*|/var/lib/\S+|/root/\S*)",
          "Overwrites a system file"),
        r("system.append_system_file", System, High, Redir,
          r"^(?:>>|&>>) (?:/etc/\S+|/usr/\S+|/bin/\S+|/sbin/\S+|/lib\S*/\S+|/boot/\S*)",
          "Appends to a system file"),
        r("system.write_system_file", System, High, Cmd,
          r"^(?:tee|cp|mv|install|ln|rsync|dd|sed\s(?:\S+\s)*?-i\S*)\s(?:\S+\s)*?(?:of=)?/(?:etc|usr|bin|sbin|boot|lib\S*)/\S*$",
          "Writes into a system directory"),
        r("system.move_system_dir", System, Critical, Cmd,
          format!(r"^(?:mv|rename)\s(?:-\S+\s)*(?:/|{SYSDIR}/?|~/?)\s"),
          "Moves a system directory or the home directory away"),
        r("system.windows_format", System, Critical, Cmd, r"^format(?:\.com|\.exe)?\s(?:\S+\s)*?[a-zA-Z]:",
          "Formats a Windows drive"),
        r("system.fork_bomb", System, Critical, Text, r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:\s*&?[^}]*\}\s*;?\s*:",
          "Fork bomb"),
        r("system.fork_bomb_named", System, Critical, Text, r"\b([A-Za-z_]\w*)\s*\(\s*\)\s*\{\s*[A-Za-z_]\w*\s*\|\s*[A-Za-z_]\w*\s*&\s*;?\s*\}\s*;\s*[A-Za-z_]\w*",
          "Fork bomb (named function)"),
        r("system.kill_all", System, Critical, Cmd, r"^(?:kill|pkill)\s(?:-\S+\s|-s\s\S+\s|-n\s\S+\s)*-1(?:\s|$)|^kill\s(?:-\S+\s)*1$",
          "Kills every process (or init)"),
        r("system.kill_force", System, Moderate, Cmd, r"^(?:pkill|killall)\s(?:\S+\s)*?-(?:9|KILL|SIGKILL|s\s(?:9|KILL))(?:\s|$)",
          "Force-kills processes by name"),
        r("system.power", System, Critical, Cmd, r"^(?:shutdown|reboot|poweroff|halt|kexec)(?:\s|$)|^init\s[06](?:\s|$)|^telinit\s[06]|^systemctl\s(?:\S+\s)*?(?:reboot|poweroff|halt|kexec|emergency|rescue)(?:\s|$)",
          "Shuts down or reboots the host"),
        r("system.disable_service", System, Moderate, Cmd, r"^systemctl\s(?:-\S+\s)*(?:disable|mask|stop)\s|^service\s\S+\sstop(?:\s|$)",
          "Stops or disables a system service"),
        r("system.firewall_change", System, Moderate, Cmd, r"^(?:iptables|ip6tables|nft|ufw|firewall-cmd)\s(?:\S+\s)*?(?:-A|-I|-D|-P|--append|--insert|--delete|--policy|deny|reject|delete|add|--remove\S*|--add\S*)(?:\s|$)",
          "Changes the host firewall"),
        r("system.kill_pid_force", System, Moderate, Cmd, r"^kill\s(?:\S+\s)*?-(?:9|KILL|SIGKILL|s\s(?:9|KILL))(?:\s|$)",
          "Force-kills processes"),
        r("system.infra_destroy", System, High, Cmd,
          r"^(?:terraform|tofu|terragrunt)\s(?:\S+\s)*?(?:destroy(?:\s|$)|apply\s(?:\S+\s)*?-destroy)|^(?:pulumi\sdestroy|cdk\sdestroy|sam\sdelete|serverless\sremove|sls\sremove)(?:\s|$)|^aws\s(?:\S+\s)*?(?:s3\s(?:rm\s(?:\S+\s)*?--recursive|rb\s)|ec2\sterminate-instances|rds\sdelete-db|dynamodb\sdelete-table|cloudformation\sdelete-stack|eks\sdelete-cluster|iam\sdelete-)|^gcloud\s(?:\S+\s)*?(?:delete|destroy)(?:\s|$)|^az\s(?:\S+\s)*?(?:delete|purge)(?:\s|$)|^kubectl\s(?:\S+\s)*?delete\s(?:\S+\s)*?(?:ns|namespace|namespaces|pv|pvc|node|nodes|crd|deployment|deploy|statefulset|sts)\b|^kubectl\s(?:\S+\s)*?delete\s(?:\S+\s)*?--all(?:\s|$)",
          "Destroys cloud or cluster infrastructure"),
        r("system.infra_reduce", System, Moderate, Cmd,
          r"^helm\s(?:uninstall|delete)\s|^kubectl\s(?:\S+\s)*?scale\s(?:\S+\s)*?--replicas[=\s]0(?:\s|$)|^docker\s(?:\S+\s)*?(?:system|volume|image|container|network|builder)\sprune(?:\s|$)|^docker\s(?:volume\srm|rm\s(?:\S+\s)*?-\S*f)|^docker[\s-]compose\s(?:\S+\s)*?down\s(?:\S+\s)*?(?:-v|--volumes|--rmi)(?:\s|$)",
          "Removes containers, volumes or deployments"),
        r("system.userdel", System, High, Cmd, r"^(?:userdel|deluser|groupdel)\s",
          "Deletes a user account"),
        r("system.remove_essential_package", System, Critical, Cmd,
          r"^(?:apt-get|apt|aptitude|dnf|yum|zypper|pacman|apk|rpm|dpkg)\s(?:\S+\s)*?(?:remove|purge|autoremove|erase|-R\S*|-e|--remove|--purge|del)\s(?:\S+\s)*?(?:libc6|libc-bin|glibc|systemd|bash|coreutils|dpkg|apt|rpm|sudo|openssh-server|login|passwd|util-linux|base-files|init|linux-image\S*|kernel\S*|\S*essential\S*|grub\S*|python3)(?:\s|$)",
          "Removes a package the system cannot run without"),
        r("system.force_package_removal", System, High, Cmd, r"^(?:dpkg\s(?:\S+\s)*?(?:--remove|--purge|-r|-P)\s(?:\S+\s)*?--force\S*|dpkg\s(?:\S+\s)*?--force-\S+\s(?:\S+\s)*?(?:--remove|--purge|-r|-P)|rpm\s(?:\S+\s)*?-e\s(?:\S+\s)*?--nodeps)",
          "Forces package removal past dependency checks"),
        r("system.iptables_flush", System, High, Cmd, r"^(?:iptables|ip6tables|nft)\s(?:\S+\s)*?(?:-F|--flush|flush\sruleset)(?:\s|$)|^ufw\sdisable",
          "Drops the host firewall"),
        // ----------------------------------------------------------- permission
        r("permission.recursive_system", Permission, Critical, Cmd,
          format!(r"^(?:chmod|chown|chgrp|setfacl)\s(?:\S+\s)*?{RF}\s(?:\S+\s)*?(?:{ABS}|~/?){E}"),
          "Recursive ownership or mode change of a system or home path"),
        r("permission.chmod_000", Permission, Critical, Cmd,
          format!(r"^chmod\s(?:-\S+\s)*0*000\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Removes all access to a system path"),
        r("permission.chmod_000_any", Permission, High, Cmd, r"^chmod\s(?:-\S+\s)*(?:-R\s)?0*000\s",
          "Removes all access"),
        r("permission.world_writable_system", Permission, High, Cmd,
          format!(r"^chmod\s(?:-\S+\s)*0*[0-7]?777\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Makes a system path world-writable"),
        r("permission.acl_system", Permission, High, Cmd,
          format!(r"^setfacl\s(?:\S+\s)*?(?:/(?:etc|usr|bin|sbin|boot|root|var/lib)\S*|{SECRET}){E}"),
          "Changes access control on a system file or a secret"),
        r("permission.chattr_system", Permission, High, Cmd,
          format!(r"^chattr\s(?:\S+\s)*?[-+=][aiAcdsSu]+\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Changes file attributes (immutable, append-only) outside the working tree"),
        r("permission.world_writable", Permission, Moderate, Cmd, r"^chmod\s(?:-\S+\s)*(?:0?[0-7]?777|a\+rwx|o\+w)\s",
          "Makes files world-writable"),
        r("permission.chown_root", Permission, High, Cmd,
          format!(r"^chown\s(?:-\S+\s)*root(?::\S*)?\s(?:\S+\s)*?(?:{ABS}|{HOME}){E}"),
          "Gives a system path to root"),
        // ------------------------------------------------------------ privilege
        r("privilege.root_shell", Privilege, Critical, Cmd,
          r"^(?:sudo|doas|run0)\s(?:-\S+\s(?:\S+\s)?)*?(?:\S*/)?(?:su|bash|sh|zsh|dash|fish|ksh|tcsh|csh)(?:\s-\S*)*$|^su(?:\s-|\s-l|\s--login|\sroot|\s-\sroot)*$",
          "Opens a root shell"),
        r("privilege.root_login_shell", Privilege, Critical, Cmd,
          r"^(?:sudo|doas|run0)(?:\s(?:-[ugCDhprtTU]\s\S+|--\S+|-[a-zA-Z]+))*\s-[a-zA-Z]*[is][a-zA-Z]*(?:\s(?:-[ugCDhprtTU]\s\S+|--\S+|-[a-zA-Z]+))*$",
          "Opens a root shell"),
        r("privilege.pkexec", Privilege, Critical, Cmd, r"^pkexec(?:\s|$)",
          "Runs a program as root through polkit"),
        r("privilege.setuid", Privilege, Critical, Cmd,
          r"^chmod\s(?:-\S+\s)*(?:[ugoa]*[+=][rwxXt]*s[rwxXt]*|0?[2467][0-7]{3})(?:,\S+)?\s",
          "Sets the setuid or setgid bit"),
        r("privilege.setuid_install", Privilege, Critical, Cmd, r"^install\s(?:\S+\s)*?(?:-m\s?|--mode[=\s])(?:0?[2467][0-7]{3}|[ugoa]*[+=]\S*s)\s",
          "Installs a file with the setuid or setgid bit"),
        r("privilege.setcap", Privilege, Critical, Cmd, r"^setcap\s",
          "Grants file capabilities"),
        r("privilege.sudoers_write", Privilege, Critical, Redir, r"^(?:>|>>|>\||&>|&>>) /etc/sudoers",
          "Edits sudoers"),
        r("privilege.sudoers_edit", Privilege, Critical, Cmd, r"^(?:tee|cp|mv|install|ln|sed|visudo)\s(?:\S+\s)*?/etc/sudoers|^visudo(?:\s|$)",
          "Edits sudoers"),
        r("privilege.group_grant", Privilege, Critical, Cmd,
          r"^(?:usermod\s(?:\S+\s)*?-[a-zA-Z]*G|gpasswd\s(?:\S+\s)*?-a\s\S+|adduser\s\S+|addgroup\s\S+)\s?(?:\S+\s)*?(?:sudo|wheel|root|admin|adm|docker|lxd|disk|shadow)(?:\s|$)",
          "Adds a user to a privileged group"),
        r("privilege.passwd_root", Privilege, Critical, Cmd, r"^(?:passwd|chpasswd)\s(?:\S+\s)*?root(?:\s|$)|^(?:useradd|usermod)\s(?:\S+\s)*?-(?:o|u\s0)\s",
          "Changes root's password or creates a uid-0 user"),
        r("privilege.sudo", Privilege, Moderate, Cmd, r"^(?:sudo|doas|run0|su)\s",
          "Runs a command with elevated privileges"),
        // ------------------------------------------------------------ injection
        r("injection.fetch_pipe_shell", Injection, Critical, Pipe,
          format!(r"(?:^|\x1e )(?:curl|wget|fetch|aria2c|http|https|xh|lwp-request|GET)\s[^\x1e]*(?:\x1e [^\x1e]*)*\x1e {RUNNER}(?:\s-\S*)*(?:\s--(?:\s[^\s\x1e]+)*)?\s?(?:\x1e|$)"),
          "Downloads code and pipes it straight into a shell or interpreter"),
        r("injection.decode_pipe_shell", Injection, Critical, Pipe,
          format!(r"(?:^|\x1e )(?:base64\s(?:\S+\s)*?(?:-d\S*|--decode|-D)|base32\s(?:\S+\s)*?(?:-d|--decode)|xxd\s(?:\S+\s)*?-r|openssl\s(?:\S+\s)*?-d|(?:gzip|bzip2|xz|zstd)\s(?:\S+\s)*?-d\S*|gunzip|zcat|bzcat|xzcat|uudecode|rev|tr\s|printf\s\S*\\(?:x[0-9a-fA-F]|[0-7]{{3}})|echo\s-\S*e\S*\s\S*\\x)[^\x1e]*(?:\x1e [^\x1e]*)*\x1e {RUNNER}(?:\s-\S*)*\s?(?:\x1e|$)"),
          "Decodes hidden code and pipes it into a shell"),
        r("injection.procsub_fetch", Injection, Critical, Cmd,
          format!(r"^(?:{RUNNER}|source|\.)\s(?:\S+\s)*?<\((?:curl|wget|fetch|http|https|xh)\)"),
          "Runs downloaded code through process substitution"),
        r("injection.subst_fetch", Injection, Critical, Cmd,
          format!(r"^(?:(?:eval|{RUNNER}|source|\.)\s(?:\S+\s)*?\S*|\S*)\$\((?:{FETCH}|{DECODE})\)"),
          "Runs downloaded or decoded text as code"),
        r("injection.code_fetch", Injection, Critical, Code, format!(r"^\S+\s\$\((?:{FETCH}|{DECODE})\)"),
          "Runs downloaded or decoded text as interpreter code"),
        r("injection.download_chmod_exec", Injection, High, Text,
          r"(?s)\b(?:curl|wget)\s.*\bchmod\s+(?:[ugoa]*\+[rw]*x|0?[0-7]?[1357][0-7]{0,2})\s+\S+.*(?:&&|;|\n|\|\|)\s*(?:sudo\s+)?(?:\./|/|~/)\S",
          "Downloads a program, makes it executable and runs it"),
        r("injection.eval_subst", Injection, Moderate, Cmd, r"^eval\s(?:\S+\s)*?\S*\$\(",
          "eval of a command substitution"),
        r("injection.preload", Injection, High, Cmd, r"^(?:LD_PRELOAD|LD_AUDIT|DYLD_INSERT_LIBRARIES)=\S",
          "Injects a library into every program it runs"),
        r("injection.hex_dump", Injection, Moderate, Cmd, r"^od\s(?:\S+\s)*?-A\s?n\s(?:\S+\s)*?-t\s?x1",
          "Hex dump often used to smuggle data"),
        r("injection.sed_exec", Injection, High, Code, r"^sed\s(?:.*[;\n}\s])?(?:\d+|\$|/[^/]*/)?e(?:\s|$)",
          "sed script runs a shell command (e)"),
        r("file_delete.interpreter_delete", FileDelete, Critical, Code,
          r#"(?:rmtree|rmSync|rmdirSync|remove_dir_all|rm_rf|rm_r|rimraf|removedirs|emptyDirSync|removeSync|deleteRecursively|remove_tree|rmdir)\s*\(\s*['"](?:/(?:[^t'"][^'"]*|t[^m'"][^'"]*)?|~[^'"]*)['"]"#,
          "Interpreter code deletes the root, a system directory or the home directory"),
        r("injection.interpreter_exec_remote", Injection, Critical, Code,
          r"(?s)\b(?:exec|eval|Function)\s*\(?.*(?:urlopen|urllib\.request|requests\.get|http\.get|https\.get|fetch\(|LWP::Simple|get\(\s*['\x22]https?:|Net::HTTP|open-uri|URI\.open)",
          "Interpreter code runs code it downloads"),
        r("injection.interpreter_exec_decoded", Injection, Critical, Code,
          r"(?s)\b(?:exec|eval|Function|compile)\s*\(?\s*(?:[\w.]+\()?[^;]*(?:b64decode|decode_base64|base64\.decode|Base64\.decode64|unpack\(\s*['\x22]m|from\(\s*['\x22][^'\x22]*['\x22]\s*,\s*['\x22]base64|atob\(|unhexlify|bytes\.fromhex|codecs\.decode|zlib\.decompress|marshal\.loads|rot13)",
          "Interpreter code runs code it decodes"),
        r("injection.interpreter_shell", Injection, Moderate, Code, r"^\S+\s.*\b(?:os\.system|subprocess|child_process|popen|system\s*\(|exec\s*\(|spawn|shell_exec|passthru|`)",
          "Interpreter code runs shell commands"),
        r("injection.git_hooks_path", Injection, Moderate, Cmd, r"^git\s(?:config\s(?:\S+\s)*?)?(?:core\.hooks[pP]ath|core\.fsmonitor|core\.sshCommand|credential\.helper\s!)",
          "Points git at another hooks directory")
            // A hooks directory inside the repository is project setup
            // (`.githooks`, `.husky`); global ones are judged as effects.
            .unless(r"(?-u)core\.hooks[pP]ath[\s=](?:\.[^./\s]|[^/~.\s$])[^\s]*$"),
        // -------------------------------------------------------------- network
        r("network.dev_tcp", Network, Critical, Redir, r"^(?:>|>>|>&|&>|<|<>|<&) /dev/(?:tcp|udp)/",
          "Opens a raw network connection (/dev/tcp): reverse shell or exfiltration"),
        r("network.nc_exec", Network, Critical, Cmd, r"^(?:nc|ncat|netcat|nc\.traditional|nc\.openbsd)\s(?:\S+\s)*?(?:-[a-zA-Z]*[ec]|--exec|--sh-exec|--lua-exec)(?:\s|=|$)",
          "netcat runs a shell for a remote peer"),
        r("network.socat_exec", Network, Critical, Cmd, r"^socat\s(?:\S+\s)*?(?i:exec|system):",
          "socat runs a shell for a remote peer"),
        r("network.shell_to_socket", Network, Critical, Pipe,
          r"(?:^|\x1e )(?:ba|z|da|k)?sh\s(?:\S+\s)*?-[a-zA-Z]*i[^\x1e]*\x1e (?:[^\x1e]*\x1e )*(?:nc|ncat|netcat|telnet|socat|openssl)\s",
          "Interactive shell piped to a network connection (reverse shell)"),
        r("network.interpreter_reverse_shell", Network, Critical, Code,
          r"(?s)^\S+\s.*(?:socket|fsockopen|TCPSocket|IO::Socket|net\.Socket|net\.connect|Net::|/dev/tcp).*(?:dup2|exec|spawn|pty|/bin/(?:ba)?sh|sh\s*<&|popen|system|subprocess)",
          "Interpreter opens a socket and attaches a shell (reverse shell)"),
        r("network.metasploit", Network, Critical, Cmd, r"^(?:msfconsole|msfvenom|msfdb)(?:\s|$)",
          "Metasploit"),
        r("network.secret_to_network", Network, Critical, Pipe,
          format!(r"(?:^|\x1e )(?:\S+\s)*?{SECRET}(?:\s[^\x1e]*)?(?:\x1e [^\x1e]*)*?\x1e {SINK}\s"),
          "Sends a secret to the network"),
        r("network.env_to_network", Network, Critical, Pipe,
          format!(r"(?:^|\x1e )(?:env|printenv|set|export\s-p|declare\s-x)(?:\s[^\x1e]*)?(?:\x1e [^\x1e]*)*?\x1e {SINK}\s"),
          "Sends the environment to the network"),
        r("network.upload_secret", Network, Critical, Cmd,
          format!(r"^(?:curl|wget|http|https|xh)\s(?:\S+\s)*?(?:-T\s?|--upload-file[=\s]|-F\s?|--form[=\s]|-d\s?|--data\S*[=\s]|--post-file[=\s]|--body-file[=\s])\S*?@?{SECRET}{E}"),
          "Uploads a secret"),
        r("network.copy_secret_remote", Network, Critical, Cmd,
          format!(r"^(?:scp|rsync|sftp)\s(?:\S+\s)*?{SECRET}\s(?:\S+\s)*?\S+:"),
          "Copies a secret to a remote host"),
        r("network.gist_secret", Network, Critical, Cmd,
          format!(r"^gh\sgist\s(?:create|new|edit)\s(?:\S+\s)*?{SECRET}{E}"),
          "Publishes a secret as a gist"),
        r("network.secret_env_upload", Network, Critical, Cmd,
          format!(r"^(?:{SINK})\s(?:\S+\s)*?(?:(?:-d|--data\S*|-F|--form\S*|-T|--upload-file|--post-data|--body-data|--post-file|-e)\s?\S*{SECRET_VAR}|\S*://\S*{SECRET_VAR}|\S*\$\{{?(?:AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|[A-Z0-9_]*PRIVATE_KEY)\b)"),
          "Sends a secret from the environment to the network"),
        r("network.secret_env_header", Network, Moderate, Cmd,
          format!(r"^(?:{SINK})\s(?:\S+\s)*?\S*{SECRET_VAR}"),
          "Sends a credential from the environment to a remote host"),
        r("network.interpreter_env_exfil", Network, Critical, Code,
          format!(r"(?s){ENV_DUMP}.*{NET_CALL}|{NET_CALL}.*{ENV_DUMP}"),
          "Interpreter code sends the environment to the network"),
        r("network.cloud_copy_secret", Network, Critical, Cmd,
          format!(r"^(?:aws\s(?:\S+\s)*?s3\s(?:cp|mv|sync)|gsutil\s(?:\S+\s)*?(?:cp|mv|rsync)|rclone\s(?:copy|sync|move|copyto)|az\sstorage\sblob\supload|gcloud\sstorage\scp|s3cmd\s(?:put|sync))\s(?:\S+\s)*?{SECRET}{E}"),
          "Uploads a secret to cloud storage"),
        r("network.push_new_remote", Git, Moderate, Text, r"(?s)\bgit\s+remote\s+add\s+\S+\s+\S+.*\bgit\s+push\b",
          "Pushes the repository to a newly added remote"),
        r("network.untrusted_package", Network, Moderate, Cmd,
          r"^(?:pip[0-9.]*|uv\spip|pipx)\sinstall\s(?:\S+\s)*?(?:(?:-i|--index-url|--extra-index-url)[=\s]?http://|git\+|https?://)|^(?:npm|pnpm|yarn|bun)\s(?:install|i|add)\s(?:\S+\s)*?(?:https?://|git\+|github:)",
          "Installs a package from an unvetted source"),
        r("network.copy_to_remote_system", Network, Moderate, Cmd,
          r"^(?:scp|rsync)\s(?:\S+\s)+\S+:(?:/|/(?:etc|usr|bin|sbin|boot|root|lib\S*)(?:/\S*)?)$",
          "Copies files into a remote host's system directories"),
        r("network.remote_exec", Network, Moderate, Cmd, r"^ssh\s(?:\S+\s)*?\S+\s\S+",
          "Runs a command on a remote host"),
        r("network.run_unpinned_package", Network, Moderate, Cmd, r"^(?:npx|bunx|pnpx|uvx|pipx\srun|pnpm\sdlx|yarn\sdlx)\s",
          "Downloads and runs a package"),
        r("network.download_then_run", Network, Moderate, Text,
          r"\b(?:curl|wget)\s[^\n]*(?:&&|;|\n|\|\|)\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\s+(?:-\S+\s+)*\S*\.(?:sh|bash|run)\b|\b(?:curl|wget)\s[^\n]*(?:\s-o|\s-O|--output\S*|\s>)\s*\S+[^\n]*(?:&&|;|\n)\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\s+\S",
          "Downloads a script and runs it"),
        // ---------------------------------------------------------------- recon
        r("recon.read_secret", Recon, High, Cmd,
          format!(r"^{READER}\s(?:\S+\s)*?{SECRET}{E}"),
          "Reads a credential, private key or secrets file"),
        r("recon.copy_secret", Recon, High, Cmd,
          format!(r"^{COPIER}\s(?:\S+\s)*?{SECRET}\s\S"),
          "Copies a credential, private key or secrets file"),
        r("recon.read_secret_redirect", Recon, High, Redir, format!(r"^(?:<|<>) {SECRET}$"),
          "Reads a credential, private key or secrets file"),
        r("recon.find_secret_exec", Recon, High, Cmd,
          format!(r"^find\s(?:\S+\s)*?-i?(?:name|path|regex|wholename)\s\S*(?:id_rsa|id_dsa|id_ecdsa|id_ed25519|\.pem|\.key|credentials|\.env|shadow|\.netrc|\.pgpass|kube)\S*\s(?:\S+\s)*?-(?:exec|execdir|ok)\s{READER}\s"),
          "Finds key or credential files and prints them"),
        r("recon.passwd", Recon, Moderate, Cmd, r"^\S+\s(?:\S+\s)*?/etc/passwd$",
          "Reads the user list"),
        r("recon.authorized_keys", Recon, Moderate, Cmd, r"^\S+\s(?:\S+\s)*?\S*\.ssh/authorized_keys2?$",
          "Reads SSH authorized keys"),
        r("recon.env_secret_grep", Recon, Moderate, Pipe,
          r"(?:^|\x1e )(?:env|printenv|set|export\s-p|declare\s-x)(?:\s[^\x1e]*)?\x1e (?:grep|egrep|rg|awk|sed)\s[^\x1e]*(?i:pass|secret|token|api.?key|credential)",
          "Looks for credentials in the environment"),
        r("recon.printenv", Recon, Moderate, Cmd, r"^(?:printenv|env|export\s-p|declare\s-x)$",
          "Dumps every environment variable"),
        // ---------------------------------------------------------- persistence
        r("persistence.crontab", Persistence, High, Cmd, r"^crontab\s(?:-u\s\S+\s)?(?:-[er]|-|[^-\s]\S*)(?:\s|$)",
          "Replaces, edits or removes the crontab"),
        r("persistence.service_enable", Persistence, High, Cmd, r"^systemctl\s(?:-\S+\s)*(?:enable|link|preset|set-default)\s|^(?:update-rc\.d|chkconfig)\s\S+\s(?:defaults|enable|on)|^launchctl\s(?:\S+\s)*?(?:load|bootstrap|enable|submit)\s",
          "Installs a service that starts on boot"),
        r("persistence.shell_rc", Persistence, High, Redir, r"^(?:>|>>|>\||&>|&>>) ~/\.(?:bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|cshrc|tcshrc|kshrc|config/fish/\S+|xinitrc|xprofile)$",
          "Modifies a shell startup file"),
        r("persistence.shell_rc_tool", Persistence, High, Cmd, r"^(?:tee|cp|mv|install|ln|sed\s(?:\S+\s)*?-i\S*)\s(?:\S+\s)*?~/\.(?:bashrc|bash_profile|bash_login|profile|zshrc|zprofile|zshenv|zlogin|config/fish/\S+)$",
          "Modifies a shell startup file"),
        r("persistence.authorized_keys", Persistence, Critical, Redir, r"^(?:>|>>|>\||&>|&>>) \S*\.ssh/authorized_keys2?$",
          "Adds an SSH key that grants login"),
        r("persistence.authorized_keys_tool", Persistence, Critical, Cmd, r"^(?:tee|cp|mv|install|ln|ssh-copy-id)\s(?:\S+\s)*?\S*\.ssh/authorized_keys2?$",
          "Adds an SSH key that grants login"),
        r("persistence.system_startup", Persistence, High, Cmd,
          r"^(?:tee|cp|mv|install|ln|rsync|sed\s(?:\S+\s)*?-i\S*)\s(?:\S+\s)*?/(?:etc/(?:init\.d|rc\.local|rc\d\.d|systemd|cron\S*|anacrontab|profile|profile\.d|bash\.bashrc|environment|ld\.so\.preload|xdg/autostart|update-motd\.d)|lib/systemd|usr/lib/systemd|var/spool/cron)\S*|^\S+\s(?:\S+\s)*?~/\.config/(?:autostart|systemd)\S*$|^\S+\s(?:\S+\s)*?~/Library/LaunchAgents\S*$",
          "Installs something that runs at boot or login"),
        r("persistence.system_startup_redirect", Persistence, High, Redir,
          r"^(?:>|>>|>\||&>|&>>) (?:/etc/(?:init\.d|rc\.local|rc\d\.d|systemd|cron\S*|profile|profile\.d|bash\.bashrc|environment|ld\.so\.preload)|~/\.config/(?:autostart|systemd)|/var/spool/cron)\S*",
          "Installs something that runs at boot or login"),
        r("persistence.at_job", Persistence, Moderate, Cmd, r"^(?:at|batch)(?:\s|$)",
          "Schedules a command to run later")
            .unless(r"(?-u)^at\s-[lrdc]"),
        r("persistence.linger", Persistence, Moderate, Cmd, r"^loginctl\s(?:\S+\s)*?enable-linger",
          "Keeps the user's services running after logout"),
        r("persistence.git_hook", Persistence, Moderate, Cmd, r"^(?:tee|cp|mv|install|ln|chmod)\s(?:\S+\s)*?\S*\.git/hooks(?:/\S*)?(?:\s|$)",
          "Installs a git hook that runs on every commit"),
        r("persistence.git_hook_redirect", Persistence, Moderate, Redir, r"^(?:>|>>|>\||&>|&>>) \S*\.git/hooks/\S+",
          "Installs a git hook that runs on every commit"),
        // ------------------------------------------------------------ container
        r("container.privileged", Container, Critical, Cmd, r"^(?:docker|podman|nerdctl|ctr|crictl)\s(?:\S+\s)*?(?:run|create|exec)\s(?:\S+\s)*?--privileged(?:=true)?(?:\s|$)",
          "Runs a privileged container (full host access)"),
        r("container.host_root_mount", Container, Critical, Cmd,
          format!(r"^(?:docker|podman|nerdctl)\s(?:\S+\s)*?(?:run|create)\s(?:\S+\s)*?(?:(?:-v|--volume)[=\s]?(?:/|/(?:etc|root|proc|sys|dev|boot|usr|bin|sbin|lib|lib64|run|var/run|var/lib|home)(?:/[^:\s]*)?|~|~/\.(?:ssh|aws|kube|gnupg|docker|config/gcloud)(?:/[^:\s]*)?)/?:|--mount[=\s]\S*(?:src|source)=(?:/|{SYSDIR}|~|/var/run/docker\.sock)/?(?:,|$|\s))"),
          "Mounts the host's root, a system directory or the Docker socket into a container"),
        r("container.host_namespaces", Container, Critical, Cmd, r"^(?:docker|podman|nerdctl)\s(?:\S+\s)*?(?:run|create)\s(?:\S+\s)*?(?:--pid[=\s]host|--userns[=\s]host|--cap-add[=\s](?:ALL|SYS_ADMIN|SYS_MODULE|SYS_PTRACE)|--security-opt[=\s](?:apparmor|seccomp|label)[=:](?:unconfined|disable))",
          "Gives a container the host's namespaces or kernel capabilities"),
        r("container.host_device", Container, Critical, Cmd, r"^(?:docker|podman|nerdctl)\s(?:\S+\s)*?(?:run|create)\s(?:\S+\s)*?--device[=\s]/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|mem|kmem|disk|mapper)",
          "Gives a container a host disk or memory device"),
        r("container.host_network", Container, High, Cmd, r"^(?:docker|podman|nerdctl)\s(?:\S+\s)*?(?:run|create)\s(?:\S+\s)*?(?:--net|--network|--ipc|--uts)[=\s]host(?:\s|$)",
          "Gives a container the host's network"),
        r("container.host_mount", Container, Moderate, Cmd, r"^(?:docker|podman|nerdctl)\s(?:\S+\s)*?(?:run|create)\s(?:\S+\s)*?(?:-v|--volume)[=\s]?(?:/|~)\S*:",
          "Mounts a host directory into a container"),
        r("container.kubectl_host_access", Container, Critical, Cmd,
          r"^kubectl\s(?:\S+\s)*?(?:run|debug|create|apply)\s(?:\S+\s)*?\S*(?:hostPID|hostNetwork|hostIPC|privileged\x22?:\s?true|hostPath)|^kubectl\s(?:\S+\s)*?debug\s(?:\S+\s)*?node/",
          "Gives a Kubernetes pod the node's namespaces, files or full privileges"),
        r("container.nsenter", Container, Critical, Cmd, r"^nsenter\s",
          "Enters another process's namespaces"),
        r("container.unshare_chroot", Container, High, Cmd, r"^(?:unshare|chroot)\s",
          "Changes namespaces or the root directory"),
        r("container.kubectl_exec", Container, Moderate, Cmd, r"^kubectl\s(?:\S+\s)*?(?:exec|debug|cp|delete)\s",
          "Runs or deletes things in a cluster"),
        // --------------------------------------------------------------- kernel
        r("kernel.load_module", Kernel, Critical, Cmd, r"^(?:insmod\s|modprobe\s(?:-[a-qs-zA-Z]\S*\s|--\S+\s)*[^-\s]|kexec\s)",
          "Loads a kernel module"),
        r("kernel.remove_module", Kernel, High, Cmd, r"^(?:rmmod\s|modprobe\s(?:\S+\s)*?(?:-r|--remove)(?:\s|$))",
          "Removes a kernel module"),
        r("kernel.sysctl_write", Kernel, High, Cmd, r"^sysctl\s(?:\S+\s)*?(?:-w\s|--write\s|-p(?:\s|$)|--load|\S+=\S*)",
          "Changes kernel parameters"),
        r("kernel.proc_sys_write", Kernel, High, Redir, r"^(?:>|>>|>\|) /proc/sys/",
          "Changes kernel parameters"),
        r("kernel.modules_dir", Kernel, High, Cmd, r"^(?:cp|mv|install|ln|tee|rm)\s(?:\S+\s)*?/lib/modules/",
          "Changes installed kernel modules"),
        // ------------------------------------------------------------- database
        r("database.drop", Database, Critical, Code, r"(?i)^sql\s.*\bdrop\s+(?:database|schema|table|user|role|index|collection|keyspace|measurement|retention\s+policy|series)\b",
          "Drops a database object"),
        r("database.truncate", Database, Critical, Code, r"(?i)^sql\s.*\btruncate\s+(?:table\s+)?[\w.`\x22]+",
          "Empties a table"),
        r("database.mongo_drop", Database, Critical, Code, r"^sql\s.*\.drop(?:Database)?\(\)|^sql\s.*\.deleteMany\(\{\s*\}\)",
          "Drops a MongoDB database or collection"),
        r("database.delete_without_where", Database, Moderate, Code, r"(?i)^sql\s.*\bdelete\s+from\s",
          "DELETE without WHERE removes every row")
            .unless(r"(?i-u)\bwhere\b"),
        r("database.update_without_where", Database, Moderate, Code, r"(?i)^sql\s.*\bupdate\s+\S+\s+set\s",
          "UPDATE without WHERE changes every row")
            .unless(r"(?i-u)\bwhere\b"),
        r("database.where_tautology", Database, Moderate, Code,
          r"(?i)^sql\s.*\b(?:delete\s+from|update)\s.*\bwhere\s+(?:true|1\s*=\s*1|'1'\s*=\s*'1'|not\s+false)\s*$",
          "DELETE or UPDATE whose WHERE matches every row"),
        r("database.mongo_update_all", Database, Moderate, Code, r"^sql\s.*\.(?:updateMany|replaceMany)\(\s*\{\s*\}",
          "Updates every document of a collection"),
        r("database.alter_drop", Database, Moderate, Code, r"(?i)^sql\s.*\balter\s+table\s+\S+\s+(?:drop|rename)\b",
          "Destructive ALTER TABLE"),
        r("database.redis_flush_stdin", Database, Critical, Code, r"(?i)^sql\s+(?:flushall|flushdb)\b",
          "Deletes every key in Redis"),
        r("database.redis_flush", Database, Critical, Cmd, r"^redis-cli\s(?:\S+\s)*?(?i:flushall|flushdb)(?:\s|$)",
          "Deletes every key in Redis"),
        r("database.dropdb", Database, Critical, Cmd, r"^(?:dropdb|dropuser)\s|^mysqladmin\s(?:\S+\s)*?drop\s",
          "Drops a database"),
        r("database.framework_reset", Database, Critical, Cmd,
          r"^prisma\s(?:migrate\sreset|db\spush\s(?:\S+\s)*?--(?:force-reset|accept-data-loss))|^(?:rails|rake|bin/rails|bin/rake)\s(?:\S+\s)*?db:(?:drop|reset|purge|schema:load|truncate_all)|^php\s(?:\S+\s)*?artisan\s(?:migrate:(?:fresh|reset|refresh)|db:wipe)|^python[0-9.]*\s(?:\S+\s)*?manage\.py\s(?:flush|reset_db|sqlflush)|^(?:django-admin|\S*manage\.py)\s(?:flush|reset_db)|^sequelize(?:-cli)?\sdb:drop|^typeorm\s(?:\S+\s)*?schema:drop|^knex\smigrate:rollback\s(?:\S+\s)*?--all|^flyway\s(?:\S+\s)*?clean|^liquibase\s(?:\S+\s)*?drop-all|^alembic\s(?:\S+\s)*?downgrade\sbase|^mix\secto\.(?:drop|reset)|^dotnet\sef\sdatabase\sdrop",
          "A framework command that drops or resets the database"),
        r("database.rm_db_file", Database, Moderate, Cmd, r"^rm\s(?:\S+\s)*?\S+\.(?:db|sqlite3?|db-wal|db-shm|mdb|ldb)(?:\s|$)",
          "Deletes a database file"),
        // ------------------------------------------------------------------ git
        r("git.reset_hard", Git, Moderate, Cmd, r"^git\sreset\s(?:\S+\s)*?--hard(?:\s|$)",
          "Discards uncommitted work (reset --hard)"),
        r("git.clean_force", Git, Moderate, Cmd, r"^git\sclean\s(?:\S+\s)*?(?:-[a-zA-Z]*f[a-zA-Z]*|--force)(?:\s|$)",
          "Deletes untracked files (clean -f)"),
        r("git.checkout_discard", Git, Moderate, Cmd, r"^git\scheckout\s(?:\S+\s)*?(?:--\s(?:\S+\s)*?)?\.(?:\s|$)|^git\scheckout\s(?:\S+\s)*?--\s\S|^git\scheckout\s(?:\S+\s)*?-f(?:\s|$)",
          "Discards changes in the working tree"),
        r("git.restore_worktree", Git, Moderate, Cmd, r"^git\srestore\s",
          "Discards changes in the working tree")
            .unless(r"(?-u)^git\srestore\s(?:\S+\s)*?(?:--staged|-S)(?:\s|$)"),
        r("git.restore_worktree_explicit", Git, Moderate, Cmd, r"^git\srestore\s(?:\S+\s)*?(?:--worktree|-W)(?:\s|$)",
          "Discards changes in the working tree"),
        r("git.force_push", Git, Moderate, Cmd, r"^git\spush\s(?:\S+\s)*?(?:--force|-[a-zA-Z]*f[a-zA-Z]*|--mirror|--delete|-d|--prune|\+\S+|:\S+)(?:\s|$)",
          "Rewrites or deletes published history (force push, delete, mirror)"),
        r("git.branch_force_delete", Git, Moderate, Cmd, r"^git\sbranch\s(?:\S+\s)*?(?:-D|--delete\s--force|--force\s--delete|-d\s-f|-f\s-d)(?:\s|$)",
          "Deletes a branch that may not be merged"),
        r("git.discard_forced", Git, Moderate, Cmd,
          r"^git\srm\s(?:\S+\s)*?(?:-[a-zA-Z]*f[a-zA-Z]*|--force)(?:\s|$)|^git\s(?:worktree\sremove|submodule\sdeinit)\s(?:\S+\s)*?(?:-f|--force)(?:\s|$)",
          "Discards local changes with --force"),
        r("git.stash_drop", Git, Moderate, Cmd, r"^git\sstash\s(?:drop|clear)(?:\s|$)",
          "Drops stashed work"),
        r("git.rewrite_history", Git, Moderate, Cmd, r"^git\s(?:filter-branch|filter-repo|replace)(?:\s|$)|^git\sreflog\s(?:expire|delete)|^git\sgc\s(?:\S+\s)*?--prune=now|^git\supdate-ref\s(?:\S+\s)*?-d(?:\s|$)",
          "Rewrites or prunes repository history"),
    ]
}

/// Raw-text rules for natural-language prompts: dangerous commands quoted in
/// prose and destructive requests in words. Word boundaries everywhere, so
/// "retrieval", "medieval" or "perform a backup of app.db" never match.
pub(crate) fn prompt_rules() -> Vec<Rule> {
    use C::*;
    use L::*;
    let t = S::Text;
    vec![
        r(
            "prompt.rm_root",
            FileDelete,
            Critical,
            t,
            r"(?:^|[\s`'\x22(;&|])(?:sudo\s+)?rm\s+(?:-[a-zA-Z]*\s+)*(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)\s+(?:-\S+\s+)*(?:/|/\*|~/?|~/\*|\$HOME/?|/(?:etc|usr|bin|boot|home|var|lib|root|opt|srv))(?:[\s`'\x22);&|.,]|$)",
            "Prompt asks to delete the root, home or a system directory",
        ),
        r(
            "prompt.fork_bomb",
            System,
            Critical,
            t,
            r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&?\s*\}\s*;?\s*:",
            "Fork bomb",
        ),
        r(
            "prompt.fetch_pipe_shell",
            Injection,
            High,
            t,
            r"\b(?:curl|wget)\s[^\n|`]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b",
            "Prompt asks to pipe a download into a shell",
        ),
        r(
            "prompt.mkfs",
            System,
            Critical,
            t,
            r"\bmkfs(?:\.\w+)?\s+(?:-\S+\s+)*/dev/\w",
            "Prompt asks to format a disk",
        ),
        r(
            "prompt.dd_device",
            System,
            Critical,
            t,
            r"\bdd\s+[^\n]*\bof=/dev/(?:sd|nvme|hd|vd|xvd|mmcblk|disk)",
            "Prompt asks to overwrite a disk",
        ),
        r(
            "prompt.drop_database",
            Database,
            High,
            t,
            r"\bDROP\s+(?:DATABASE|SCHEMA)\s+[`\x22]?\w",
            "Prompt asks to drop a database",
        ),
        r(
            "prompt.reverse_shell",
            Network,
            Critical,
            t,
            r"\b(?:bash|sh)\s+-i\s*>&\s*/dev/tcp/|\bnc\s+(?:-\S+\s+)*-e\s+/bin/(?:ba)?sh\b",
            "Prompt contains a reverse shell",
        ),
        r(
            "prompt.wipe_request",
            FileDelete,
            High,
            t,
            r"(?i)\b(?:delete|remove|wipe|erase|destroy|rm)\b[^.\n]{0,40}\b(?:every|all)\s+(?:the\s+)?(?:files?|data|directories|folders)\b[^.\n]{0,60}\b(?:filesystem\s+root|root\s+(?:directory|filesystem|of\s+the\s+(?:disk|machine|filesystem))|on\s+(?:this|the)\s+(?:machine|computer|server|host|system|disk)|home\s+directory)",
            "Prompt asks to delete everything on the machine",
        ),
    ]
}
