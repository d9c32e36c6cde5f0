//! BatSignal node for the example hive: calls for help every few seconds.

use hivemind::prelude::*;
use std::time::Duration;

/// Settings from `[nodes.batsignal]` in `config/hive.toml`.
#[derive(Deserialize)]
struct Settings {
    /// Seconds between two signals.
    #[serde(default = "default_interval")]
    interval_secs: f64,
}

fn default_interval() -> f64 {
    5.0
}

/// Shines the bat signal.
pub struct BatSignal {
    interval: Duration,
}

impl Node for BatSignal {
    fn new(context: &Context) -> Result<Self> {
        let settings: Settings = context.settings_as()?;
        let interval = Duration::try_from_secs_f64(settings.interval_secs)
            .map_err(|e| format!("interval_secs = {}: {e}", settings.interval_secs))?;
        Ok(BatSignal { interval })
    }

    fn services(&mut self, hive: &mut Services) {
        let interval = self.interval;
        // Declared as sending text: the hive's page offers a text field for it, and what is
        // published on it from outside is checked to be text.
        hive.add_typed_service::<String, _>("bat-signal-main", move |service: &Service| {
            // Send a signal to the big man himself.
            service.send("Batman! We need help!")?;
            info!("the bat signal is shining");
            // As lowly city folk, we can do nothing but wait for the next crisis.
            service.sleep_for(interval);
            Ok(Flow::Continue)
        });
    }
}

hivemind::export_node!(BatSignal);

#[cfg(test)]
mod tests {
    use super::*;
    use hivemind::testing::{TestErrorKind, TestNode};

    #[test]
    fn one_iteration_signals_once_and_waits_the_interval() {
        let mut node = TestNode::<BatSignal>::with_toml("interval_secs = 0.5").unwrap();
        assert_eq!(node.services(), ["bat-signal-main"]);
        assert_eq!(node.run_service("bat-signal-main").unwrap(), Flow::Continue);
        assert_eq!(
            node.sent_on("bat-signal-main"),
            [json!("Batman! We need help!")]
        );
        assert_eq!(node.sleeps(), [Duration::from_millis(500)]);
        assert_eq!(
            node.service_schema("bat-signal-main").unwrap()["type"],
            "string",
            "it declares what it sends"
        );
        assert!(
            node.logs()
                .iter()
                .any(|line| line.message == "the bat signal is shining")
        );
    }

    #[test]
    fn a_stopping_hive_ends_the_service_with_an_error() {
        let mut node = TestNode::<BatSignal>::new().unwrap();
        node.stop();
        let error = node.run_service("bat-signal-main").unwrap_err();
        assert_eq!(error.kind(), TestErrorKind::Failed);
        assert!(error.message().contains("stopping"), "{error}");
        assert!(node.sent().is_empty());
    }

    #[test]
    fn a_bad_interval_is_refused_with_the_setting_named() {
        let error = TestNode::<BatSignal>::with_toml("interval_secs = -1.0").unwrap_err();
        assert_eq!(error.kind(), TestErrorKind::Failed);
        assert!(error.message().contains("interval_secs = -1"), "{error}");
    }
}
