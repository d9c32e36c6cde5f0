//! Scaffolding: makes new hives (`hm new`) and adds node crates to them (`hm create_node`).
//!
//! A hive is a Cargo workspace that builds with plain `cargo build`:
//!
//! ```text
//! gotham/
//! ├── Cargo.toml          virtual workspace; `members` lists the node crates
//! ├── config/hive.toml    the hive's settings, and one `[nodes.NAME]` table per node
//! ├── nodes/NAME/         one cdylib crate per node, rendered from `plugin-template/`
//! ├── static/             served under /static/ by the hive's web page
//! ├── vendor/hivemind/    the node API crate (`plugin-api/`), copied from this `hm`
//! ├── README.md
//! └── .gitignore
//! ```
//!
//! The API crate and the node template are compiled into `hm` (see `embedded`), so a hive is
//! built against exactly the API of the `hm` that made it.

mod embedded;
pub(crate) mod files;
mod hive;
mod names;
mod node;

pub(crate) use hive::{find_hive_root, new_hive};
pub(crate) use node::create_node;
