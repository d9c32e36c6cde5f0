//! `hm send`: publish a JSON payload on a service through a running hive's HTTP API; and how
//! `hm send` and `hm list` find that hive.

use crate::{config, scaffold, web};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::io::Read as _;
use std::net::IpAddr;
use std::time::Duration;

/// Publish a JSON payload on a service of the running hive, as if a node had sent it.
///
/// Every subscription whose pattern matches SERVICE receives it; its sending node is `api`.
/// When the service declares a payload type, the hive checks the payload against it
/// ([messages] check_schemas: a warning, or a refusal naming the path and the reason).
/// The hive is found from config/hive.toml of the hive you are in ([hive] bind and port), or
/// from --url. Example: hm send bat-signal-main '"Batman! We need help!"'
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// The service name to publish on.
    service: String,
    /// The payload: any JSON value (quote it for the shell), or `-` to read it from stdin.
    json: String,
    #[command(flatten)]
    target: Target,
}

/// Where the running hive is.
#[derive(Debug, Args)]
pub(super) struct Target {
    /// The hive's address, like http://127.0.0.1:9476 (default: from config/hive.toml).
    #[arg(long, value_name = "URL", global = true)]
    url: Option<String>,
}

/// A running hive's API: its base URL and the key its changes need, if any.
pub(super) struct Hive {
    pub url: String,
    pub key: Option<String>,
    agent: ureq::Agent,
}

impl Target {
    /// Resolves the hive to talk to.
    pub(super) fn hive(&self) -> Result<Hive> {
        let here = std::env::current_dir()?;
        let root = scaffold::find_hive_root(&here);
        let config = root.as_ref().map_err(|e| anyhow::anyhow!("{e:#}")).and_then(|root| {
            config::load(root).map_err(|e| {
                anyhow::anyhow!(
                    "{e:#}\nhelp: this hive's config/hive.toml ({}) is broken: fix it, or pass the hive's address with --url http://HOST:PORT",
                    root.join("config/hive.toml").display()
                )
            })
        });
        // A hive that runs here says where it serves (also when its config says port 0).
        let marked = root
            .as_ref()
            .ok()
            .and_then(|root| super::running::find(root));
        let url = match (&self.url, &config, marked) {
            (Some(url), _, _) => url.trim_end_matches('/').to_owned(),
            (None, _, Some(running)) => running.url,
            (None, Ok(config), None) => {
                if config.port == 0 {
                    bail!(
                        "[hive] port in config/hive.toml is 0 (any free port), so the running hive's address is not known here; pass it with --url http://127.0.0.1:PORT (the hive prints it when it starts)"
                    );
                }
                let host = match config.bind {
                    IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
                    IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
                    IpAddr::V4(ip) => ip.to_string(),
                    IpAddr::V6(ip) => format!("[{ip}]"),
                };
                format!("http://{host}:{}", config.port)
            }
            (None, Err(e), None) if root.is_ok() => {
                return Err(anyhow::anyhow!("{e:#}"))
                    .context("cannot tell where the hive runs: its config is broken");
            }
            (None, Err(e), None) => {
                return Err(anyhow::anyhow!("{e:#}")).context(
                    "cannot tell where the hive runs: run this inside the hive's folder, or pass --url http://HOST:PORT",
                );
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Ok(Hive {
            url,
            key: config
                .ok()
                .and_then(|c| c.key.map(|k| k.reveal().to_owned())),
            agent,
        })
    }
}

impl Hive {
    /// The same hive, waiting up to `limit` for an answer (a request's timeout, and more).
    pub(super) fn waiting(mut self, limit: Duration) -> Self {
        self.agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(limit))
            .build()
            .into();
        self
    }

    /// A JSON POST to `path`, carrying the hive key when the hive has one.
    fn posting(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        match &self.key {
            Some(key) => request.header(web::KEY_HEADER, key),
            None => request,
        }
    }

    /// POSTs `body` (JSON text) to `path`, with the key if any; returns the status and the
    /// JSON answer whatever the status (an error only if the hive is not reachable).
    pub(super) fn post_status(&self, path: &str, body: &str) -> Result<(u16, serde_json::Value)> {
        let mut response = self.posting(path).send(body).map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the hive at {}: {e}\nhelp: is it running (hm dev or hm run)? Pass its address with --url if it runs elsewhere",
                self.url
            )
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read the hive's answer from {}", self.url))?;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| serde_json::json!({ "error": text.trim() }));
        Ok((status, value))
    }

    /// GETs `path` and returns the JSON answer, or an error that says what went wrong.
    pub(super) fn get(&self, path: &str) -> Result<serde_json::Value> {
        // Beyond loopback, reads need the key too.
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if let Some(key) = &self.key {
            request = request.header(web::KEY_HEADER, key);
        }
        let response = request.call();
        self.answer(response)
    }

    /// PUTs `body` (JSON text) to `path`, with the hive key when the hive has one.
    pub(super) fn put(&self, path: &str, body: &str) -> Result<serde_json::Value> {
        let request = self
            .agent
            .put(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        let request = match &self.key {
            Some(key) => request.header(web::KEY_HEADER, key),
            None => request,
        };
        self.answer(request.send(body))
    }

    /// POSTs `body` (JSON text) to `path`, with the hive key when the hive has one.
    pub(super) fn post(&self, path: &str, body: &str) -> Result<serde_json::Value> {
        let response = self.posting(path).send(body);
        self.answer(response)
    }

    fn answer(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<serde_json::Value> {
        let mut response = response.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the hive at {}: {e}\nhelp: is it running (hm dev or hm run)? Pass its address with --url if it runs elsewhere",
                self.url
            )
        })?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("cannot read the hive's answer from {}", self.url))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| serde_json::json!({ "error": text.trim() }));
        if !status.is_success() {
            let reason = value["error"].as_str().unwrap_or("no reason given");
            bail!("the hive at {} answered {status}: {reason}", self.url);
        }
        Ok(value)
    }
}

/// Runs `hm send`.
pub(super) fn run(args: SendArgs) -> Result<()> {
    let payload = if args.json == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the payload from stdin")?;
        text
    } else {
        args.json
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&payload) {
        bail!(
            "the payload is not valid JSON: {e}\nhelp: a string needs JSON quotes inside the shell's, like '\"Batman! We need help!\"'"
        );
    }
    let hive = args.target.hive()?;
    let answer = hive.post(
        &format!("/api/publish/{}", percent_encode(&args.service)),
        &payload,
    )?;
    println!("Published on `{}` ({} bytes).", args.service, payload.len());
    // `[messages] check_schemas = "warn"`: published, but not of the service's declared type.
    if let Some(warning) = answer["warning"].as_str() {
        eprintln!(
            "warning: {warning}\nhelp: GET /api/topics/{}/schema shows the type",
            percent_encode(&args.service)
        );
    }
    Ok(())
}

/// Percent-encodes everything but unreserved URL characters.
pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_encoded_for_the_path() {
        assert_eq!(percent_encode("bat-signal-main"), "bat-signal-main");
        assert_eq!(percent_encode("a b/c?*"), "a%20b%2Fc%3F%2A");
        assert_eq!(percent_encode("蝙"), "%E8%9D%99");
    }
}
