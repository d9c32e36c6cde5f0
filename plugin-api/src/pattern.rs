//! Subscription patterns (shell globs over service names), matched the way the host matches
//! them, for [`crate::testing`] to route a test's messages with no host.
//!
//! The rules are the host's (see [`Subscriptions::add_subscription`](crate::Subscriptions::add_subscription)):
//! the whole name must match, case-sensitively; `*` matches any run of characters, `?` one, `[abc]`
//! one listed, `[a-z]` one in the range, `[!abc]` one not listed, and a `]` first in a set is a
//! member. An empty pattern, a reversed range and an unclosed `[` are refused with the reason.

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

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `text`, or says why the host would refuse it.
    pub(crate) fn new(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the pattern is empty; use `*` to receive every service".to_owned());
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => tokens.push(Token::Any),
                '?' => tokens.push(Token::One),
                '[' => {
                    let (token, close) =
                        set(&chars, i).map_err(|reason| format!("pattern `{text}`: {reason}"))?;
                    tokens.push(token);
                    i = close;
                }
                c => tokens.push(Token::Literal(c)),
            }
            i += 1;
        }
        Ok(Self { tokens })
    }

    /// Whether the whole of `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let (mut t, mut n) = (0, 0);
        // The last `*` seen and the name position it was tried at: on a mismatch, that star
        // takes one more character. One backtrack point suffices, since `*` is the only token
        // that matches a variable length.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(t) {
                Some(Token::Any) => {
                    star = Some((t, n));
                    t += 1;
                    continue;
                }
                Some(token) if one_matches(token, name[n]) => {
                    t += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((star_t, star_n)) => {
                    t = star_t + 1;
                    n = star_n + 1;
                    star = Some((star_t, star_n + 1));
                }
                None => return false,
            }
        }
        self.tokens[t..].iter().all(|token| *token == Token::Any)
    }
}

fn one_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Any | Token::One => true,
        Token::Literal(l) => *l == c,
        Token::Set { negated, ranges } => {
            ranges.iter().any(|&(low, high)| low <= c && c <= high) != *negated
        }
    }
}

/// Reads the set whose `[` is at `chars[open]`; returns it and the index of its `]`.
fn set(chars: &[char], open: usize) -> Result<(Token, usize), String> {
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
            open + 1
        ));
    }
    Ok((Token::Set { negated, ranges }, i))
}

#[cfg(test)]
mod tests {
    use super::Glob;

    fn matches(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).unwrap().matches(name)
    }

    #[test]
    fn globs_match_whole_names_as_the_host_does() {
        assert!(matches("bat-signal-*", "bat-signal-main"));
        assert!(matches("bat-signal-*", "bat-signal-"));
        assert!(!matches("bat-signal-*", "the-bat-signal-main"));
        assert!(matches("*", ""));
        assert!(matches("*-*-x", "a-b-c-x"));
        assert!(!matches("*-*-x", "a-b-c-y"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("[ab]x", "bx"));
        assert!(!matches("[!ab]x", "bx"));
        assert!(matches("[!ab]x", "cx"));
        assert!(matches("s[0-9]", "s7"));
        assert!(!matches("s[0-9]", "sx"));
        assert!(matches("[]]", "]"));
        assert!(matches("[a-]", "-"));
        assert!(!matches("Bat", "bat"), "case-sensitive");
        assert!(matches("*a*a*a", "aaaa"));
        assert!(!matches("*a*a*a", "aab"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        assert!(Glob::new("").unwrap_err().contains("empty"));
        assert!(Glob::new("[z-a]").unwrap_err().contains("reversed"));
        assert!(Glob::new("bat-[ab").unwrap_err().contains("never closed"));
    }
}
