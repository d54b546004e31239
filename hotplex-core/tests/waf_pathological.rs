//! Pathological input: every cap and parse error fails closed (never
//! `safe`), nothing panics, and the work stays linear. Timing is measured by
//! the `waf` benchmark (`pathological` group), never asserted here; a
//! quadratic regression would show up there and as a hung test here.

use hotplex_core::waf::{Detector, Level};

fn not_safe(cmd: &str) -> Level {
    let v = Detector::new().check_command(cmd);
    assert!(!v.is_safe(), "expected a non-safe verdict, got {v:?}");
    v.level
}

#[test]
fn ten_thousand_nested_command_substitutions_fail_closed() {
    let cmd = format!("echo {}x{}", "$(".repeat(10_000), ")".repeat(10_000));
    not_safe(&cmd);
}

#[test]
fn ten_thousand_nested_substitutions_still_find_a_payload_near_the_top() {
    let cmd = format!(
        "$(rm -rf ~; {}x{})",
        "$(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(Detector::new().check_command(&cmd).blocked);
}

#[test]
fn ten_thousand_nested_subshells_and_parameter_expansions_fail_closed() {
    // `( ( ( ... ) ) )`: real subshells (`((` would be arithmetic).
    not_safe(&format!(
        "{}true{}",
        "( ".repeat(10_000),
        " )".repeat(10_000)
    ));
    let v = Detector::new().check_command(&format!(
        "echo {}x{}",
        "${a:-".repeat(10_000),
        "}".repeat(10_000)
    ));
    assert!(!v.blocked);
}

#[test]
fn one_mebibyte_quote_storms_are_handled() {
    let d = Detector::new();
    let storm = "'a'\"b\"$'c'".repeat(100_000);
    assert!(!d.check_command(&format!("echo {storm}")).blocked);
    // The same storm hiding a payload behind it is still seen.
    assert!(d.check_command(&format!("echo {storm}; rm -rf /")).blocked);
    // An unterminated quote at the end is invalid shell: not safe.
    not_safe(&format!("echo {storm} '"));
}

#[test]
fn one_hundred_thousand_operators_hit_the_command_cap_and_fail_closed() {
    for op in ["&& ", "; ", "| ", "|| ", "& ", "\n"] {
        let cmd = format!("true {}", format!("true {op}").repeat(100_000));
        not_safe(&cmd);
    }
}

#[test]
fn a_payload_after_the_command_cap_is_not_called_safe() {
    let cmd = format!("{}rm -rf /", "true; ".repeat(10_000));
    not_safe(&cmd);
}

#[test]
fn one_mebibyte_heredoc_bodies_are_data_when_quoted_and_scanned_when_not() {
    let d = Detector::new();
    let line = "rm -rf / $(whoami) `id` \"x\" 'y'\n";
    let body = line.repeat((1 << 20) / line.len());
    let quoted = format!("cat > notes.md <<'EOF'\n{body}EOF\n");
    assert!(d.check_command(&quoted).is_safe());
    // Unquoted: the substitutions in the body run, thousands of them; the
    // command cap is hit and the verdict fails closed.
    let unquoted = format!("cat > notes.md <<EOF\n{body}EOF\n");
    not_safe(&unquoted);
    // The same body piped into a shell is code.
    let into_shell = format!("cat <<'EOF' | sh\n{body}EOF\n");
    assert!(d.check_command(&into_shell).blocked);
}

#[test]
fn unterminated_constructs_are_invalid_shell_and_fail_closed() {
    for cmd in [
        "echo 'abc",
        "echo \"abc",
        "echo $(ls",
        "echo `ls",
        "echo ${HOME",
        "echo $'abc",
        "cat <<EOF\nno terminator",
        "(ls",
    ] {
        let v = Detector::new().check_command(cmd);
        assert_eq!(v.level, Level::Moderate, "{cmd:?}: {v:?}");
        assert_eq!(
            v.rule_id.as_deref(),
            Some("injection.syntax_error"),
            "{cmd:?}"
        );
    }
}

#[test]
fn prompts_with_apostrophes_are_not_invalid_shell() {
    let v = Detector::new().check_prompt("Don't delete anything; it's fine, isn't it?");
    assert!(v.is_safe(), "{v:?}");
}

#[test]
fn wrapper_and_eval_chains_are_bounded() {
    let d = Detector::new();
    assert!(
        d.check_command(&format!("{}rm -rf /", "sudo ".repeat(100_000)))
            .level
            != Level::Safe
    );
    assert!(
        d.check_command(&format!("{}rm -rf /", "eval ".repeat(100_000)))
            .level
            != Level::Safe
    );
    // Each level doubles the escaping, so 20 levels is already ~1 MiB.
    let nested = (0..20).fold("rm -rf /".to_owned(), |acc, _| format!("sh -c {:?}", acc));
    assert!(d.check_command(&nested).level != Level::Safe);
}

#[test]
fn ten_thousand_nested_find_exec_and_xargs_levels_fail_closed() {
    not_safe(&format!("{}rm -rf /", "find . -exec ".repeat(10_000)));
    not_safe(&format!("{}rm -rf /", "xargs ".repeat(10_000)));
    not_safe(&format!("{}rm -rf /", "parallel ".repeat(10_000)));
}

#[test]
fn ten_mebibytes_of_plain_text_and_binary_like_text_do_not_panic() {
    let d = Detector::new();
    let _ = d.check_command(&"a".repeat(10 << 20));
    let _ = d.check_prompt(&"word ".repeat(2 << 20));
    let noise: String = (0..(1u64 << 20))
        .map(|i| char::from(0x20 + ((i * 7919) % 0x5f) as u8))
        .collect();
    let _ = d.check_command(&noise);
    let _ = d.explain(&noise);
}

#[test]
fn unclosed_parameter_expansion_ending_in_a_multibyte_character_does_not_panic() {
    // Found by the fuzzer: `${` never closed, input ending inside a
    // three-byte character.
    let d = Detector::new();
    for cmd in ["o ${H(O untO\\-\u{715e}", "${\u{e9}", "echo ${a:-\u{1f600}"] {
        assert!(!d.check_command(cmd).is_safe(), "{cmd:?}");
        let _ = d.check_prompt(cmd);
        let _ = d.explain(cmd);
    }
    let fuzz_input = "\n```q\n\n\n\n\n\n*\n\n\n\n\n\no ${H(O untO\\-\u{715e}";
    let _ = d.check_prompt(fuzz_input);
}

#[test]
fn glob_command_words_of_any_size_stay_linear() {
    let d = Detector::new();
    let word = "*?".repeat(50_000);
    let _ = d.check_command(&format!("/{word} -rf ~"));
    let _ = d.check_command(&format!("{}[ -rf ~", "[a-z]*".repeat(20_000)));
    assert!(d.check_command("/???/r? -rf ~").blocked);
}

/// Found by `cargo fuzz run check_command`: a pipeline stage whose argv is
/// empty (only a redirection) after a decoder-like stage panicked.
#[test]
fn a_pipeline_stage_with_no_words_does_not_panic() {
    let d = Detector::new();
    for cmd in [
        "curl -s https.pub./example\u{1}\0\0\0h | >h",
        "echo aGk= | base64 -d | >out",
        "cat x | > y",
        "| >",
    ] {
        let v = d.check_command(cmd);
        assert_eq!(v.blocked, v.level.blocks(), "{cmd:?}");
    }
}
