//! Subscription patterns: shell globs over service names, with the original hivemind's
//! `fnmatch` semantics. The one matcher of the project: the host's bus routes with it, and
//! [`crate::testing`] routes a test's messages with it (re-exported as
//! [`names::Pattern`](crate::names::Pattern)).
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

use std::fmt;

/// A compiled subscription pattern: a shell glob that matches whole service names.
///
/// ```
/// use hivemind::names::Pattern;
///
/// let pattern = Pattern::new("bat-signal-[0-9]*").unwrap();
/// assert!(pattern.matches("bat-signal-1"));
/// assert!(pattern.matches("bat-signal-42-north"));
/// assert!(!pattern.matches("bat-signal-main"));
/// assert!(!pattern.matches("the-bat-signal-1"), "the whole name must match");
/// assert_eq!(pattern.as_str(), "bat-signal-[0-9]*");
///
/// let typo = Pattern::new("bat-[signal").unwrap_err();
/// assert_eq!(
///     typo.to_string(),
///     "invalid subscription pattern `bat-[signal`: the `[` at character 5 is never closed with `]`"
/// );
/// ```
#[derive(Clone)]
pub struct Pattern {
    text: String,
    /// The literal text before the first wildcard: a name without it cannot match, which
    /// settles most names at once (routes are recomputed for every node that joins, against
    /// every topic).
    prefix: String,
    /// The pattern after [`Pattern::prefix`]; empty for a pattern without wildcards, which
    /// then matches exactly its own text.
    rest: Vec<Token>,
}

/// Why a subscription pattern was refused: the pattern and the reason, in its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid subscription pattern `{}`: {}",
            self.pattern, self.reason
        )
    }
}

impl std::error::Error for PatternError {}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, the empty one included.
    Any,
    /// `?`: exactly one character.
    One,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Set {
        negated: bool,
        /// Inclusive ranges; a single member is a range of one.
        ranges: Vec<(char, char)>,
    },
    /// Any other character, matched as itself.
    Literal(char),
}

impl Pattern {
    /// Compiles `text`, or says why it is refused (empty, an unclosed `[`, a reversed range).
    pub fn new(text: &str) -> Result<Self, PatternError> {
        let fail = |reason: String| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(fail(
                "it is empty; use `*` to receive every service".to_owned(),
            ));
        }
        let prefix_end = text.find(['*', '?', '[']).unwrap_or(text.len());
        let chars: Vec<char> = text[prefix_end..].chars().collect();
        // Character numbers in messages count from the pattern's start.
        let before = text[..prefix_end].chars().count();
        let mut rest = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => rest.push(Token::Any),
                '?' => rest.push(Token::One),
                '[' => {
                    let (token, close) = set(&chars, i, before).map_err(fail)?;
                    rest.push(token);
                    i = close;
                }
                c => rest.push(Token::Literal(c)),
            }
            i += 1;
        }
        Ok(Self {
            text: text.to_owned(),
            prefix: text[..prefix_end].to_owned(),
            rest,
        })
    }

    /// Whether `service` (a whole service name) matches.
    pub fn matches(&self, service: &str) -> bool {
        service
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| matches_tokens(&self.rest, rest))
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

/// Whether the whole of `name` matches `tokens`.
fn matches_tokens(tokens: &[Token], name: &str) -> bool {
    // `t` indexes tokens, `n` is a byte offset into `name`. `star` is the token after the last
    // `*` seen and the offset that star's run ends at so far: on a mismatch, the star takes one
    // more character and matching resumes after it. One backtrack point suffices, since `*` is
    // the only token that matches a variable length.
    let (mut t, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = name[n..].chars().next() {
        match tokens.get(t) {
            Some(Token::Any) => {
                t += 1;
                star = Some((t, n));
                continue;
            }
            Some(token) if one_matches(token, c) => {
                t += 1;
                n += c.len_utf8();
                continue;
            }
            _ => {}
        }
        let Some((after, at)) = star else {
            return false;
        };
        // `at <= n < name.len()`: the star's run can take one more character.
        let taken = name[at..].chars().next().map_or(1, char::len_utf8);
        star = Some((after, at + taken));
        t = after;
        n = at + taken;
    }
    tokens[t..].iter().all(|token| *token == Token::Any)
}

/// Whether the single-character `token` (not `*`) accepts `c`.
fn one_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Any | Token::One => true,
        Token::Literal(literal) => *literal == c,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
        }
    }
}

/// Reads the set whose `[` is at `chars[open]`; returns it and the index of its `]`. `before`
/// is the number of characters of the pattern before `chars`.
fn set(chars: &[char], open: usize, before: usize) -> Result<(Token, usize), String> {
    let mut i = open + 1;
    let negated = chars.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let first = i;
    let mut ranges = Vec::new();
    while i < chars.len() && (chars[i] != ']' || i == first) {
        let low = chars[i];
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&c| c != ']') {
            let high = chars[i + 2];
            if high < low {
                return Err(format!("the range `{low}-{high}` is reversed"));
            }
            ranges.push((low, high));
            i += 3;
        } else {
            ranges.push((low, low));
            i += 1;
        }
    }
    if i >= chars.len() {
        return Err(format!(
            "the `[` at character {} is never closed with `]`",
            before + open + 1
        ));
    }
    Ok((Token::Set { negated, ranges }, i))
}

#[cfg(test)]
mod tests {
    use super::Pattern;

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
            ("*-*-x", "a-b-c-x", true),
            ("*-*-x", "a-b-c-y", false),
            ("*a*a*a", "aaaa", true),
            ("*a*a*a", "aab", false),
            ("*\n", "a\nb\n", true),
            ("bat-signal-?", "bat-signal-1", true),
            ("bat-signal-?", "bat-signal-12", false),
            ("bat-signal-?", "bat-signal-", false),
            ("a?c", "ac", false),
            ("?", "é", true),
            ("[bc]at", "bat", true),
            ("[bc]at", "cat", true),
            ("[bc]at", "rat", false),
            ("[a-c]at", "cat", true),
            ("[a-c]at", "dat", false),
            ("s[0-9]", "s7", true),
            ("s[0-9]", "sx", false),
            ("[!bc]at", "rat", true),
            ("[!bc]at", "bat", false),
            ("[]]x", "]x", true),
            ("[!]]x", "ax", true),
            ("[!]]x", "]x", false),
            ("[a-]", "-", true),
            ("[a-]", "b", false),
            ("a]", "a]", true),
            ("a.c", "abc", false),
            ("a.c", "a.c", true),
            ("(x)+{1}", "(x)+{1}", true),
            ("sensor/temp", "sensor/temp", true),
            ("sensor/temp", "sensor/tempo", false),
            ("sensor/temp", "sensor/tem", false),
            ("über-*", "über-signal", true),
            ("*-ü?", "x-üé", true),
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
        for (pattern, message) in [
            (
                "",
                "invalid subscription pattern ``: it is empty; use `*` to receive every service",
            ),
            (
                "bat-[signal",
                "invalid subscription pattern `bat-[signal`: the `[` at character 5 is never closed with `]`",
            ),
            (
                "ab*[x",
                "invalid subscription pattern `ab*[x`: the `[` at character 4 is never closed with `]`",
            ),
            (
                "[z-a]",
                "invalid subscription pattern `[z-a]`: the range `z-a` is reversed",
            ),
            (
                "[!",
                "invalid subscription pattern `[!`: the `[` at character 1 is never closed with `]`",
            ),
        ] {
            assert_eq!(Pattern::new(pattern).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn a_pattern_shows_as_written() {
        let pattern = Pattern::new("bat-*").unwrap();
        assert_eq!(pattern.as_str(), "bat-*");
        assert_eq!(format!("{pattern:?}"), "Pattern(\"bat-*\")");
    }
}
