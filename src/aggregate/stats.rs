//! Counters of what the aggregator did and dropped.

/// What the aggregator did, and every sample it dropped, by reason. Counts are per value (a
/// message `m:1:2:3|c` is three samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AggregateStats {
    /// Values aggregated into a context.
    pub samples: u64,
    /// Timestamped values passed through as their own series (no aggregation).
    pub timestamped: u64,
    /// Events passed through.
    pub events: u64,
    /// Service checks passed through.
    pub service_checks: u64,
    /// Dropped: NaN or ±Inf values.
    pub non_finite: u64,
    /// Not dropped: counter, histogram, timing or distribution values whose sample rate was
    /// outside [1/4294967295, 1] (0, negative, > 1, NaN, or absurdly small) and was taken as 1.
    pub rate_clamped: u64,
    /// Dropped: metric name on the blocklist.
    pub blocklisted: u64,
    /// Dropped: the sample would have created a context over the context limit.
    pub context_limit: u64,
    /// Dropped: timestamped histogram, timing, set or distribution values (only gauges and
    /// counters may carry a timestamp).
    pub unsupported_timestamped: u64,
    /// Contexts created.
    pub contexts_created: u64,
    /// Contexts removed after expiry.
    pub contexts_expired: u64,
    /// Contexts alive now.
    pub live_contexts: u64,
    /// Distinct strings interned by the live contexts.
    pub interned_strings: u64,
}

impl AggregateStats {
    /// Every dropped value, all reasons together.
    pub fn dropped(&self) -> u64 {
        self.non_finite + self.blocklisted + self.context_limit + self.unsupported_timestamped
    }

    pub(crate) fn add(&mut self, o: &AggregateStats) {
        self.samples += o.samples;
        self.timestamped += o.timestamped;
        self.events += o.events;
        self.service_checks += o.service_checks;
        self.non_finite += o.non_finite;
        self.rate_clamped += o.rate_clamped;
        self.blocklisted += o.blocklisted;
        self.context_limit += o.context_limit;
        self.unsupported_timestamped += o.unsupported_timestamped;
        self.contexts_created += o.contexts_created;
        self.contexts_expired += o.contexts_expired;
        self.live_contexts += o.live_contexts;
        self.interned_strings += o.interned_strings;
    }
}
