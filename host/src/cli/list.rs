//! `hm list`: the running hive's nodes as a table.

use super::send::Target;
use anyhow::Result;
use clap::Args;
use serde_json::Value;

/// Print the running hive's nodes: status, services, subscriptions and counters.
///
/// The hive is found from config/hive.toml of the hive you are in, or from --url.
#[derive(Debug, Args)]
pub(super) struct ListArgs {
    /// Print the JSON of GET /api/nodes instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// Runs `hm list`.
pub(super) fn run(args: ListArgs) -> Result<()> {
    let hive = args.target.hive()?;
    let nodes = hive.get("/api/nodes")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(());
    }
    print!("{}", table(nodes.as_array().map_or(&[][..], Vec::as_slice)));
    Ok(())
}

const HEADERS: [&str; 8] = [
    "NODE",
    "STATUS",
    "SERVICES",
    "SUBSCRIPTIONS",
    "SENT",
    "DELIVERED",
    "DROPPED",
    "LOADED",
];

/// The nodes as aligned columns, one line each; an empty hive says so.
fn table(nodes: &[Value]) -> String {
    if nodes.is_empty() {
        return "This hive has no nodes yet (hm create_node NAME adds one).\n".to_owned();
    }
    let sum = |node: &Value, list: &str, field: &str| -> u64 {
        node[list].as_array().map_or(0, |items| {
            items.iter().filter_map(|i| i[field].as_u64()).sum()
        })
    };
    let count = |node: &Value, list: &str| node[list].as_array().map_or(0, Vec::len);
    let rows: Vec<[String; 8]> = nodes
        .iter()
        .map(|node| {
            [
                node["name"].as_str().unwrap_or("?").to_owned(),
                node["status"].as_str().unwrap_or("?").to_owned(),
                count(node, "services").to_string(),
                count(node, "subscriptions").to_string(),
                sum(node, "services", "sent").to_string(),
                sum(node, "subscriptions", "delivered").to_string(),
                sum(node, "subscriptions", "dropped").to_string(),
                // When the running instance was loaded; nothing for a node not running.
                match node["status"].as_str() {
                    Some("running") => node["loaded_at"].as_str().unwrap_or("-").to_owned(),
                    _ => "-".to_owned(),
                },
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADERS.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            // Names and words to the left, counts to the right.
            let numeric = (2..7).contains(&i);
            if numeric {
                line.push_str(&format!("{cell:>width$}  "));
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_table_with_aligned_columns() {
        let nodes = [
            json!({"name": "batman", "status": "running", "services": [],
                   "subscriptions": [{"pattern": "bat-*", "delivered": 12, "dropped": 1}],
                   "loaded_at": "2026-11-28T02:42:44Z"}),
            json!({"name": "batsignal", "status": "disabled", "services": [{"name": "s", "sent": 7}],
                   "subscriptions": [], "loaded_at": "2026-11-28T02:40:00Z"}),
        ];
        let text = table(&nodes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "NODE       STATUS    SERVICES  SUBSCRIPTIONS  SENT  DELIVERED  DROPPED  LOADED"
        );
        assert_eq!(
            lines[1],
            "batman     running          0              1     0         12        1  2026-11-28T02:42:44Z"
        );
        assert_eq!(
            lines[2],
            "batsignal  disabled         1              0     7          0        0  -"
        );
    }

    #[test]
    fn an_empty_hive_says_so() {
        assert!(table(&[]).contains("no nodes"));
    }
}
