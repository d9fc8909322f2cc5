//! One module per subcommand.

pub(crate) mod connect;
pub(crate) mod inspect;
pub(crate) mod parse;
pub(crate) mod serve;

/// A tokio runtime: multi-threaded with one worker per available CPU, or current-thread when
/// only one CPU is available (e.g. under `taskset -c 0`).
pub(crate) fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, core::num::NonZeroUsize::get)
    });
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
