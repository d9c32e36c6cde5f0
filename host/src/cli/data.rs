//! `hm data`: read and change the running hive's node stores through its HTTP API
//! (`/api/nodes/{name}/store`, `/api/nodes/{name}/query`, `/api/backup`), as `hm call` asks
//! requests: same address, same key.

use super::send::{Target, percent_encode};
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::time::Duration;

/// Read and change the nodes' stores of the running hive, or back them all up.
///
/// Examples: hm data get batman saves; hm data put batman saves 3; hm data query batman
/// 'SELECT count(*) AS n FROM hm_kv'; hm data backup backups/monday
#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Print the value (JSON) of KEY in NODE's store; without KEY, every key with its value.
    Get {
        /// The node.
        node: String,
        /// The key; none: all keys, one `key value` line each.
        key: Option<String>,
    },
    /// Store VALUE (JSON: quote a string for the shell, like '"hi"') under KEY in NODE's store.
    Put {
        /// The node.
        node: String,
        /// The key.
        key: String,
        /// The value, as JSON.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Run a read-only SQL statement on NODE's store; prints one JSON object per row.
    Query {
        /// The node.
        node: String,
        /// The statement (SELECT ..., or a PRAGMA that only reads).
        sql: String,
    },
    /// Copy every node's store into DIR (one NODE.db each), consistent while the hive runs.
    Backup {
        /// The folder (made if missing). A relative path is taken from this folder.
        dir: std::path::PathBuf,
    },
}

/// Runs `hm data`.
pub(crate) fn run(args: DataArgs) -> Result<()> {
    let hive = args.target.hive()?.waiting(Duration::from_secs(120));
    match args.command {
        DataCommand::Get {
            node,
            key: Some(key),
        } => {
            let value = hive.get(&format!(
                "/api/nodes/{}/store/{}",
                percent_encode(&node),
                percent_encode(&key)
            ))?;
            println!("{}", value["value"]);
        }
        DataCommand::Get { node, key: None } => {
            let mut after: Option<String> = None;
            loop {
                let mut path = format!("/api/nodes/{}/store?limit=1000", percent_encode(&node));
                if let Some(after) = &after {
                    path.push_str(&format!("&after={}", percent_encode(after)));
                }
                let page = hive.get(&path)?;
                for entry in page["entries"].as_array().into_iter().flatten() {
                    println!(
                        "{} {}",
                        entry["key"].as_str().unwrap_or_default(),
                        entry["value"]
                    );
                }
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
        }
        DataCommand::Put { node, key, value } => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&value) {
                bail!(
                    "the value is not valid JSON: {e}\nhelp: a string needs JSON quotes inside the shell's, like '\"hi\"'"
                );
            }
            hive.put(
                &format!(
                    "/api/nodes/{}/store/{}",
                    percent_encode(&node),
                    percent_encode(&key)
                ),
                &value,
            )?;
        }
        DataCommand::Query { node, sql } => {
            let answer = hive.get(&format!(
                "/api/nodes/{}/query?sql={}",
                percent_encode(&node),
                percent_encode(&sql)
            ))?;
            for row in answer["rows"].as_array().into_iter().flatten() {
                println!("{row}");
            }
        }
        DataCommand::Backup { dir } => {
            let dir = std::path::absolute(&dir)?;
            let answer = hive.post(
                &format!("/api/backup?dir={}", percent_encode(&dir.to_string_lossy())),
                "",
            )?;
            let nodes: Vec<&str> = answer["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .collect();
            println!(
                "backed up {} store(s) to {}: {}",
                nodes.len(),
                dir.display(),
                if nodes.is_empty() {
                    "(no node has stored anything yet)".to_owned()
                } else {
                    nodes.join(", ")
                }
            );
        }
    }
    Ok(())
}
