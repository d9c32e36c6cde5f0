//! Fuzzes subscription patterns: any text compiles or is refused, never a panic, and a compiled
//! pattern decides every service name as two reference matchers written here from the
//! documented glob rules do: a table of states, and a regex translated from the same tokens.
//! `Pattern::matches` (the node API's matcher, which the host's bus and `hivemind::testing`
//! both use) takes a literal-prefix shortcut first; the references take none. The reference
//! also says which texts are refused (empty, an unclosed `[`, a reversed range), and
//! `Pattern::new` must agree.
//!
//! Input: the pattern's bytes, then a 0xFF byte (never part of UTF-8), then the service name's
//! bytes; both read as UTF-8 with invalid sequences replaced. Each pattern is also tried against
//! its own text, a name built to match it, and its literal prefix followed by the name (which
//! passes the prefix shortcut, so the rest of the matcher decides), since random names rarely
//! match random patterns.

#![no_main]

use hivemind::names::Pattern;
use libfuzzer_sys::fuzz_target;
use regex::Regex;

/// One element of a glob, as the documentation of `hivemind::names::Pattern` describes them.
enum Token {
    /// `*`: any run of characters, empty included.
    Star,
    /// `?`: exactly one character.
    One,
    /// `[...]` or `[!...]`: one character in (or, negated, not in) the inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// Any other character: itself.
    Char(char),
}

/// Reads a glob into tokens; `None` where `Pattern::new` must refuse it.
fn tokens(pattern: &str) -> Option<Vec<Token>> {
    if pattern.is_empty() {
        return None;
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '[' => {
                let negated = chars.get(i + 1) == Some(&'!');
                let start = i + 1 + usize::from(negated);
                // A `]` first in the set is a member; the next `]` closes it.
                let close = (start + 1..chars.len()).find(|&k| chars[k] == ']')?;
                let members = &chars[start..close];
                let mut ranges = Vec::new();
                let mut k = 0;
                while k < members.len() {
                    if k + 2 < members.len() && members[k + 1] == '-' {
                        if members[k + 2] < members[k] {
                            return None;
                        }
                        ranges.push((members[k], members[k + 2]));
                        k += 3;
                    } else {
                        ranges.push((members[k], members[k]));
                        k += 1;
                    }
                }
                out.push(Token::Set { negated, ranges });
                i = close;
            }
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    Some(out)
}

/// Whether the whole of `name` matches `tokens`: `reached[j]` says whether the tokens so far can
/// consume exactly the first `j` characters.
fn reference_matches(tokens: &[Token], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    let mut reached = vec![false; name.len() + 1];
    reached[0] = true;
    let mut next = reached.clone();
    for token in tokens {
        match token {
            Token::Star => {
                let mut any = false;
                for j in 0..=name.len() {
                    any |= reached[j];
                    next[j] = any;
                }
            }
            single => {
                next[0] = false;
                for j in 0..name.len() {
                    next[j + 1] = reached[j] && one_char_matches(single, name[j]);
                }
            }
        }
        std::mem::swap(&mut reached, &mut next);
    }
    reached[name.len()]
}

/// The regex that matches what `tokens` match: whole names, `.` matching newlines too.
fn reference_regex(tokens: &[Token]) -> Regex {
    let mut source = String::from(r"(?s)\A");
    for token in tokens {
        match token {
            Token::Star => source.push_str(".*"),
            Token::One => source.push('.'),
            Token::Set { negated, ranges } => {
                source.push('[');
                if *negated {
                    source.push('^');
                }
                for &(low, high) in ranges {
                    source.push_str(&format!(r"\x{{{:x}}}-\x{{{:x}}}", low as u32, high as u32));
                }
                source.push(']');
            }
            Token::Char(c) => source.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    source.push_str(r"\z");
    // Inputs are short (libFuzzer's default `-max_len`), far below the regex size limit.
    Regex::new(&source).unwrap_or_else(|e| panic!("the reference regex {source:?}: {e}"))
}

fn one_char_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Star => unreachable!("`*` is not a single character"),
        Token::One => true,
        Token::Set { negated, ranges } => {
            negated ^ ranges.iter().any(|&(low, high)| low <= c && c <= high)
        }
        Token::Char(literal) => *literal == c,
    }
}

/// A name the tokens should match (`*` empty, `?` and sets one fitting character), when one
/// is easy to find.
fn matching_name(tokens: &[Token]) -> Option<String> {
    const CANDIDATES: [char; 8] = ['a', '-', '0', ']', '\n', 'é', '\u{10ffff}', '\0'];
    let mut name = String::new();
    for token in tokens {
        match token {
            Token::Star => {}
            Token::One => name.push('x'),
            Token::Char(c) => name.push(*c),
            Token::Set { ranges, .. } => {
                let own = ranges.first().map(|&(low, _)| low);
                let c = own
                    .into_iter()
                    .chain(CANDIDATES)
                    .find(|&c| one_char_matches(token, c))?;
                name.push(c);
            }
        }
    }
    Some(name)
}

fuzz_target!(|data: &[u8]| {
    let (text, name) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let (text, name) = (String::from_utf8_lossy(text), String::from_utf8_lossy(name));
    let (text, name) = (text.as_ref(), name.as_ref());
    let reference = tokens(text);
    let pattern = match Pattern::new(text) {
        Ok(pattern) => pattern,
        Err(error) => {
            assert!(
                reference.is_none(),
                "{text:?} was refused but the glob rules accept it: {error}"
            );
            return;
        }
    };
    let reference =
        reference.unwrap_or_else(|| panic!("{text:?} compiled but the glob rules refuse it"));
    assert_eq!(pattern.as_str(), text);

    let prefix_end = text.find(['*', '?', '[']).unwrap_or(text.len());
    let mut names = vec![
        name.to_owned(),
        text.to_owned(),
        format!("{}{name}", &text[..prefix_end]),
    ];
    names.extend(matching_name(&reference));
    let regex = reference_regex(&reference);
    for name in &names {
        let matched = pattern.matches(name);
        let expected = reference_matches(&reference, name);
        assert_eq!(
            expected,
            regex.is_match(name),
            "{text:?} against {name:?}: the two references disagree"
        );
        assert_eq!(
            matched, expected,
            "{text:?} against {name:?}: Pattern vs glob rules"
        );
    }
});
