//! The house stays drawn: no import circle between the modules of `host/src` or `plugin-api/src`.
//!
//! The rule (docs/ARCHITECTURE.md): at every level of the module tree, the children of one module
//! use each other one way only. A file depends on another when it names an item of it through a
//! path (`crate::bus::Message`, `super::Slot`, `self::wire::Frame`, `child::f()`, `use` trees
//! included). A module's own file may use its descendants (it declares and composes them) and a
//! descendant may use the items of its ancestors' own files (the contract they state); every
//! other dependency runs between two sibling subtrees of their nearest common ancestor, and those
//! must form no circle. Test-only code (`#[cfg(test)]` modules, inline or in files) is left out.
//!
//! The check reads the sources as text (comments, strings and character literals removed), so it
//! needs no compiler; it fails with the circle and, for each arrow in it, one file and path that
//! makes the arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A module path, `[]` for the crate root.
type ModPath = Vec<String>;

/// One file's module and what it names.
struct SourceFile {
    file: PathBuf,
    /// Paths named in the file, each with the line it is on.
    paths: Vec<(Vec<String>, usize)>,
    /// Names this module re-exports (`pub use a::b::C;`, `pub(crate) use ... as D;`), with the
    /// path they stand for: a path through a re-export leads to the module that defines it.
    reexports: BTreeMap<String, Vec<String>>,
}

/// The crate's modules, each with the file that holds it (test-only modules left out).
fn modules(src: &Path) -> BTreeMap<ModPath, SourceFile> {
    let mut out = BTreeMap::new();
    let root = if src.join("lib.rs").exists() {
        src.join("lib.rs")
    } else {
        src.join("main.rs")
    };
    visit(src, &root, Vec::new(), &mut out);
    out
}

/// Adds the module in `file` (module path `path`) and, through its `mod x;` lines, its children.
fn visit(src: &Path, file: &Path, path: ModPath, out: &mut BTreeMap<ModPath, SourceFile>) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = strip(&text);
    let tokens = tokenize(&code);
    let (declared, tokens) = declared_modules(&tokens);
    // Where this module's children live: beside mod.rs/lib.rs, or in a folder named after it.
    let folder = if matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("mod.rs" | "lib.rs" | "main.rs")
    ) {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    let children: BTreeSet<String> = declared.iter().cloned().collect();
    let (paths, reexports) = paths_named(&tokens, &children);
    out.insert(
        path.clone(),
        SourceFile {
            file: file.strip_prefix(src).unwrap_or(file).to_path_buf(),
            paths,
            reexports,
        },
    );
    for name in declared {
        let child = if folder.join(format!("{name}.rs")).exists() {
            folder.join(format!("{name}.rs"))
        } else {
            folder.join(&name).join("mod.rs")
        };
        let mut child_path = path.clone();
        child_path.push(name);
        visit(src, &child, child_path, out);
    }
}

/// Removes comments, string literals and character literals (keeping line breaks, so that line
/// numbers stay true), and `#[cfg(test)]` items declared inline.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only the former
            // closes within a few characters.
            let close = if next == Some('\\') {
                (i + 2..(i + 12).min(b.len())).find(|&j| b[j] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    out.push_str("' '");
                    i = j + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    remove_test_items(&out)
}

/// Blanks `#[cfg(test)]` items with a body (`mod tests { ... }`), keeping line breaks.
fn remove_test_items(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let rest = &out[at..];
        let brace = rest.find('{');
        let semi = rest.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => None, // `mod tests;`: handled by declared_modules
            (Some(b), _) => {
                let mut depth = 0usize;
                let mut end = None;
                for (k, ch) in rest[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(at + b + k + 1);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => None,
        };
        match end {
            Some(end) => {
                let blank: String = out[at..end]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect();
                out.replace_range(at..end, &blank);
                from = at + blank.len();
            }
            None => from = at + 1,
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
    Other,
}

/// Tokens with their line numbers.
fn tokenize(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            // `r#type` and `$crate`: the identifier itself.
            out.push((Tok::Ident(word), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Punct("::"), line));
            i += 2;
        } else {
            let p = match c {
                '{' => Some("{"),
                '}' => Some("}"),
                ',' => Some(","),
                ';' => Some(";"),
                '*' => Some("*"),
                '#' => Some("#"),
                '[' => Some("["),
                ']' => Some("]"),
                '(' => Some("("),
                ')' => Some(")"),
                '=' => Some("="),
                _ => None,
            };
            out.push((p.map_or(Tok::Other, Tok::Punct), line));
            i += 1;
        }
    }
    out
}

/// The `mod name;` declarations, leaving out those marked
/// `#[cfg(test)]`; and the tokens without the declarations.
fn declared_modules(tokens: &[(Tok, usize)]) -> (Vec<String>, Vec<(Tok, usize)>) {
    let mut declared = Vec::new();
    let mut rest = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let is_mod = tokens[i].0 == Tok::Ident("mod".into())
            && matches!(tokens.get(i + 1), Some((Tok::Ident(_), _)))
            && tokens.get(i + 2).map(|t| &t.0) == Some(&Tok::Punct(";"));
        if is_mod {
            let Tok::Ident(name) = &tokens[i + 1].0 else {
                unreachable!()
            };
            // Look back over attributes for cfg(test) (a `path` attribute's string is blanked,
            // so a module with one would be missed: none uses it).
            let mut k = rest.len();
            let mut test_only = false;
            while k > 0 {
                let (t, _) = &rest[k - 1];
                if matches!(t, Tok::Ident(w) if w == "pub" || w == "crate" || w == "super" || w == "in")
                    || matches!(t, Tok::Punct("(" | ")"))
                {
                    k -= 1;
                    continue;
                }
                if *t == Tok::Punct("]") {
                    // An attribute: find its start.
                    let mut j = k - 1;
                    while j > 0 && rest[j].0 != Tok::Punct("#") {
                        j -= 1;
                    }
                    let words: Vec<&str> = rest[j..k]
                        .iter()
                        .filter_map(|(t, _)| match t {
                            Tok::Ident(w) => Some(w.as_str()),
                            _ => None,
                        })
                        .collect();
                    if words == ["cfg", "test"] {
                        test_only = true;
                    }
                    k = j;
                    continue;
                }
                break;
            }
            if !test_only {
                declared.push(name.clone());
            }
            // The declaration's attributes and visibility go with it.
            rest.truncate(k);
            i += 3;
        } else {
            rest.push(tokens[i].clone());
            i += 1;
        }
    }
    (declared, rest)
}

/// The paths a module's tokens name, each with its line.
type Named = Vec<(Vec<String>, usize)>;

/// Every path the tokens name that can lead to another module of the crate (`use` trees in
/// full, and other paths that start with `crate`, `super`, `self` or a child module's name), and
/// the names the module re-exports.
fn paths_named(
    tokens: &[(Tok, usize)],
    children: &BTreeSet<String>,
) -> (Named, BTreeMap<String, Vec<String>>) {
    let mut out = Vec::new();
    let mut reexports = BTreeMap::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].0 {
            Tok::Ident(w) if w == "use" => {
                let line = tokens[i].1;
                // `pub use`, `pub(crate) use`, `pub(super) use`, `pub(in path) use`.
                let public = tokens[..i]
                    .iter()
                    .rev()
                    .take(6)
                    .take_while(|(t, _)| !matches!(t, Tok::Punct(";" | "}" | "{" | "]")))
                    .any(|(t, _)| *t == Tok::Ident("pub".into()));
                let mut j = i + 1;
                let mut paths = Vec::new();
                use_tree(tokens, &mut j, Vec::new(), &mut paths);
                for (path, name) in paths {
                    if public && name != "*" && name != "_" {
                        reexports.insert(name, path.clone());
                    }
                    out.push((path, line));
                }
                i = j;
            }
            Tok::Ident(w) => {
                let starts = w == "crate" || w == "super" || w == "self" || children.contains(w);
                let after_colons = i > 0 && tokens[i - 1].0 == Tok::Punct("::");
                if starts
                    && !after_colons
                    && tokens.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct("::"))
                {
                    let line = tokens[i].1;
                    let mut path = vec![w.clone()];
                    let mut j = i + 1;
                    while tokens.get(j).map(|t| &t.0) == Some(&Tok::Punct("::")) {
                        match tokens.get(j + 1) {
                            Some((Tok::Ident(seg), _)) => {
                                path.push(seg.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    out.push((path, line));
                    i = j;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    (out, reexports)
}

/// Reads one use tree at `tokens[*j]`, adding the full paths it names under `prefix`, each with
/// the name it brings into scope (its alias, its last segment, or `*`).
fn use_tree(
    tokens: &[(Tok, usize)],
    j: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    let mut path = prefix;
    let named = |path: Vec<String>| {
        let name = match path.last().map(String::as_str) {
            Some("self") => path.iter().rev().nth(1).cloned().unwrap_or_default(),
            Some(last) => last.to_owned(),
            None => String::new(),
        };
        (path, name)
    };
    loop {
        match tokens.get(*j).map(|t| &t.0) {
            Some(Tok::Ident(w)) if w == "as" => {
                let alias = match tokens.get(*j + 1) {
                    Some((Tok::Ident(a), _)) => a.clone(),
                    _ => String::new(),
                };
                *j += 2;
                out.push((path, alias));
                return;
            }
            Some(Tok::Ident(w)) => {
                path.push(w.clone());
                *j += 1;
            }
            Some(Tok::Punct("::")) => *j += 1,
            Some(Tok::Punct("{")) => {
                *j += 1;
                loop {
                    match tokens.get(*j).map(|t| &t.0) {
                        Some(Tok::Punct("}")) => {
                            *j += 1;
                            break;
                        }
                        Some(Tok::Punct(",")) => *j += 1,
                        None => return,
                        _ => use_tree(tokens, j, path.clone(), out),
                    }
                }
                return;
            }
            Some(Tok::Punct("*")) => {
                *j += 1;
                out.push((path, "*".to_owned()));
                return;
            }
            _ => {
                // `,`, `}` or `;` end this branch; the caller consumes `,`/`}`.
                if tokens.get(*j).map(|t| &t.0) == Some(&Tok::Punct(";")) {
                    *j += 1;
                }
                out.push(named(path));
                return;
            }
        }
    }
}

/// The module a path names from inside module `here`: the module that defines the item, going
/// through re-exports; `None` for a path out of the crate.
fn resolve(
    here: &ModPath,
    path: &[String],
    kids: &BTreeMap<ModPath, BTreeSet<String>>,
    mods: &BTreeMap<ModPath, SourceFile>,
    depth: usize,
) -> Option<ModPath> {
    let children = kids.get(here);
    let (mut base, rest): (ModPath, &[String]) = match path.first().map(String::as_str) {
        Some("crate" | "$crate") => (Vec::new(), &path[1..]),
        Some("self") => (here.clone(), &path[1..]),
        Some("super") => {
            let mut base = here.clone();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        Some(first) if children.is_some_and(|c| c.contains(first)) => (here.clone(), path),
        _ => return None,
    };
    let mut used = 0;
    for seg in rest {
        base.push(seg.clone());
        if mods.contains_key(&base) {
            used += 1;
        } else {
            base.pop();
            break;
        }
    }
    // The next name may be one the module re-exports from elsewhere.
    if let Some(name) = rest.get(used)
        && depth < 8
        && let Some(target) = mods.get(&base).and_then(|m| m.reexports.get(name))
        && let Some(real) = resolve(&base, target, kids, mods, depth + 1)
    {
        return Some(real);
    }
    mods.contains_key(&base).then_some(base)
}

/// The circles in one crate, described; empty when there are none.
fn circles(src: &Path) -> Vec<String> {
    let mods = modules(src);
    // Children of each module, for resolving `child::x` paths.
    let mut kids: BTreeMap<ModPath, BTreeSet<String>> = BTreeMap::new();
    for m in mods.keys() {
        if let Some((last, parent)) = m.split_last() {
            kids.entry(parent.to_vec())
                .or_default()
                .insert(last.clone());
        }
    }
    // For each common ancestor: arrows between its child subtrees, with one example each.
    let mut levels: BTreeMap<ModPath, BTreeMap<(String, String), String>> = BTreeMap::new();
    for (here, source) in &mods {
        for (path, line) in &source.paths {
            let Some(target) = resolve(here, path, &kids, &mods, 0) else {
                continue;
            };
            if &target == here {
                continue;
            }
            let common = here.iter().zip(&target).take_while(|(a, b)| a == b).count();
            // An ancestor's own file using a descendant, or a descendant using an ancestor's
            // own file: allowed.
            if common == here.len() || common == target.len() {
                continue;
            }
            let ancestor = here[..common].to_vec();
            let from = here[common].clone();
            let to = target[common].clone();
            levels
                .entry(ancestor)
                .or_default()
                .entry((from, to))
                .or_insert_with(|| {
                    format!(
                        "{}:{line} names `{}`",
                        source.file.display(),
                        path.join("::")
                    )
                });
        }
    }
    let mut found = Vec::new();
    for (ancestor, arrows) in &levels {
        for cycle in cycles(arrows) {
            let mut text = format!(
                "circle among the children of `{}` in {}: {}\n",
                if ancestor.is_empty() {
                    "crate".to_owned()
                } else {
                    ancestor.join("::")
                },
                src.display(),
                cycle.join(" -> ")
            );
            for pair in cycle.windows(2) {
                let example = &arrows[&(pair[0].clone(), pair[1].clone())];
                let _ = writeln!(text, "    {} -> {}: {example}", pair[0], pair[1]);
            }
            found.push(text);
        }
    }
    found
}

/// One cycle (closed: first == last) through each strongly connected set of the arrows.
fn cycles(arrows: &BTreeMap<(String, String), String>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in arrows.keys() {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &str| -> BTreeMap<String, String> {
        // Breadth-first: each reached node with the node it was reached from.
        let mut seen = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from.to_owned()]);
        while let Some(n) = queue.pop_front() {
            for &m in next.get(n.as_str()).map_or(&[][..], Vec::as_slice) {
                if !seen.contains_key(m) {
                    seen.insert(m.to_owned(), n.clone());
                    queue.push_back(m.to_owned());
                }
            }
        }
        seen
    };
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in next.keys() {
        if reported.contains(start) {
            continue;
        }
        let seen = reach(start);
        if !seen.contains_key(start) {
            continue;
        }
        // Walk back from `start` to itself.
        let mut cycle = vec![start.to_owned()];
        let mut at = seen[start].clone();
        while at != start {
            cycle.push(at.clone());
            at = seen[&at].clone();
        }
        cycle.push(start.to_owned());
        cycle.reverse();
        reported.extend(cycle.iter().cloned());
        out.push(cycle);
    }
    out
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_host_has_no_import_circle() {
    let found = circles(&repo().join("host/src"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_plugin_api_has_no_import_circle() {
    let found = circles(&repo().join("plugin-api/src"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_finds_a_circle_and_allows_a_parent_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, text: &str| {
        let path = src.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "lib.rs",
        "mod a;\nmod b;\n#[cfg(test)]\nmod t;\npub use a::X;\n",
    );
    // a's own file and its child use each other: allowed.
    write(
        "a/mod.rs",
        "mod inner;\npub struct X;\nfn f() { inner::g(); }\n",
    );
    write(
        "a/inner.rs",
        "use super::X; // crate::b::Y in a comment\npub fn g() { let _s = \"crate::b::Z\"; }\n",
    );
    write("b.rs", "use crate::a::X;\npub struct Y;\n");
    write("t.rs", "use crate::b::Y;\nuse crate::a::X;\n");
    assert!(circles(src).is_empty(), "{:?}", circles(src));
    // a's child now names b, which names a: a circle between the siblings a and b.
    write(
        "a/inner.rs",
        "use super::X;\npub fn g() { crate::b::h(); }\n",
    );
    let found = circles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("a -> b -> a") || found[0].contains("b -> a -> b"),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("a/inner.rs:2 names `crate::b::h`"),
        "{}",
        found[0]
    );
    // A use tree with groups is read in full.
    write(
        "a/inner.rs",
        "use {super::X, crate::{b::{self, Y as _}}};\n",
    );
    assert_eq!(circles(src).len(), 1);
}
