//! BatSignal node for the example hive: calls for help every few seconds.

use hivemind::prelude::*;
use serde::Deserialize;
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
        hive.add_service("bat-signal-main", move |service: &Service| {
            // Send a signal to the big man himself (any JSON value will do).
            service.send("Batman! We need help!")?;
            info!("the bat signal is shining");
            // As lowly city folk, we can do nothing but wait for the next crisis.
            service.sleep_for(interval);
            Ok(Flow::Continue)
        });
    }
}

hivemind::export_node!(BatSignal);
