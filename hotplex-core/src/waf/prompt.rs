//! Screening natural-language prompts.
//!
//! Prose is not shell, so a prompt is judged in three ways, and the strictest
//! verdict wins:
//!
//! 1. the prompt rules ([`super::builtin::prompt_rules`]) and custom text
//!    rules over the whole prompt, after folding full-width look-alikes
//!    (`ｒｍ` -> `rm`);
//! 2. code in it — fenced blocks, inline code spans — as shell commands;
//! 3. each line outside fences as a shell command: command rules are anchored
//!    on the command word, so prose lines ("retrieval augmented generation")
//!    match nothing, while a line that *is* a command is judged as one.
//!
//! Unlike the seed, fenced code is scanned, not stripped: wrapping a payload
//! in triple backticks or indenting it hides nothing.

use std::borrow::Cow;

use super::{control_check, precheck_verdict, stricter, Detector, Verdict};

/// Screens a prompt; see the module docs.
pub(crate) fn check(d: &Detector, prompt: &str) -> Verdict {
    if let Some((level, id, reason, span)) = control_check(prompt) {
        return precheck_verdict(level, id, reason, span);
    }
    let folded = fold_fullwidth(prompt);
    let mut v = d.prompt_text_verdict(&folded);
    if v.level == super::Level::Critical {
        return v;
    }
    let mut in_fence = false;
    let mut offset = 0usize;
    let mut fence_start = 0usize;
    for line in prompt.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            if in_fence {
                // The whole block is one script: heredocs and continuations work.
                let block = &prompt[fence_start..offset];
                v = stricter(v, shifted(d.judge(block, false), fence_start));
            } else {
                fence_start = offset + line.len();
            }
            in_fence = !in_fence;
        } else if !in_fence {
            let body = trimmed.strip_prefix("$ ").unwrap_or(trimmed);
            let start = offset + (line.len() - line.trim_start().len());
            v = stricter(v, shifted(d.judge(body, false), start));
            for (span_start, code) in inline_code(line) {
                v = stricter(v, shifted(d.judge(code, false), offset + span_start));
            }
        }
        offset += line.len();
    }
    if in_fence {
        // An unclosed fence runs to the end.
        v = stricter(
            v,
            shifted(
                d.judge(&prompt[fence_start.min(prompt.len())..], false),
                fence_start,
            ),
        );
    }
    v
}

/// Moves a verdict's span from a part of the prompt to the whole prompt.
fn shifted(mut v: Verdict, by: usize) -> Verdict {
    if let Some(s) = v.span.as_mut() {
        *s = s.start + by..s.end + by;
    }
    v
}

/// The inline code spans (`` `...` ``) of a line, with their byte offsets.
fn inline_code(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = line;
    let mut base = 0;
    while let Some(open) = rest.find('`') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else { break };
        out.push((base + open + 1, &after[..close]));
        let consumed = open + 1 + close + 1;
        base += consumed;
        rest = &rest[consumed..];
    }
    out
}

/// Folds full-width ASCII look-alikes (U+FF01..U+FF5E, U+3000) to ASCII.
fn fold_fullwidth(s: &str) -> Cow<'_, str> {
    if s.chars()
        .all(|c| !('\u{ff01}'..='\u{ff5e}').contains(&c) && c != '\u{3000}')
    {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                '\u{3000}' => ' ',
                '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xff01 + 0x21).unwrap_or(c),
                c => c,
            })
            .collect(),
    )
}
