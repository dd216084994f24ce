//! Running a service: command line, logging, binding, and graceful shutdown on SIGTERM and
//! SIGINT (stop accepting, let in-flight requests finish, exit 0 within the drain time),
//! also as PID 1 in a container.

use crate::head_timeout::{self, Connections, Watched};
use crate::logsink::LogSink;
use crate::placement;
use crate::runtime::{RuntimeConfig, ServiceBuilder};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use klue_spec::Source;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The service binary's command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A klue service")]
pub struct ServerArgs {
    /// TCP port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "KLUE_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "KLUE_DRAIN_SECONDS", default_value_t = 20.0)]
    pub drain_seconds: f64,
    /// Seconds a connection gets to send its request headers, after it opens and after each
    /// answer (slow and idle clients are cut off).
    #[arg(long, env = "KLUE_HEADER_READ_TIMEOUT", default_value_t = 10.0)]
    pub header_read_timeout: f64,
    /// Seconds the request body of an operation gets to arrive in full; a slower one is
    /// answered 408 `BODY_READ_TIMEOUT` and its connection closed.
    #[arg(long, env = "KLUE_BODY_READ_TIMEOUT", default_value_t = 30.0)]
    pub body_read_timeout: f64,
    /// Seconds an answer may wait for the client to take more of it (a client that stops
    /// reading, an HTTP/2 client that keeps its flow-control window shut); then its connection
    /// is closed.
    #[arg(long, env = "KLUE_SEND_TIMEOUT", default_value_t = 30.0)]
    pub send_timeout: f64,
    /// Load the specs from this folder instead of the ones built into the binary.
    #[arg(long, env = "KLUE_APIS_DIR")]
    pub apis_dir: Option<PathBuf>,
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time for in-flight requests after the shutdown signal.
    pub drain: Duration,
    /// A connection must send a complete request head within this time after it opens and
    /// after each answer, or it is closed: slow clients and idle keep-alive connections
    /// cannot hold connections forever. Checked every 250 ms, so a connection is cut off up
    /// to that much later (see `head_timeout.rs`).
    pub header_read_timeout: Duration,
    /// While a connection has an answer to send, some answer of the connection must make
    /// progress (its body hands hyper a frame, that is, the client took the previous ones)
    /// within this time, or the connection is closed: a client that stops reading, or an
    /// HTTP/2 client that never opens its flow-control window, cannot hold a connection
    /// forever. An answer body that itself takes longer than this between two frames (a
    /// stream of events, say) is cut off too. Checked like `header_read_timeout`.
    pub send_timeout: Duration,
    /// Largest request head (request line and headers); larger gets 431.
    pub max_header_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain: Duration::from_secs(20),
            header_read_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Keeps the log writer running; dropping it writes what is buffered.
#[must_use = "logs are flushed when the guard is dropped"]
pub struct LogGuard {
    sink: LogSink,
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.sink.stop();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// The format of the log lines, from `KLUE_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event, `key=value` fields (the default).
    Compact,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `KLUE_LOG_FORMAT`: `compact` (or unset or empty) or `json`, in any case; anything else is
    /// an error naming the accepted values, so a typo does not silently change what a log
    /// pipeline receives.
    pub fn from_env() -> Result<LogFormat, String> {
        match std::env::var("KLUE_LOG_FORMAT") {
            Err(std::env::VarError::NotPresent) => Ok(LogFormat::Compact),
            Ok(value) => LogFormat::parse(&value),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("KLUE_LOG_FORMAT is not valid UTF-8: use `compact` or `json`".to_string())
            }
        }
    }

    fn parse(value: &str) -> Result<LogFormat, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "compact" => Ok(LogFormat::Compact),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "KLUE_LOG_FORMAT={:?} is not a log format: use `compact` (the default) or `json`",
                crate::error::truncate_input(value)
            )),
        }
    }
}

/// Logs to stdout in the format `KLUE_LOG_FORMAT` names (compact when it names none it
/// knows; [`run_service`] refuses such a value instead). See [`init_logging`].
pub fn init_tracing() -> LogGuard {
    init_logging(LogFormat::from_env().unwrap_or(LogFormat::Compact))
}

/// Logs to stdout in `format`. The level comes from `RUST_LOG` (default `info`). Lines are
/// buffered and written in batches (see `logsink.rs`): request threads never wait on stdout
/// unless it blocks, nothing is dropped, and the returned guard writes what is left on drop.
/// With the JSON format, the request lines skip tracing's event machinery (same bytes, see
/// `logfmt.rs`).
pub fn init_logging(format: LogFormat) -> LogGuard {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = format == LogFormat::Json;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let (sink, flusher) = LogSink::start(Box::new(std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(sink.clone());
    if json {
        let installed = builder
            .json()
            .flatten_event(true)
            .map_event_format(crate::logfmt::FastJson::new)
            .try_init();
        // A second initialization (tests) is not an error worth failing for, but the request
        // lines must then keep going to the subscriber that is installed.
        if installed.is_ok() {
            crate::logfmt::write_requests_directly(sink.clone());
        }
    } else {
        let _ = builder.compact().try_init();
    }
    LogGuard { sink, flusher }
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains: no new connections,
/// in-flight requests finish (up to `options.drain`), idle keep-alive connections close.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) {
    serve_connections(listener, shutdown, options, move || {
        TowerToHyperService::new(router.clone().map_request(
            |request: http::Request<hyper::body::Incoming>| request.map(axum::body::Body::new),
        ))
    })
    .await;
}

/// [`serve`] for any hyper service; `service` makes the one of each connection.
///
/// Connections are served thread-per-core: one single-threaded runtime per available CPU,
/// each connection handed to one of them (the one its client's CPU maps to, within a few
/// connections of an even spread; see `placement.rs`) and served there to its end. With the
/// work-stealing runtime, the tasks of connections moved between the worker threads with
/// every preemption (wrk or anything else on the machine waking up), and their memory was
/// then freed from the other thread, their locks taken from both: `GET /v1/hello` ran about
/// 10 % faster this way (docs/benchmarks.md). A handler that computes for long holds up the
/// other connections of its thread, as with any thread-per-core server: such work belongs in
/// `tokio::task::spawn_blocking` (and `block_in_place`, which needs the work-stealing
/// runtime, panics there).
async fn serve_connections<S, B>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
    service: impl Fn() -> S,
) where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let count = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut workers: Vec<Worker<S>> = (0..count)
        .filter_map(|_| Worker::on_own_thread(&options))
        .collect();
    if workers.is_empty() {
        workers.push(Worker::on_this_runtime(&options));
    }
    let mut turn = 0;
    let mut accept_errors = EveryInterval::new(ACCEPT_ERROR_LOG_INTERVAL);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted.and_then(|(stream, _peer)| stream.into_std()) {
                    Ok(stream) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning,
                        // and say so once a second, not twenty times.
                        if let Some(suppressed) = accept_errors.due(std::time::Instant::now()) {
                            tracing::warn!(%error, suppressed, "accept failed");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let open: Vec<usize> = workers.iter().map(Worker::open).collect();
                let picked = placement::pick(placement::client_cpu(&stream), &open, turn);
                if let Some(worker) = workers.get(picked) {
                    worker.serve(stream, service());
                }
                turn = turn.wrapping_add(1);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // Each worker drains its connections (up to `options.drain`) once its queue is closed.
    let draining: Vec<_> = workers.into_iter().map(Worker::close).collect();
    let mut all_finished = true;
    for finished in draining {
        all_finished &= finished.await.unwrap_or(false);
    }
    if all_finished {
        tracing::info!("all requests finished");
    } else {
        tracing::warn!(drain = ?options.drain, "drain time over; closing the remaining connections");
    }
}

/// At most one `accept failed` line per this interval.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Lets a repeated event be logged at most once per interval, counting the ones left out.
struct EveryInterval {
    interval: Duration,
    last: Option<std::time::Instant>,
    suppressed: u64,
}

impl EveryInterval {
    fn new(interval: Duration) -> Self {
        EveryInterval {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// For an event at `now`: `Some(how many were left out since the last logged one)` when
    /// this one is to be logged, `None` when it is left out.
    fn due(&mut self, now: std::time::Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A single-threaded runtime serving the connections sent to it (on its own thread, or as a
/// task on the current runtime when the system refuses a thread).
struct Worker<S> {
    connections: tokio::sync::mpsc::UnboundedSender<(std::net::TcpStream, S, OpenConnection)>,
    /// How many connections this worker has been given and not yet finished.
    open: Arc<AtomicUsize>,
    /// Whether the worker's connections all finished within the drain time.
    finished: tokio::sync::oneshot::Receiver<bool>,
}

impl<S, B> Worker<S>
where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A worker and the future that serves its queue.
    fn new(options: &ServeOptions) -> (Worker<S>, impl Future<Output = ()> + Send + 'static) {
        let (connections, queue) = tokio::sync::mpsc::unbounded_channel();
        let (done, finished) = tokio::sync::oneshot::channel();
        let serving = Self::serve_queue(queue, options.clone(), done);
        (
            Worker {
                connections,
                open: Arc::default(),
                finished,
            },
            serving,
        )
    }

    /// A worker on a thread of its own, unless the system refuses the thread or its runtime.
    fn on_own_thread(options: &ServeOptions) -> Option<Worker<S>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| tracing::warn!(%error, "cannot make a worker runtime"))
            .ok()?;
        let (worker, serving) = Self::new(options);
        std::thread::Builder::new()
            .name("klue-worker".into())
            .spawn(move || runtime.block_on(serving))
            .map_err(|error| tracing::warn!(%error, "cannot start a worker thread"))
            .ok()?;
        Some(worker)
    }

    /// A worker as a task of the current runtime.
    fn on_this_runtime(options: &ServeOptions) -> Worker<S> {
        let (worker, serving) = Self::new(options);
        tokio::spawn(serving);
        worker
    }

    fn serve(&self, stream: std::net::TcpStream, service: S) {
        // A worker only stops after its queue is closed, so the send cannot fail while this
        // worker is in use; if its thread died, the connection is dropped (closed).
        let open = OpenConnection::count(&self.open);
        let _ = self.connections.send((stream, service, open));
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Closes the queue: the worker drains its connections, then says whether they all
    /// finished in time.
    fn close(self) -> tokio::sync::oneshot::Receiver<bool> {
        drop(self.connections);
        self.finished
    }

    /// Serves the connections of the queue until it is closed, then drains them.
    async fn serve_queue(
        mut queue: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, S, OpenConnection)>,
        options: ServeOptions,
        done: tokio::sync::oneshot::Sender<bool>,
    ) {
        let mut connections = Connections::new(options.header_read_timeout, options.send_timeout);
        let mut ticks = tokio::time::interval(head_timeout::TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(options.max_header_bytes.max(8192));
        let graceful = GracefulShutdown::new();
        loop {
            let (stream, service, open) = tokio::select! {
                next = queue.recv() => match next {
                    Some(next) => next,
                    None => break,
                },
                _ = ticks.tick() => {
                    connections.sweep();
                    continue;
                }
            };
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot register a connection");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let watch = connections.watch();
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    Watched::new(service, Arc::clone(&watch)),
                )
                .into_owned();
            let connection = graceful.watch(connection);
            let task = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                drop(open);
            });
            connections.add(watch, task.abort_handle());
        }
        // Slow clients are still cut off while the others drain.
        let sweeping = async {
            loop {
                ticks.tick().await;
                connections.sweep();
            }
        };
        let finished = tokio::select! {
            () = graceful.shutdown() => true,
            () = tokio::time::sleep(options.drain) => false,
            () = sweeping => false,
        };
        let _ = done.send(finished);
    }
}

/// One connection in a worker's count of open connections, from its hand-over to the end of
/// its task (or its drop on the way there).
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn count(open: &Arc<AtomicUsize>) -> OpenConnection {
        open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(open))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The whole life of a service binary: parse the command line, log, load the specs (the
/// embedded ones, or `--apis-dir`), configure JWT auth from the environment, let `configure`
/// bind the handlers, check everything, listen, and shut down gracefully. A problem at
/// startup is printed with what to fix and the process exits 1.
pub async fn run_service(
    specs: Vec<Source>,
    configure: impl FnOnce(ServiceBuilder) -> ServiceBuilder,
) -> ExitCode {
    use clap::Parser;
    let args = ServerArgs::parse();
    let format = match LogFormat::from_env() {
        Ok(format) => format,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let _log_guard = init_logging(format);
    match start(args, specs, configure).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            tracing::error!("startup failed");
            ExitCode::FAILURE
        }
    }
}

async fn start(
    args: ServerArgs,
    specs: Vec<Source>,
    configure: impl FnOnce(ServiceBuilder) -> ServiceBuilder,
) -> Result<(), String> {
    let drain = seconds(args.drain_seconds, "--drain-seconds", "KLUE_DRAIN_SECONDS")?;
    let header_read_timeout = seconds(
        args.header_read_timeout,
        "--header-read-timeout",
        "KLUE_HEADER_READ_TIMEOUT",
    )?;
    let body_read_timeout = positive_seconds(
        args.body_read_timeout,
        "--body-read-timeout",
        "KLUE_BODY_READ_TIMEOUT",
    )?;
    let send_timeout = positive_seconds(args.send_timeout, "--send-timeout", "KLUE_SEND_TIMEOUT")?;
    let apis = match &args.apis_dir {
        Some(dir) => klue_spec::load_dir(dir),
        None => klue_spec::load_sources(&specs),
    }
    .map_err(|e| e.to_string())?;
    let mut config = RuntimeConfig::from_env().map_err(|e| e.to_string())?;
    config.body_read_timeout = body_read_timeout;
    let mut builder = ServiceBuilder::new(apis).config(config);
    if let Some(authenticator) =
        crate::auth::from_env().map_err(|e| format!("JWT configuration: {e}"))?
    {
        builder = builder.authenticator(authenticator);
    }
    let service = configure(builder).build().map_err(|e| e.to_string())?;
    let addr = SocketAddr::new(args.host, args.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(
        %addr,
        apis = %service.served_apis().join(","),
        operations = service.operation_count(),
        "listening"
    );
    let front = service.front();
    serve_connections(
        listener,
        shutdown_signal(),
        ServeOptions {
            drain,
            header_read_timeout,
            send_timeout,
            ..ServeOptions::default()
        },
        move || front.clone(),
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// `value` seconds of the setting `flag` (`env`), or why it is not a duration.
fn seconds(value: f64, flag: &str, env: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} ({env}) {value} is invalid: expected seconds >= 0"))
}

/// [`seconds`], and more than none: a deadline of zero would refuse every request that
/// waits at all.
fn positive_seconds(value: f64, flag: &str, env: &str) -> Result<Duration, String> {
    seconds(value, flag, env)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| format!("{flag} ({env}) {value} is invalid: expected seconds > 0"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_formats_are_compact_or_json_and_nothing_else() {
        use super::LogFormat;
        assert_eq!(LogFormat::parse(""), Ok(LogFormat::Compact));
        assert_eq!(LogFormat::parse("Compact"), Ok(LogFormat::Compact));
        assert_eq!(LogFormat::parse(" JSON "), Ok(LogFormat::Json));
        let error = LogFormat::parse("xml").err().unwrap_or_default();
        assert!(
            error.contains("\"xml\"") && error.contains("`json`"),
            "{error}"
        );
    }

    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn deadlines_must_be_finite_and_positive() {
        let ok = positive_seconds(2.5, "--body-read-timeout", "KLUE_BODY_READ_TIMEOUT");
        assert_eq!(ok, Ok(Duration::from_millis(2500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let Err(message) =
                positive_seconds(bad, "--body-read-timeout", "KLUE_BODY_READ_TIMEOUT")
            else {
                panic!("{bad} accepted");
            };
            assert!(
                message.contains("--body-read-timeout (KLUE_BODY_READ_TIMEOUT)"),
                "{message}"
            );
        }
        assert_eq!(
            seconds(0.0, "--header-read-timeout", "KLUE_HEADER_READ_TIMEOUT"),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn repeated_accept_errors_are_logged_once_a_second_with_a_count() {
        let start = std::time::Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut errors = EveryInterval::new(ACCEPT_ERROR_LOG_INTERVAL);
        // Twenty a second, as the accept loop retries every 50 ms.
        let logged: Vec<(u64, u64)> = (0..60)
            .map(|i| i * 50)
            .filter_map(|ms| errors.due(at(ms)).map(|suppressed| (ms, suppressed)))
            .collect();
        assert_eq!(logged, [(0, 0), (1000, 19), (2000, 19)]);
        // After a quiet spell the next one is logged at once.
        assert_eq!(errors.due(at(10_000)), Some(19));
    }

    #[test]
    fn a_worker_counts_a_connection_until_it_ends() -> std::io::Result<()> {
        let Some(worker) = Worker::on_own_thread(&ServeOptions::default()) else {
            panic!("no worker thread");
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (accepted, _) = listener.accept()?;
        accepted.set_nonblocking(true)?;
        let service = hyper::service::service_fn(|_request| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::empty()))
        });
        worker.serve(accepted, service);
        assert_eq!(worker.open(), 1);

        client.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")?;
        let mut answer = [0u8; 12];
        client.read_exact(&mut answer)?;
        assert_eq!(&answer, b"HTTP/1.1 200");
        assert_eq!(worker.open(), 1, "still open between requests");

        drop(client);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while worker.open() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(worker.open(), 0, "the connection ended");
        Ok(())
    }
}
