//! The files `hm` carries inside its binary: the node API crate and the node template.
//!
//! Both are read at compile time with `include_str!`, so a hive made by this `hm` builds
//! against exactly the API it loads, from crates.io alone.

/// Embeds one file of `plugin-api/` as `(path inside the crate, contents)`.
macro_rules! api_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../plugin-api/", $path)))
    };
}

/// Every file of the node API crate (`plugin-api/`), copied verbatim into `vendor/hivemind/`.
///
/// A new file in `plugin-api/` must be listed here; a unit test fails until it is.
pub(super) const PLUGIN_API: &[(&str, &str)] = &[
    api_file!("Cargo.toml"),
    api_file!("src/abi.rs"),
    api_file!("src/current.rs"),
    api_file!("src/fixture.rs"),
    api_file!("src/glue/mod.rs"),
    api_file!("src/glue_tests.rs"),
    api_file!("src/lib.rs"),
    api_file!("src/log.rs"),
    api_file!("src/message.rs"),
    api_file!("src/names.rs"),
    api_file!("src/node.rs"),
    api_file!("src/outcome.rs"),
    api_file!("src/pattern.rs"),
    api_file!("src/request.rs"),
    api_file!("src/service.rs"),
    api_file!("src/store.rs"),
    api_file!("src/testing/drive.rs"),
    api_file!("src/testing/error.rs"),
    api_file!("src/testing/host.rs"),
    api_file!("src/testing/mod.rs"),
    api_file!("src/testing/node.rs"),
    api_file!("src/testing/records.rs"),
    api_file!("src/testing/store.rs"),
];

/// `plugin-template/Cargo.toml`: the manifest of a new node crate.
pub(super) const TEMPLATE_CARGO_TOML: &str = include_str!("../../../plugin-template/Cargo.toml");

/// `plugin-template/src/lib.rs`: the code of a new node crate.
pub(super) const TEMPLATE_LIB_RS: &str = include_str!("../../../plugin-template/src/lib.rs");

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::{Path, PathBuf};

    fn repo_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
    }

    /// Every file below `dir`, as `/`-separated paths relative to `base`.
    fn files_below(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_below(base, &path, out);
            } else {
                let relative = path.strip_prefix(base).unwrap();
                let parts: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
    }

    #[test]
    fn every_plugin_api_file_is_embedded_and_current() {
        let api = repo_dir("plugin-api");
        let mut on_disk = Vec::new();
        files_below(&api, &api, &mut on_disk);
        assert!(on_disk.contains(&"src/lib.rs".to_owned()), "{on_disk:?}");
        for file in &on_disk {
            let embedded = PLUGIN_API.iter().find(|(path, _)| path == file);
            let Some((_, contents)) = embedded else {
                panic!(
                    "plugin-api/{file} is not embedded: add `api_file!(\"{file}\")` to \
                     PLUGIN_API in host/src/scaffold/embedded.rs"
                );
            };
            assert_eq!(
                *contents,
                fs::read_to_string(api.join(file)).unwrap(),
                "plugin-api/{file} differs from the embedded copy"
            );
        }
        assert_eq!(on_disk.len(), PLUGIN_API.len(), "{on_disk:?}");
    }

    #[test]
    fn template_is_the_one_on_disk_and_holds_every_token() {
        let template = repo_dir("plugin-template");
        assert_eq!(
            TEMPLATE_CARGO_TOML,
            fs::read_to_string(template.join("Cargo.toml")).unwrap()
        );
        assert_eq!(
            TEMPLATE_LIB_RS,
            fs::read_to_string(template.join("src/lib.rs")).unwrap()
        );
        assert!(TEMPLATE_CARGO_TOML.contains("name = \"node_template\""));
        assert!(TEMPLATE_LIB_RS.contains("pub struct NodeTemplate"));
        assert!(TEMPLATE_LIB_RS.contains("hivemind::export_node!(NodeTemplate);"));
        assert!(TEMPLATE_LIB_RS.contains("hive_name"));
    }
}
