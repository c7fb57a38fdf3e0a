//! An incremental splitter: the top-level elements of a JSON array, from body frames as
//! they arrive.
//!
//! It only finds where each element starts and ends (where strings end, by
//! `json::lex::string_end`, and nesting), and hands the element's bytes on unchecked
//! ([`Splitter::feed_bytes`]). A streamed response checks them in its batch filter: an object
//! element of a route of the common export shape is checked and filtered in one pass by the
//! element filter (`filter::project`), any other by [`json::parse_strict`] then
//! `filter::decide`. Both read tokens by the rules of `json::lex` and refuse what the other
//! refuses (duplicate keys, bad UTF-8, numbers serde_json would change, lone surrogates...),
//! which their tests hold them to. [`Splitter::feed`] parses each element with
//! [`json::parse_strict`] itself, for callers that want values.
//!
//! The splitter itself refuses what an element reader cannot see: anything but white space
//! around the array, an empty element (`[1,,2]`, `[1,]`), a closing `}` at the top, nesting
//! deeper than the limit, an element larger than the limit, and a body that ends before the
//! array does.
//!
//! Memory is the largest element (at most `max_element` bytes): an element that starts and
//! ends inside one frame is handed on from the frame without a copy.

use serde_json::Value;

use crate::json;
use crate::json::lex::{self, is_ws};

/// Why a streamed body was refused. No variant carries a byte of the body.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("expected a json array at the top of the body")]
    NotArray,
    #[error("empty array element at byte {0}")]
    EmptyElement(u64),
    #[error("unbalanced '}}' at byte {0}")]
    Unbalanced(u64),
    #[error("array element larger than {0} bytes")]
    ElementTooLarge(usize),
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    #[error("data after the end of the array at byte {0}")]
    Trailing(u64),
    #[error("body ended before the array did")]
    Truncated,
    /// Not a fault of the JSON: an element kept for the recipient names no data subject, so
    /// its disclosure could not be found by a subject access request.
    #[error("an element names no data subject")]
    Unidentified,
    #[error(transparent)]
    Element(#[from] json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// Inside the array: reading an element (possibly only white space so far).
    Element,
    /// After the closing `]`: only white space may follow.
    Done,
}

/// Splits one JSON array into its elements; feed it frames, then call [`Splitter::finish`].
#[derive(Debug)]
pub struct Splitter {
    state: State,
    /// Depth allowed inside an element: the array itself is one level.
    element_depth: usize,
    max_element: usize,
    /// Bytes of an element that began in an earlier frame.
    carry: Vec<u8>,
    /// Bytes of the current element so far (in `carry` and the current frame).
    length: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
    /// Whether the current element holds anything but white space.
    seen: bool,
    elements: u64,
    /// Bytes consumed before the current frame, for error positions.
    offset: u64,
}

/// The bytes the splitter acts on inside an element.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b',' as usize] = true;
    t
};

// === impl Splitter ===

impl Splitter {
    /// `max_depth` is the limit for the whole body, as [`json::parse_strict`] takes it.
    pub fn new(max_depth: usize, max_element: usize) -> Self {
        let max_depth = max_depth.min(json::SERDE_JSON_MAX_DEPTH);
        Splitter {
            state: State::Start,
            element_depth: max_depth.saturating_sub(1),
            max_element,
            carry: Vec::new(),
            length: 0,
            depth: 0,
            in_string: false,
            escape: false,
            seen: false,
            elements: 0,
            offset: 0,
        }
    }

    /// Elements completed so far.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Consumes `frame`, calling `each` with every element it completes, parsed strictly.
    ///
    /// # Errors
    ///
    /// The first problem in the body, or the first error `each` returns; the splitter is not
    /// to be used after an error.
    pub fn feed<E: From<Error>>(
        &mut self,
        frame: &[u8],
        mut each: impl FnMut(Value) -> Result<(), E>,
    ) -> Result<(), E> {
        let depth = self.element_depth;
        self.feed_bytes(frame, |bytes| {
            let value = json::parse_strict(bytes, depth).map_err(Error::from)?;
            each(value)
        })
    }

    /// The nesting an element may have, as `max_depth` for [`json::parse_strict`] of it.
    pub fn element_depth(&self) -> usize {
        self.element_depth
    }

    /// [`Splitter::feed`], but `each` gets the element's bytes (white space around it
    /// included), not yet parsed: the caller must check them as strictly as
    /// [`json::parse_strict`] with [`Splitter::element_depth`] does.
    ///
    /// # Errors
    ///
    /// As [`Splitter::feed`].
    pub fn feed_bytes<E: From<Error>>(
        &mut self,
        frame: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        // Where the current element's bytes begin in this frame.
        let mut start = 0;
        while i < frame.len() {
            let b = frame[i];
            match self.state {
                State::Start => {
                    if b == b'[' {
                        // The array is the one level `max_depth` 1 allows; its elements may
                        // then only be scalars, which the nesting check below enforces.
                        self.state = State::Element;
                        start = i + 1;
                    } else if !is_ws(b) {
                        return Err(Error::NotArray.into());
                    }
                }
                State::Done => {
                    if !is_ws(b) {
                        return Err(Error::Trailing(self.offset + i as u64).into());
                    }
                }
                State::Element if self.in_string => {
                    // The common case inside a string: skip to its end, here or in a later
                    // frame.
                    match lex::string_end(frame, i, &mut self.escape) {
                        Some(end) => {
                            i = end;
                            self.in_string = false;
                        }
                        None => {
                            i = frame.len();
                            continue;
                        }
                    }
                }
                // Inside an element already seen, only these bytes change the state: skip
                // to the next (numbers, literals, white space, ':' are the element parser's).
                State::Element if self.seen && !STRUCTURAL[b as usize] => {
                    match frame[i..].iter().position(|&c| STRUCTURAL[c as usize]) {
                        Some(n) => i += n,
                        None => i = frame.len(),
                    }
                    continue;
                }
                State::Element => match b {
                    b'"' => {
                        self.in_string = true;
                        self.seen = true;
                    }
                    b'[' | b'{' => {
                        self.depth += 1;
                        self.seen = true;
                        if self.depth > self.element_depth {
                            return Err(Error::TooDeep(self.element_depth + 1).into());
                        }
                    }
                    b']' | b'}' if self.depth > 0 => self.depth -= 1,
                    b',' if self.depth > 0 => {}
                    b'}' => return Err(Error::Unbalanced(self.offset + i as u64).into()),
                    b',' | b']' => {
                        let at = self.offset + i as u64;
                        let last = b == b']';
                        if self.seen {
                            let tail = &frame[start..i];
                            self.grow(tail.len())?;
                            self.elements += 1;
                            if self.carry.is_empty() {
                                each(tail)?;
                            } else {
                                self.carry.extend_from_slice(tail);
                                each(&self.carry)?;
                            }
                        } else if !(last && self.elements == 0) {
                            // `[,`, `[1,,2]` or `[1,]`; only `[]` (or `[ ]`) is empty.
                            return Err(Error::EmptyElement(at).into());
                        }
                        self.reset_element();
                        start = i + 1;
                        if last {
                            self.state = State::Done;
                        }
                    }
                    b if !is_ws(b) => self.seen = true,
                    _ => {}
                },
            }
            i += 1;
        }
        if self.state == State::Element {
            let rest = &frame[start.min(frame.len())..];
            self.grow(rest.len())?;
            self.carry.extend_from_slice(rest);
        }
        self.offset += frame.len() as u64;
        Ok(())
    }

    /// Checks that the body ended where the array did.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when the array was not closed (or never opened).
    pub fn finish(&self) -> Result<(), Error> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(Error::Truncated),
        }
    }

    /// Counts `n` more bytes of the current element against the limit.
    fn grow(&mut self, n: usize) -> Result<(), Error> {
        self.length += n;
        if self.length > self.max_element {
            return Err(Error::ElementTooLarge(self.max_element));
        }
        Ok(())
    }

    fn reset_element(&mut self) {
        self.carry.clear();
        // Give back a buffer grown by one large element.
        if self.carry.capacity() > 1 << 20 {
            self.carry.shrink_to(1 << 16);
        }
        self.length = 0;
        self.seen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Splits `body` in frames of `chunk` bytes; the elements, or the error's text.
    fn split(body: &[u8], chunk: usize, max_depth: usize) -> Result<Vec<Value>, String> {
        let mut s = Splitter::new(max_depth, 1 << 20);
        let mut out = Vec::new();
        for frame in body.chunks(chunk.max(1)) {
            s.feed(frame, |v| {
                out.push(v);
                Ok::<_, Error>(())
            })
            .map_err(|e| e.to_string())?;
        }
        s.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// What the buffered path accepts: the whole body, strictly, and an array.
    fn whole(body: &[u8], max_depth: usize) -> Option<Vec<Value>> {
        match json::parse_strict(body, max_depth) {
            Ok(Value::Array(items)) => Some(items),
            _ => None,
        }
    }

    #[test]
    fn splits_and_refuses() {
        let ok = |b: &str| split(b.as_bytes(), 3, 64).expect(b);
        assert_eq!(ok(" [ ] "), Vec::<Value>::new());
        assert_eq!(ok("[1, \"a,]\\\"\", {\"k\": [2]}, null]").len(), 4);
        for bad in [
            "",
            "[",
            "[1",
            "[1,",
            "[1,]",
            "[,1]",
            "[1,,2]",
            "{}",
            "1",
            "[1]x",
            "[1]]",
            "[}",
            "[1 2]",
            "[\"\\u00zz\"]",
            "[{\"a\":1,\"a\":2}]",
            "\u{feff}[]",
            "[1]\u{c}",
        ] {
            assert!(split(bad.as_bytes(), 2, 64).is_err(), "{bad:?} accepted");
        }
        assert!(split(b"[\"\xff\"]", 1, 64).is_err());
        assert!(split(b"[[[[1]]]]", 7, 3).is_err());
        assert_eq!(split(b"[[[1]]]", 7, 3).expect("depth 3").len(), 1);
    }

    #[test]
    fn depth_one_allows_an_array_of_scalars_only() {
        assert_eq!(
            split(b"[\"[a\", 1]", 1, 1),
            Ok(vec![Value::from("[a"), Value::from(1)])
        );
        assert!(whole(b"[\"[a\", 1]", 1).is_some());
        assert!(split(b"[[1]]", 1, 1).is_err());
        assert!(whole(b"[[1]]", 1).is_none());
    }

    #[test]
    fn element_limit() {
        let mut s = Splitter::new(64, 8);
        let r = s.feed(b"[\"0123456789\"]", |_| Ok::<_, Error>(()));
        assert!(matches!(r, Err(Error::ElementTooLarge(8))));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[ -~\\u{80}-\\u{10ffff}\"\\\\]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\,\\]]{0,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any valid array splits into exactly the elements serde_json reads, whatever the
        /// frame boundaries and the white space.
        #[test]
        fn splits_like_serde(
            items in prop::collection::vec(arb_json(), 0..6),
            chunk in 1usize..40,
            pretty in any::<bool>(),
        ) {
            let body = if pretty {
                serde_json::to_vec_pretty(&Value::Array(items.clone()))
            } else {
                serde_json::to_vec(&Value::Array(items.clone()))
            }.expect("serialise");
            prop_assert_eq!(split(&body, chunk, 64), Ok(items));
        }

        /// A valid array damaged by one byte is accepted by the splitter exactly when the
        /// strict parser accepts it, and then with the same elements.
        #[test]
        fn refuses_what_serde_refuses(
            items in prop::collection::vec(arb_json(), 0..5),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![
                Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b','), Just(b'"'),
                Just(b'\\'), Just(b':'), Just(b' '), Just(0xffu8), any::<u8>()
            ],
            delete in any::<bool>(),
            chunk in 1usize..16,
            depth in 1usize..6,
        ) {
            let mut body = serde_json::to_vec(&Value::Array(items)).expect("serialise");
            let i = at.index(body.len() + 1);
            if delete && i < body.len() {
                body.remove(i);
            } else {
                body.insert(i, byte);
            }
            prop_assert_eq!(split(&body, chunk, depth).ok(), whole(&body, depth));
        }

        /// Arbitrary bytes: never a panic, and never accepted unless serde_json accepts.
        #[test]
        fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..64), chunk in 1usize..8) {
            prop_assert_eq!(split(&body, chunk, 64).ok(), whole(&body, 64));
        }
    }
}
