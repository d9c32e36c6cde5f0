//! Subscription patterns: the bus routes with the node API's matcher,
//! [`hivemind::names::Pattern`], so the host, `hivemind::testing` and the fuzz target share one
//! implementation of the glob rules (documented there). This module only names it for the bus
//! and checks, from the host's side, the properties routing relies on.

pub use hivemind::names::Pattern;

#[cfg(test)]
mod tests {
    use super::*;

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

        #[test]
        fn a_star_between_literals_matches_what_starts_and_ends_with_them(
            head in "[ab-]{0,4}",
            tail in "[ab-]{0,4}",
            name in "[ab-]{0,12}",
        ) {
            let pattern = Pattern::new(&format!("{head}*{tail}")).unwrap();
            let expected = name.len() >= head.len() + tail.len()
                && name.starts_with(&head)
                && name.ends_with(&tail);
            proptest::prop_assert_eq!(pattern.matches(&name), expected);
        }
    }
}
