//! One module per subcommand.

pub(crate) mod connect;
pub(crate) mod inspect;
pub(crate) mod parse;
pub(crate) mod serve;

/// A tokio runtime: multi-threaded with one worker per available CPU, or current-thread when
/// only one CPU is available (e.g. under `taskset -c 0`).
pub(crate) fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = threads.unwrap_or_else(available_cpus);
    if cpus <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus)
            .enable_all()
            .build()
    }
}

/// The CPUs this process may run on (1 when unknown).
pub(crate) fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, core::num::NonZeroUsize::get)
}

/// Keepalive flags shared by `serve` and `connect`.
#[derive(clap::Args, Debug, Clone, Copy)]
pub(crate) struct KeepaliveArgs {
    /// Ping the peer after this many seconds without receiving anything (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    ping_interval: Option<f64>,
    /// With --ping-interval: close with 1011 when nothing arrives this many seconds after the
    /// ping (default: the interval).
    #[arg(long, value_name = "SECS", value_parser = positive_secs, requires = "ping_interval")]
    ping_timeout: Option<f64>,
}

impl KeepaliveArgs {
    /// The core's keepalive settings, when asked for.
    pub(crate) fn keepalive(self) -> Option<wscope::config::Keepalive> {
        let interval = self.ping_interval?;
        let timeout = self.ping_timeout.unwrap_or(interval);
        let secs = |s: f64| core::time::Duration::from_secs_f64(s).into();
        Some(wscope::config::Keepalive::new(
            secs(interval),
            secs(timeout),
        ))
    }
}

pub(crate) fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1e9 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}
