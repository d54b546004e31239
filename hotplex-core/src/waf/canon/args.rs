//! Reading options out of an argument vector, the way getopt-style programs
//! do: where the operands start, the value of a given flag, and removing a
//! flag with its value. Shared by the wrappers, the tools and the
//! interpreters, which all need to find "the command" or "the code" among
//! their options without knowing every option they have.

/// Index of the first operand after options. `with_arg` lists short options
/// (single letters) that take a value; `long_with_arg` long ones.
///
/// Options that take no value need not be listed: anything starting with `-`
/// is skipped, so only the ones that swallow the next word matter.
pub(super) fn skip_opts(
    argv: &[String],
    start: usize,
    with_arg: &str,
    long_with_arg: &[&str],
) -> usize {
    let mut i = start;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return i + 1;
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && long_with_arg.contains(&long) {
                i += 1;
            }
        } else if let Some(cluster) = a.strip_prefix('-') {
            if cluster.is_empty() {
                return i; // `-` is an operand
            }
            // The first letter that takes a value consumes the rest, or the
            // next word when it ends the cluster.
            for (pos, ch) in cluster.char_indices() {
                if with_arg.contains(ch) {
                    if pos + ch.len_utf8() == cluster.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return i;
        }
        i += 1;
    }
    i
}

/// The value of the first of `flags` in argv: the word after it (`-c X`),
/// or for a long flag also its `=` suffix (`--command=X`). A value glued to
/// a short flag (`-cX`) is not recognised.
pub(super) fn flag_value(argv: &[String], flags: &[&str]) -> Option<String> {
    for (k, a) in argv.iter().enumerate() {
        for f in flags {
            if a == f {
                return argv.get(k + 1).cloned();
            }
            if f.starts_with("--") {
                if let Some(v) = a.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                    return Some(v.to_owned());
                }
            }
        }
    }
    None
}

/// Removes every `flag VALUE` pair (and `flagVALUE`) from argv.
pub(super) fn drop_option_values(argv: &mut Vec<String>, flag: &str) {
    let mut k = 1;
    while k < argv.len() {
        if argv[k] == flag {
            let end = (k + 2).min(argv.len());
            argv.drain(k..end);
        } else if argv[k].starts_with(flag) && !argv[k].starts_with("--") {
            argv.remove(k);
        } else {
            k += 1;
        }
    }
}
