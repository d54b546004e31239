//! Decoders a command line can hide code behind: base64 (also UTF-16LE, as
//! PowerShell's `-EncodedCommand` takes it), hex (`xxd -r -p`, Perl
//! `pack("H*", ...)`), `tr` translations such as rot13, and `rev`. Each one
//! is linear and works on literal input only; callers fail closed when the
//! input is not literal.

/// Decodes standard or URL-safe base64, ignoring whitespace; `None` when the
/// text is not base64.
pub(crate) fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Base64 text decoded to a string (lossy); `None` if not base64.
pub(crate) fn base64_text(text: &str) -> Option<String> {
    base64(text).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// PowerShell's `-EncodedCommand`: base64 of UTF-16LE text.
pub(crate) fn utf16le_base64(text: &str) -> Option<String> {
    let bytes = base64(text)?;
    if bytes.len() < 2 {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units))
}

/// Plain hex (`726d202d7266`), whitespace ignored; `None` if not hex.
pub(crate) fn hex(text: &str) -> Option<String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| (c as char).to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()?;
    if digits.len() % 2 != 0 {
        return None;
    }
    let bytes: Vec<u8> = digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `rev`: every line reversed.
pub(crate) fn rev(text: &str) -> String {
    text.lines()
        .map(|l| l.chars().rev().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a `tr` set (`a-z`, `N-ZA-Mn-za-m`) to its characters; `None`
/// for classes and escapes this does not model.
fn tr_set(set: &str) -> Option<Vec<char>> {
    if set.contains("[:") || set.contains('\\') {
        return None;
    }
    let cs: Vec<char> = set.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        if i + 2 < cs.len() && cs[i + 1] == '-' && cs[i] <= cs[i + 2] {
            if (cs[i + 2] as u32 - cs[i] as u32) > 256 {
                return None;
            }
            out.extend(cs[i]..=cs[i + 2]);
            i += 3;
        } else {
            out.push(cs[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `tr SET1 SET2` applied to `text`; `None` for options or sets this does
/// not model.
pub(crate) fn tr(args: &[String], text: &str) -> Option<String> {
    let [from, to] = args else { return None };
    let from = tr_set(from)?;
    let mut to = tr_set(to)?;
    if to.is_empty() {
        return None;
    }
    while to.len() < from.len() {
        to.push(*to.last()?);
    }
    Some(
        text.chars()
            .map(|c| from.iter().position(|&f| f == c).map_or(c, |i| to[i]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_invert_their_encodings() {
        assert_eq!(base64_text("cm0gLXJmIH4=").as_deref(), Some("rm -rf ~"));
        assert_eq!(hex("726d202d7266202f").as_deref(), Some("rm -rf /"));
        assert_eq!(rev("/ fr- mr"), "rm -rf /");
        let rot = ["a-z".to_owned(), "n-za-m".to_owned()];
        assert_eq!(tr(&rot, "ez -es /").as_deref(), Some("rm -rf /"));
        // "ls" in UTF-16LE.
        assert_eq!(utf16le_base64("bABzAA==").as_deref(), Some("ls"));
        assert!(base64("not base64!").is_none());
    }
}
