//! The token rules of JSON as the gateway reads upstream bodies: white space, strings
//! (escapes, `\u` escapes in surrogate pairs, control characters, UTF-8), numbers and whether
//! serde_json would hold them exactly, and the literals.
//!
//! Three readers of upstream bytes share these rules, so that a body refused on one path is
//! refused on every path, in the same words:
//!
//! - [`super::parse_strict`] leaves the grammar to serde_json, then refuses with [`number`]
//!   the numbers serde_json would have changed;
//! - the one-pass element filter of streamed exports (`filter::project`) reads every token
//!   of an element with [`string`], [`number`], [`literal`] and [`skip_ws`];
//! - the array splitter (`json::split`) only needs to know where strings end
//!   ([`string_end`]) and what white space is ([`is_ws`]): the element filter checks the
//!   tokens of each element it hands on.
//!
//! Everything reads `&[u8]` from an index and returns the index after the token, so a caller's
//! loop compiles as if the rule were written in it; errors are built out of line.

use super::Error;

/// JSON's white space (RFC 8259): not form feed or vertical tab, unlike
/// `u8::is_ascii_whitespace`.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The index of the first byte at or after `at` that is not white space.
#[inline]
pub(crate) fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|&b| is_ws(b)) {
        at += 1;
    }
    at
}

/// A refusal of the bytes at `at`, in the words every reader of upstream JSON uses:
/// `malformed json: {what} at byte {at}`. `what` is a fixed phrase, never document text.
#[cold]
#[inline(never)]
pub(crate) fn malformed(what: &str, at: usize) -> Error {
    Error::Malformed(format!("{what} at byte {at}"))
}

// === strings ===

/// Bytes a string's fast scan stops at: the closing quote, an escape, a control character,
/// and the first byte of a character outside ASCII (checked there, so a reader needs no
/// separate UTF-8 pass: outside strings the grammar admits ASCII only).
static STOPS_STRING: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    let mut b = 0x80;
    while b < 0x100 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Reads the string whose opening quote is at `at`, checking it as serde_json reads strings
/// from bytes checked as UTF-8; returns the index after its closing quote and whether it
/// holds escapes (if not, its bytes are its text).
///
/// # Errors
///
/// [`Error::Malformed`] for a raw control character, an escape serde_json does not know, a
/// `\u` escape without four hex digits, a surrogate escape not in a high-low pair, bytes that
/// are not UTF-8 (overlong forms and encoded surrogates included), and a string the bytes
/// end inside.
#[inline]
pub(crate) fn string(bytes: &[u8], at: usize) -> Result<(usize, bool), Error> {
    let mut at = at + 1;
    let mut escaped = false;
    loop {
        while at < bytes.len() && !STOPS_STRING[bytes[at] as usize] {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'"') => return Ok((at + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                at = escape(bytes, at)?;
            }
            Some(&lead @ 0x80..) => at = utf8_char(bytes, at, lead)?,
            Some(_) => return Err(malformed("control character in a string", at)),
            None => return Err(malformed("unterminated string", at)),
        }
    }
}

/// Checks the one character outside ASCII whose first byte, `lead`, is at `at`; the index
/// after it.
#[inline]
fn utf8_char(bytes: &[u8], at: usize, lead: u8) -> Result<usize, Error> {
    let len = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    };
    // The standard check of the one character: overlong forms and surrogates included.
    let whole = bytes.get(at..at + len);
    if len == 0 || whole.is_none_or(|c| std::str::from_utf8(c).is_err()) {
        return Err(malformed("invalid utf-8", at));
    }
    Ok(at + len)
}

/// Checks the escape whose backslash is at `at`, as serde_json does: `\u` surrogates only
/// as a high one followed at once by an escaped low one. Returns the index after it.
fn escape(bytes: &[u8], at: usize) -> Result<usize, Error> {
    let at = at + 1;
    match bytes.get(at) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 1),
        Some(b'u') => {
            let at = at + 1;
            let first = hex4(bytes, at)?;
            let at = at + 4;
            match first {
                0xDC00..=0xDFFF => Err(malformed("lone surrogate in a string", at)),
                0xD800..=0xDBFF => {
                    if bytes.get(at..at + 2) != Some(b"\\u") {
                        return Err(malformed("lone surrogate in a string", at));
                    }
                    let at = at + 2;
                    let second = hex4(bytes, at)?;
                    let at = at + 4;
                    match second {
                        0xDC00..=0xDFFF => Ok(at),
                        _ => Err(malformed("lone surrogate in a string", at)),
                    }
                }
                _ => Ok(at),
            }
        }
        _ => Err(malformed("invalid escape", at)),
    }
}

/// The four hex digits of a `\u` escape, starting at `at`.
fn hex4(bytes: &[u8], at: usize) -> Result<u16, Error> {
    let digits = bytes
        .get(at..at + 4)
        .ok_or_else(|| malformed("invalid \\u escape", at))?;
    let mut value = 0u16;
    for &b in digits {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(malformed("invalid \\u escape", at)),
        };
        value = (value << 4) | u16::from(digit);
    }
    Ok(value)
}

/// Where a string ends, for a reader that only delimits strings (their contents checked by
/// [`string`] elsewhere, or already by serde_json). Scanning from `at`, inside a string,
/// returns the index of the closing quote, or `None` when `bytes` end first.
///
/// `escape` says that the byte at `at` is escaped (the bytes before ended on a backslash);
/// it is set so when `None` is returned that way, so a scan can resume in the next frame.
#[inline]
pub(crate) fn string_end(bytes: &[u8], mut at: usize, escape: &mut bool) -> Option<usize> {
    if *escape {
        if at >= bytes.len() {
            return None;
        }
        *escape = false;
        at += 1;
    }
    loop {
        at += memchr::memchr2(b'"', b'\\', bytes.get(at..)?)?;
        if bytes[at] == b'"' {
            return Some(at);
        }
        at += 1;
        if at >= bytes.len() {
            *escape = true;
            return None;
        }
        at += 1;
    }
}

/// The text of a string body (between its quotes) that [`string`] accepted, its escapes
/// undone as serde_json undoes them.
pub(crate) fn unescape(raw: &[u8]) -> String {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    // Checked by `string` already, so serde_json agrees it is a string.
    serde_json::from_slice(&quoted).unwrap_or_default()
}

// === numbers ===

/// Reads the number starting at `at` by JSON's grammar and refuses what serde_json would
/// reject or change; the index after it.
///
/// The grammar is RFC 8259's: `-`? then `0` or a digit run not starting with `0`, then
/// optionally `.` and digits, then optionally `e`/`E`, a sign and digits.
///
/// # Errors
///
/// - [`Error::Malformed`]: a leading zero, a sign, point or exponent without digits after
///   it, and a float beyond `f64` (`1e400`), which serde_json refuses.
/// - [`Error::InexactNumber`]: a number serde_json would silently change, see [`exact`].
#[inline]
pub(crate) fn number(bytes: &[u8], at: usize) -> Result<usize, Error> {
    let digits = |mut at: usize| {
        while let Some(b'0'..=b'9') = bytes.get(at) {
            at += 1;
        }
        at
    };
    let start = at;
    let mut at = at;
    if bytes.get(at) == Some(&b'-') {
        at += 1;
    }
    match bytes.get(at) {
        Some(b'0') => {
            at += 1;
            if let Some(b'0'..=b'9') = bytes.get(at) {
                return Err(malformed("leading zero in a number", at));
            }
        }
        Some(b'1'..=b'9') => at = digits(at),
        _ => return Err(malformed("invalid number", at)),
    }
    let mut float = false;
    if bytes.get(at) == Some(&b'.') {
        float = true;
        let end = digits(at + 1);
        if end == at + 1 {
            return Err(malformed("invalid number", end));
        }
        at = end;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        float = true;
        at += 1;
        if let Some(b'+' | b'-') = bytes.get(at) {
            at += 1;
        }
        let end = digits(at);
        if end == at {
            return Err(malformed("invalid number", at));
        }
        at = end;
    }
    exact(&bytes[start..at], start, float)?;
    Ok(at)
}

/// Refuses number literals that serde_json would silently change: an integer beyond 64 bits
/// (it becomes a rounded `f64`, so `100000000000000000001` would reach the recipient as
/// `1e20`) and a non-zero literal that underflows to `0.0` (`123e-10000000`). JSONTestSuite
/// calls both implementation-defined (`i_number_*`); a gateway must not hand a recipient a
/// value the upstream never sent, so it refuses instead of choosing. Other floats are
/// rounded to the nearest `f64` as any reader rounds them, and accepted.
///
/// `token` is a number by the grammar of [`number`], `float` whether it has a fraction or an
/// exponent, and `start` its index, for the error.
#[inline]
fn exact(token: &[u8], start: usize, float: bool) -> Result<(), Error> {
    // ASCII by the grammar.
    let token = std::str::from_utf8(token).unwrap_or_default();
    if !float {
        // 18 characters always fit; longer ones must fit 64 bits, or serde_json rounds them.
        if token.len() > 18 && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
            return Err(Error::InexactNumber(start, "integer beyond 64 bits"));
        }
        return Ok(());
    }
    // serde_json's own reading of the token, so the rule is about the value it would hold.
    let value: f64 =
        serde_json::from_str(token).map_err(|_| malformed("number out of range", start))?;
    let mantissa = token.split(['e', 'E']).next().unwrap_or_default();
    if value == 0.0 && mantissa.bytes().any(|b| matches!(b, b'1'..=b'9')) {
        return Err(Error::InexactNumber(start, "underflows to zero"));
    }
    Ok(())
}

// === literals ===

/// The index after the literal (`true`, `false` or `null`) at `at`, if one is there.
#[inline]
pub(crate) fn literal(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = bytes.get(at..).unwrap_or_default();
    [&b"true"[..], b"false", b"null"]
        .into_iter()
        .find(|word| rest.starts_with(word))
        .map(|word| at + word.len())
}

#[cfg(test)]
pub(crate) mod tests;
