//! Order statistics over measured samples.

/// The `p`th percentile (0–100, nearest rank) of `sorted`, ascending; 0 for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Repeated trials of one figure: every sample kept, summarised as min, median and max.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    /// The trials' results, in the order they ran.
    pub samples: Vec<f64>,
}

/// Two figures are "stable" when their trials stay within this factor of each other.
pub const STABLE_WITHIN: f64 = 1.5;

impl Spread {
    /// Runs `trial` `times` times.
    pub fn of(
        times: usize,
        mut trial: impl FnMut() -> anyhow::Result<f64>,
    ) -> anyhow::Result<Self> {
        let samples = (0..times).map(|_| trial()).collect::<anyhow::Result<_>>()?;
        Ok(Self { samples })
    }

    fn sorted(&self) -> Vec<f64> {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
    }

    /// The smallest sample.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    /// The median sample.
    pub fn median(&self) -> f64 {
        let sorted = self.sorted();
        if sorted.is_empty() {
            return f64::NAN;
        }
        percentile(&sorted, 50.0)
    }

    /// The largest sample.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// Whether the largest sample is within [`STABLE_WITHIN`] of the smallest.
    pub fn stable(&self) -> bool {
        self.max() <= self.min() * STABLE_WITHIN
    }

    /// The samples as JSON: median, min, max and every sample.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "median": self.median(),
            "min": self.min(),
            "max": self.max(),
            "samples": self.samples,
        })
    }
}
