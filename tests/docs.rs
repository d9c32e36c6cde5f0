//! The docs lead somewhere: every relative link in `README.md` and `docs/*.md` points to a file
//! or folder that exists, and every `#anchor` in them (in the same file or another Markdown
//! file) matches a heading there, by GitHub's slug rules. Every guide in `docs/` is one click
//! from the README. External links (`http:`, `https:`, `mailto:`) are not fetched.
//!
//! Links are read from the prose only: fenced code blocks and inline code spans are skipped, as
//! GitHub does not render links there.

use hivemind_tests::repo_root;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// A link as written: the file it is in, its line, and its target.
#[derive(Debug)]
struct Link {
    line: usize,
    target: String,
}

/// `text` with every fenced code block and every inline code span blanked out (newlines kept,
/// so that line numbers stay right).
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        match &fence {
            Some(open) if trimmed.starts_with(open.as_str()) => fence = None,
            Some(_) => {}
            None if marker.len() >= 3 => fence = Some(marker),
            None => {
                out.push_str(line);
                continue;
            }
        }
        out.push_str(if line.ends_with('\n') { "\n" } else { "" });
    }
    blank_code_spans(&out)
}

/// `text` with each inline code span (a run of N backticks up to the next run of exactly N)
/// replaced by spaces, newlines kept. A run with no closing run is left as it is.
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let open = run_at(i);
        let mut j = i + open;
        let close = loop {
            if j >= chars.len() {
                break None;
            }
            if chars[j] == '`' {
                let run = run_at(j);
                if run == open {
                    break Some(j);
                }
                j += run;
            } else {
                j += 1;
            }
        };
        match close {
            Some(end) => {
                for c in &chars[i..end + open] {
                    out.push(if *c == '\n' { '\n' } else { ' ' });
                }
                i = end + open;
            }
            None => {
                out.extend(&chars[i..i + open]);
                i += open;
            }
        }
    }
    out
}

/// Every inline link `[text](target)` in `text`'s prose, with its line.
fn links(text: &str) -> Vec<Link> {
    let prose = prose(text);
    let mut found = Vec::new();
    let mut rest = prose.as_str();
    let mut offset = 0;
    while let Some(at) = rest.find("](") {
        let start = at + 2;
        let tail = &rest[start..];
        let end = tail.find([')', ' ', '\n']).unwrap_or(tail.len());
        let target = tail[..end].trim_start_matches('<').trim_end_matches('>');
        let line = prose[..offset + at].matches('\n').count() + 1;
        if !target.is_empty() {
            found.push(Link {
                line,
                target: target.to_owned(),
            });
        }
        offset += start + end;
        rest = &prose[offset..];
    }
    found
}

/// GitHub's anchor for a heading's text: lowercase; every character that is not a letter, a
/// digit, a space, `-` or `_` dropped; each space then a `-`. A link in the heading counts by
/// its text.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` reads as `text`.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| open + m) else {
            break;
        };
        let Some(close) = rest[mid..].find(')').map(|c| mid + c) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..mid]);
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of `text`'s headings (ATX headings outside code), repeats numbered as GitHub
/// numbers them (`name`, `name-1`, `name-2`).
fn anchors(text: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        match &fence {
            Some(open) if trimmed.starts_with(open.as_str()) => {
                fence = None;
                continue;
            }
            Some(_) => continue,
            None if marker.len() >= 3 => {
                fence = Some(marker);
                continue;
            }
            None => {}
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        out.push(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

/// `path` with its `.` and `..` parts folded, without touching the disk.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The Markdown files under `root` whose links are checked: `README.md` and `docs/*.md`.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    files.extend(guides);
    files
}

/// Every broken link in the Markdown files under `root`, one sentence each.
fn broken_links(root: &Path) -> Vec<String> {
    let files = markdown_files(root);
    let texts: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|path| (path.clone(), std::fs::read_to_string(path).unwrap()))
        .collect();
    let mut heading_cache: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (file, text) in &texts {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for link in links(text) {
            let target = link.target.as_str();
            if ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| target.starts_with(scheme))
            {
                continue;
            }
            let (path_part, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target, None),
            };
            let place = format!("{shown}:{}: `{target}`", link.line);
            let linked = if path_part.is_empty() {
                file.clone()
            } else {
                normal(&file.parent().unwrap().join(path_part))
            };
            if !linked.exists() {
                problems.push(format!("{place}: no such file or folder"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if linked.extension().is_none_or(|e| e != "md") {
                problems.push(format!(
                    "{place}: an anchor into a file that is not Markdown"
                ));
                continue;
            }
            let headings = heading_cache.entry(linked.clone()).or_insert_with(|| {
                let text = texts
                    .get(&linked)
                    .cloned()
                    .unwrap_or_else(|| std::fs::read_to_string(&linked).unwrap_or_default());
                anchors(&text)
            });
            if !headings.iter().any(|h| h == anchor) {
                problems.push(format!(
                    "{place}: no heading has the anchor `#{anchor}` (its anchors: {})",
                    headings.join(", ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_leads_somewhere() {
    let problems = broken_links(&repo_root());
    assert!(
        problems.is_empty(),
        "broken links in the docs:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_guide_in_docs_is_one_click_from_the_readme() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let linked: Vec<PathBuf> = links(&readme)
        .iter()
        .map(|link| normal(&root.join(link.target.split('#').next().unwrap())))
        .collect();
    let unlinked: Vec<String> = markdown_files(&root)
        .into_iter()
        .skip(1)
        .filter(|guide| !linked.contains(guide))
        .map(|guide| guide.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        unlinked.is_empty(),
        "guides the README does not link: {unlinked:?}"
    );
}

#[test]
fn anchors_follow_githubs_slug_rules() {
    for (heading, anchor) in [
        ("# hivemind", "hivemind"),
        ("## Two commands", "two-commands"),
        (
            "## Configuration: `config/hive.toml`",
            "configuration-confighivetoml",
        ),
        (
            "## Works (issue 6, faults and bad input)",
            "works-issue-6-faults-and-bad-input",
        ),
        (
            "# Isolated nodes: `isolate = true`",
            "isolated-nodes-isolate--true",
        ),
        ("## A request's failures", "a-requests-failures"),
        ("### snake_case and-dashes", "snake_case-and-dashes"),
        ("## See [the guide](docs/NODES.md)", "see-the-guide"),
        ("## Größe", "größe"),
    ] {
        assert_eq!(anchors(heading), [anchor], "{heading}");
    }
    assert_eq!(
        anchors("## Notes\n\n```sh\n# not a heading\n```\n## Notes\n#no-space\n## Notes\n"),
        ["notes", "notes-1", "notes-2"]
    );
}

#[test]
fn links_in_code_are_not_links() {
    let text = "See [a](a.md) and `[b](b.md)` and ``x `[c](c.md)` y``,\n\
                ```rust\nlet x = [d](e);\n```\n\
                a span over `two\nlines [e](e.md)` then [f](f.md#g \"title\").\n";
    let found: Vec<(usize, String)> = links(text)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    assert_eq!(found, [(1, "a.md".to_owned()), (6, "f.md#g".to_owned())]);
}

#[test]
fn a_broken_file_link_or_anchor_is_reported() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("docs")).unwrap();
    std::fs::write(
        root.path().join("README.md"),
        "# Front\n\n## Two words\n\n[ok](#two-words) [guide](docs/GUIDE.md#part) \
         [gone](docs/GONE.md) [wrong](docs/GUIDE.md#nowhere) [self](#nothing)\n",
    )
    .unwrap();
    std::fs::write(
        root.path().join("docs/GUIDE.md"),
        "# Guide\n\n## Part\n\n[back](../README.md#front) [code](../src/main.rs#L3)\n",
    )
    .unwrap();
    let problems = broken_links(root.path());
    let expected = [
        "README.md:5: `docs/GONE.md`: no such file or folder",
        "README.md:5: `docs/GUIDE.md#nowhere`: no heading has the anchor `#nowhere`",
        "README.md:5: `#nothing`: no heading has the anchor `#nothing`",
        "docs/GUIDE.md:5: `../src/main.rs#L3`: no such file or folder",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(problem.starts_with(expected), "{problem} is not {expected}");
    }
}
