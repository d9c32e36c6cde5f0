//! `GET /static/{path}`: the hive's own `static/` files first, then the assets built into `hm`.
//!
//! The built-in assets (the dashboard's stylesheet, its scripts and its icon) are compiled into
//! the binary, so the pages work on a machine with no network. The scripts are ES modules with
//! static imports only: `app.js` (what every page shares), `schema-form.js`, and one module per
//! page under `pages/`, each importing the shared ones by relative path. A hive may override any of them by
//! putting a file of the same name in its `static/` folder. A path may not leave that folder:
//! `..`, `.`, empty segments, backslashes and NUL are refused with 400 before the disk is
//! touched, and a symbolic link that points outside it is refused with 403.

use super::reply::{error, percent_decode};
use std::path::{Path, PathBuf};
use warp::Reply as _;
use warp::http::{StatusCode, header};
use warp::reply::Response;

/// The assets built into `hm`: name (its path under `/static/`), content type, bytes.
const BUILT_IN: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "schema-form.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/schema-form.js"),
    ),
    (
        "pages/hive.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/hive.js"),
    ),
    (
        "pages/nodes.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/nodes.js"),
    ),
    (
        "pages/node.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/node.js"),
    ),
    (
        "pages/topics.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/topics.js"),
    ),
    (
        "pages/publish.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/publish.js"),
    ),
    (
        "pages/requests.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/pages/requests.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
];

/// Serves `tail` (the path after `/static/`, still percent-encoded).
pub(super) async fn serve(static_dir: PathBuf, tail: String) -> Response {
    let relative = match safe_relative(&tail) {
        Ok(relative) => relative,
        Err(reason) => return error(StatusCode::BAD_REQUEST, &reason),
    };
    let found = tokio::task::spawn_blocking(move || read_within(&static_dir, &relative)).await;
    match found {
        Ok(Ok(Some(bytes))) => return file(content_type(&tail), bytes),
        Ok(Err(refusal)) => return error(StatusCode::FORBIDDEN, &refusal),
        Ok(Ok(None)) | Err(_) => {}
    }
    match built_in(&tail) {
        Some((kind, bytes)) => file(kind, bytes.to_vec()),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("there is no file static/{tail} in this hive, nor a built-in one"),
        ),
    }
}

/// The built-in asset named `name` (its path under `/static/`): its content type and bytes.
pub(super) fn built_in(name: &str) -> Option<(&'static str, &'static [u8])> {
    BUILT_IN
        .iter()
        .find(|(built_in, _, _)| *built_in == name)
        .map(|(_, kind, bytes)| (*kind, *bytes))
}

fn file(kind: &str, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(bytes.into());
    let headers = response.headers_mut();
    if let Ok(kind) = kind.parse() {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    headers.insert(header::CACHE_CONTROL, "no-cache".parse().expect("valid"));
    response.into_response()
}

/// The decoded path as plain segments, or why it is refused.
fn safe_relative(tail: &str) -> Result<PathBuf, String> {
    let decoded = percent_decode(tail).ok_or_else(|| {
        format!("static/{tail} is not a valid path: its percent-encoding does not decode to UTF-8")
    })?;
    let mut path = PathBuf::new();
    for segment in decoded.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." || segment.contains(['\\', '\0'])
        {
            return Err(format!(
                "static/{decoded} is not a plain path inside static/: no `..`, `.`, empty parts or backslashes"
            ));
        }
        path.push(segment);
    }
    Ok(path)
}

/// Reads `static_dir/relative` if it is a file really inside `static_dir`.
fn read_within(static_dir: &Path, relative: &Path) -> Result<Option<Vec<u8>>, String> {
    let candidate = static_dir.join(relative);
    if !candidate.is_file() {
        return Ok(None);
    }
    let (Ok(base), Ok(real)) = (static_dir.canonicalize(), candidate.canonicalize()) else {
        return Ok(None);
    };
    if !real.starts_with(&base) {
        return Err(format!(
            "static/{} leads outside the hive's static/ folder",
            relative.display()
        ));
    }
    Ok(std::fs::read(real).ok())
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e);
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" | "md" | "log" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The modules the built-in module `name` imports, as paths under `/static/` (its
/// `import ... from './x.js'` lines resolved against its own folder). The pages' tests use it
/// to check that a page preloads all its module imports.
#[cfg(test)]
pub(super) fn module_imports(name: &str) -> Vec<String> {
    let text = std::str::from_utf8(built_in(name).expect("a built-in module").1).expect("UTF-8");
    let folder: Vec<&str> = name
        .rsplit_once('/')
        .map_or_else(Vec::new, |(folder, _)| folder.split('/').collect());
    text.lines()
        .filter(|line| line.starts_with("import "))
        .map(|line| {
            let spec = line
                .rsplit_once(" from '")
                .and_then(|(_, rest)| rest.strip_suffix("';"))
                .unwrap_or_else(|| panic!("{name}: an import this test cannot read: {line}"));
            let mut path = folder.clone();
            for part in spec.split('/') {
                match part {
                    "." => {}
                    ".." => {
                        path.pop()
                            .unwrap_or_else(|| panic!("{name}: {spec} leaves /static/"));
                    }
                    part => path.push(part),
                }
            }
            path.join("/")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_are_modules_whose_static_imports_are_all_built_in() {
        let scripts: Vec<&str> = BUILT_IN
            .iter()
            .filter(|(name, _, _)| name.ends_with(".js"))
            .map(|(name, kind, _)| {
                assert_eq!(*kind, "text/javascript; charset=utf-8", "{name}");
                *name
            })
            .collect();
        assert!(scripts.contains(&"app.js") && scripts.contains(&"pages/node.js"));
        for name in scripts {
            let text = std::str::from_utf8(built_in(name).unwrap().1).unwrap();
            // Static imports only: a dynamic one would load after the page, in a waterfall.
            assert!(!text.contains("import("), "{name} imports dynamically");
            for import in module_imports(name) {
                assert!(
                    built_in(&import).is_some(),
                    "{name} imports {import}, which is not built in"
                );
            }
        }
        assert_eq!(
            module_imports("pages/publish.js"),
            ["app.js", "schema-form.js"]
        );
        assert_eq!(module_imports("schema-form.js"), ["app.js"]);
    }

    #[test]
    fn only_plain_paths_inside_static_are_accepted() {
        assert_eq!(
            safe_relative("css/site.css").unwrap(),
            Path::new("css/site.css")
        );
        assert_eq!(safe_relative("a%20b.txt").unwrap(), Path::new("a b.txt"));
        for bad in [
            "../config/hive.toml",
            "%2e%2e/config/hive.toml",
            "a/../../x",
            "./x",
            "a//b",
            "",
            "a%5c..%5cx",
            "a%00",
            "%2F",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_link_out_of_static_is_refused() {
        let hive = tempfile::tempdir().unwrap();
        let static_dir = hive.path().join("static");
        std::fs::create_dir(&static_dir).unwrap();
        std::fs::write(hive.path().join("secret.txt"), "key").unwrap();
        std::fs::write(static_dir.join("ok.txt"), "fine").unwrap();
        std::os::unix::fs::symlink(hive.path().join("secret.txt"), static_dir.join("link.txt"))
            .unwrap();
        assert_eq!(
            read_within(&static_dir, Path::new("ok.txt")).unwrap(),
            Some(b"fine".to_vec())
        );
        assert!(read_within(&static_dir, Path::new("link.txt")).is_err());
        assert_eq!(
            read_within(&static_dir, Path::new("none.txt")).unwrap(),
            None
        );
    }
}
