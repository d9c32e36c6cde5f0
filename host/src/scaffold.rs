//! TEMPORARY stand-in until the scaffold module lands.
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
pub struct NewNode {
    pub name: String,
    pub type_name: String,
    pub dir: PathBuf,
}
pub fn new_hive(_name: &str, _dir: &Path) -> Result<PathBuf> {
    bail!("not yet")
}
pub fn create_node(_hive_root: &Path, _name: &str) -> Result<NewNode> {
    bail!("not yet")
}
pub fn find_hive_root(start: &Path) -> Result<PathBuf> {
    for dir in start.ancestors() {
        if dir.join("config/hive.toml").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!("not in a hive")
}
