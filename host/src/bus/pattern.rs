//! Subscription patterns: shell globs over service names, with the original hivemind's
//! `fnmatch` semantics.
//!
//! | pattern  | matches                                                   |
//! |----------|-----------------------------------------------------------|
//! | `*`      | any run of characters, empty included (`-` and `/` too)   |
//! | `?`      | exactly one character                                     |
//! | `[abc]`  | one of `a`, `b`, `c`                                      |
//! | `[a-z]`  | one character in the range                                |
//! | `[!abc]` | one character that is not listed                          |
//! | other    | itself, case-sensitively                                  |
//!
//! A pattern matches the whole service name. A `]` right after `[` or `[!` is a member of the
//! set. Unlike Python's `fnmatch`, an unclosed `[`, an empty pattern and a reversed range
//! (`[z-a]`) are errors, so a typo is refused when the node starts instead of never matching.

use regex::Regex;
use std::fmt;

/// A compiled subscription pattern.
#[derive(Clone)]
pub struct Pattern {
    text: String,
    /// The literal text before the first wildcard: a name without it cannot match, which
    /// settles most names without running the regex (routes are recomputed for every node that
    /// joins, against every topic).
    prefix: String,
    /// The whole pattern is literal: matching is equality.
    literal: bool,
    regex: Regex,
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subscription pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl Pattern {
    /// Compiles `text`.
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let fail = |reason: &str| PatternError {
            pattern: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(fail("it is empty; use `*` to receive every service"));
        }
        let mut source = String::from(r"(?s)\A");
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => source.push_str(".*"),
                '?' => source.push('.'),
                '[' => i = translate_set(&chars, i, &mut source).map_err(|r| fail(&r))?,
                c => source.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
            i += 1;
        }
        source.push_str(r"\z");
        let regex = Regex::new(&source).map_err(|e| fail(&e.to_string()))?;
        let literal_end = text.find(['*', '?', '[']);
        Ok(Self {
            text: text.to_owned(),
            prefix: text[..literal_end.unwrap_or(text.len())].to_owned(),
            literal: literal_end.is_none(),
            regex,
        })
    }

    /// Whether `service` (a whole service name) matches.
    pub fn matches(&self, service: &str) -> bool {
        if self.literal {
            return service == self.text;
        }
        service.starts_with(&self.prefix) && self.regex.is_match(service)
    }

    /// [`Pattern::matches`] without the prefix and literal shortcuts: the regex alone. The fuzz
    /// target `pattern` checks that both agree.
    pub(crate) fn matches_by_regex(&self, service: &str) -> bool {
        self.regex.is_match(service)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.text)
    }
}

/// Translates the set starting at `chars[open]` (a `[`); returns the index of its `]`.
fn translate_set(chars: &[char], open: usize, out: &mut String) -> Result<usize, String> {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let first = i;
    let mut members = String::new();
    while i < chars.len() && (chars[i] != ']' || i == first) {
        let low = chars[i];
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&c| c != ']') {
            let high = chars[i + 2];
            if high < low {
                return Err(format!("the range `{low}-{high}` is reversed"));
            }
            members.push_str(&format!(r"\x{{{:x}}}-\x{{{:x}}}", low as u32, high as u32));
            i += 3;
        } else {
            members.push_str(&format!(r"\x{{{:x}}}", low as u32));
            i += 1;
        }
    }
    if i >= chars.len() {
        return Err(format!(
            "the `[` at character {} is never closed with `]`",
            open + 1
        ));
    }
    out.push('[');
    if negated {
        out.push('^');
    }
    out.push_str(&members);
    out.push(']');
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_table() {
        let table: &[(&str, &str, bool)] = &[
            ("bat-signal-*", "bat-signal-main", true),
            ("bat-signal-*", "bat-signal-", true),
            ("bat-signal-*", "Bat-Signal-main", false),
            ("bat-signal-*", "cat-signal", false),
            ("bat-signal-*", "the-bat-signal-main", false),
            ("*", "anything/at-all", true),
            ("*", "", true),
            ("a*z", "a/b-c/z", true),
            ("bat-signal-?", "bat-signal-1", true),
            ("bat-signal-?", "bat-signal-12", false),
            ("bat-signal-?", "bat-signal-", false),
            ("[bc]at", "bat", true),
            ("[bc]at", "cat", true),
            ("[bc]at", "rat", false),
            ("[a-c]at", "cat", true),
            ("[a-c]at", "dat", false),
            ("[!bc]at", "rat", true),
            ("[!bc]at", "bat", false),
            ("[]]x", "]x", true),
            ("[!]]x", "ax", true),
            ("[!]]x", "]x", false),
            ("[a-]", "-", true),
            ("a.c", "abc", false),
            ("a.c", "a.c", true),
            ("(x)+{1}", "(x)+{1}", true),
            ("sensor/temp", "sensor/temp", true),
            ("sensor/temp", "sensor/tempo", false),
            ("über-*", "über-signal", true),
            ("a\\b", "a\\b", true),
        ];
        for (pattern, name, expected) in table {
            let compiled = Pattern::new(pattern).unwrap();
            assert_eq!(
                compiled.matches(name),
                *expected,
                "pattern {pattern:?} against {name:?}"
            );
        }
    }

    #[test]
    fn invalid_patterns_are_refused_with_a_reason() {
        for (pattern, reason) in [
            ("", "empty"),
            ("bat-[signal", "never closed"),
            ("[z-a]", "reversed"),
            ("[!", "never closed"),
        ] {
            let error = Pattern::new(pattern).unwrap_err().to_string();
            assert!(error.contains(reason), "{pattern:?}: {error}");
            assert!(error.contains(&format!("`{pattern}`")), "{error}");
        }
    }

    proptest::proptest! {
        // Fuzzing, bounded: any text compiles or is refused, never panics.
        #[test]
        fn any_text_compiles_or_is_refused(text in ".{0,40}") {
            let _ = Pattern::new(&text);
        }

        #[test]
        fn a_pattern_without_wildcards_matches_only_itself(
            literal in "[a-zA-Z0-9/._{}()+^$|\\-]{1,20}",
            other in "[a-zA-Z0-9/._-]{0,20}",
        ) {
            let pattern = Pattern::new(&literal).unwrap();
            proptest::prop_assert!(pattern.matches(&literal));
            proptest::prop_assert_eq!(pattern.matches(&other), other == literal);
        }

        #[test]
        fn a_prefix_star_matches_exactly_what_starts_with_the_prefix(
            prefix in "[a-z-]{0,10}",
            name in "[a-z-]{0,20}",
        ) {
            let pattern = Pattern::new(&format!("{prefix}*")).unwrap();
            proptest::prop_assert_eq!(pattern.matches(&name), name.starts_with(&prefix));
        }
    }
}
