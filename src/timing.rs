//! Wall-clock time of each stage of a fit or transfer, so that benchmarks (and users)
//! can see where the time goes (`scrobust transfer --json` reports them as
//! `stage_seconds`).

use std::time::Instant;

/// Named stages and their wall-clock seconds, in the order they ran.
pub type StageSeconds = Vec<(&'static str, f64)>;

/// Records the time since the previous lap under a stage name.
#[derive(Debug)]
pub struct Stopwatch {
    last: Instant,
    stages: StageSeconds,
}

impl Default for Stopwatch {
    fn default() -> Self {
        Self::new()
    }
}

impl Stopwatch {
    /// Start timing now.
    pub fn new() -> Self {
        Self {
            last: Instant::now(),
            stages: Vec::new(),
        }
    }

    /// Close the current stage under `name` and start the next one.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.stages
            .push((name, now.duration_since(self.last).as_secs_f64()));
        self.last = now;
    }

    /// Append stages timed elsewhere (e.g. inside a sub-step), restarting the clock.
    pub fn extend(&mut self, stages: &[(&'static str, f64)]) {
        self.stages.extend_from_slice(stages);
        self.last = Instant::now();
    }

    /// The stages recorded so far.
    pub fn finish(self) -> StageSeconds {
        self.stages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Laps are recorded in order with non-negative durations.
    #[test]
    fn laps_in_order() {
        let mut sw = Stopwatch::new();
        sw.lap("a");
        sw.extend(&[("b", 1.5)]);
        sw.lap("c");
        let s = sw.finish();
        let names: Vec<&str> = s.iter().map(|x| x.0).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(s.iter().all(|x| x.1 >= 0.0));
        assert_eq!(s[1].1, 1.5);
    }
}
