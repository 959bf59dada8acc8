//! The experiment grid: config, cache, runner, results and report.
