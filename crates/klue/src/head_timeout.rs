//! The header-read timeout: a connection must send a complete request head within the limit
//! after it opens and after each answer, or it is closed. Slow clients (slowloris) and idle
//! keep-alive connections cannot hold a worker's connections forever.
//!
//! Why not hyper's own `header_read_timeout`: hyper arms a timer for every request head and,
//! to start it as soon as an answer is written, runs its connection loop a second time for
//! every request. Together that was about 4 % of the instructions of `GET /v1/hello`
//! (docs/benchmarks.md). Here a connection only counts its requests in flight and notes the
//! tick at which the last one ended; no timer, no allocation per request. Each worker runs
//! [`Connections::sweep`] every [`TICK`] and closes the connections that have waited longer
//! than the limit, so a slow client is cut off up to a [`TICK`] late.
//!
//! A request is in flight from the moment its head is complete (the service is called) until
//! its answer's body is finished or dropped, so a slow handler or a long answer is never cut
//! off. The check covers what hyper's did not: a connection that sends nothing at all (hyper's
//! timer only started once the HTTP version was known) and HTTP/2 connections with no stream
//! open.
//!
//! The same sweep applies the send timeout to connections with answers to send. An answer is
//! being sent from when the service returns it (with a body) until its body is finished or
//! dropped; hyper asks the body for its next frame only once the client has taken the
//! previous ones (HTTP/1.1: once the write buffer has room; HTTP/2: once the stream has
//! flow-control window). So a connection whose answers have not given hyper a frame for
//! longer than the send timeout has a client that stopped taking them (one that does not
//! read, or an HTTP/2 client that keeps its window at zero), and it is closed. Progress is
//! counted per connection, not per answer: an HTTP/2 client that keeps one stream shut while
//! others progress holds that stream until it stops making progress on all of them (at most
//! hyper's limit of concurrent streams per connection). What the connection writes is not
//! counted: an HTTP/2 client can make the server write as often as it likes (PING answers)
//! without taking any answer.
//!
//! Request bodies have their own deadline, applied where the runtime reads them
//! (`RuntimeConfig::body_read_timeout`), so that the client gets a 408 answer.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// How often a worker checks its connections.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// One connection's requests in flight and when it last had none, and its answers being sent
/// and when they last made progress.
pub(crate) struct Watch {
    clock: Arc<AtomicU64>,
    in_flight: AtomicUsize,
    /// The tick at which the connection opened or its last request ended.
    waiting_since: AtomicU64,
    /// Answers returned by the service whose bodies are not finished (part of `in_flight`).
    sending: AtomicUsize,
    /// The tick at which an answer last started or gave hyper a frame.
    sent_at: AtomicU64,
}

impl Watch {
    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn answer_started(&self) {
        self.sent_at.store(self.now(), Ordering::Relaxed);
        // Release: a sweep that sees the answer also sees its `sent_at`.
        self.sending.fetch_add(1, Ordering::Release);
    }

    fn answer_progressed(&self) {
        self.sent_at.store(self.now(), Ordering::Relaxed);
    }

    fn answer_ended(&self) {
        self.sending.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether the connection has answers to send and none of them has made progress for
    /// more than `limit` ticks.
    fn stalled(&self, now: u64, limit: u64) -> bool {
        self.sending.load(Ordering::Acquire) > 0
            && now.saturating_sub(self.sent_at.load(Ordering::Relaxed)) > limit
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn request_ended(&self) {
        self.waiting_since
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
        // Release: a sweep that sees no request in flight also sees the new `waiting_since`.
        self.in_flight.fetch_sub(1, Ordering::Release);
    }

    /// Whether the connection has waited for a request head for more than `limit` ticks.
    fn overdue(&self, now: u64, limit: u64) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && now.saturating_sub(self.waiting_since.load(Ordering::Relaxed)) > limit
    }
}

/// A worker's connections and its coarse clock (ticks since the worker started).
pub(crate) struct Connections {
    clock: Arc<AtomicU64>,
    /// The header-read timeout, in whole ticks (rounded up).
    limit: u64,
    /// The send timeout, in whole ticks (rounded up).
    send_limit: u64,
    open: Vec<(Arc<Watch>, tokio::task::AbortHandle)>,
}

/// `duration` in whole ticks, rounded up.
fn ticks(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(TICK.as_nanos())).unwrap_or(u64::MAX)
}

impl Connections {
    /// Connections closed when they wait longer than `header_read_timeout` for a request head
    /// or their answers make no progress for longer than `send_timeout`.
    pub(crate) fn new(header_read_timeout: Duration, send_timeout: Duration) -> Connections {
        Connections {
            clock: Arc::default(),
            limit: ticks(header_read_timeout),
            send_limit: ticks(send_timeout),
            open: Vec::new(),
        }
    }

    /// A watch for a connection that just opened: it is waiting for its first head.
    pub(crate) fn watch(&self) -> Arc<Watch> {
        Arc::new(Watch {
            clock: Arc::clone(&self.clock),
            in_flight: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
            sending: AtomicUsize::new(0),
            sent_at: AtomicU64::new(0),
        })
    }

    /// Checks `watch`'s connection, served by `task`, from the next sweep on.
    pub(crate) fn add(&mut self, watch: Arc<Watch>, task: tokio::task::AbortHandle) {
        self.open.push((watch, task));
    }

    /// Advances the clock by a tick, forgets the connections that ended, and closes those
    /// that waited too long for a request head or whose answers stalled (their task is
    /// dropped, which closes the socket, as hyper's timeout did).
    pub(crate) fn sweep(&mut self) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let (limit, send_limit) = (self.limit, self.send_limit);
        self.open.retain(|(watch, task)| {
            if task.is_finished() {
                return false;
            }
            if watch.overdue(now, limit) {
                tracing::debug!("no request head in time; closing the connection");
                task.abort();
                return false;
            }
            if watch.stalled(now, send_limit) {
                tracing::debug!(
                    "the client took none of its answers in time; closing the connection"
                );
                task.abort();
                return false;
            }
            true
        });
    }
}

/// A connection's service, counting its requests in flight.
pub(crate) struct Watched<S> {
    service: S,
    watch: Arc<Watch>,
}

impl<S> Watched<S> {
    pub(crate) fn new(service: S, watch: Arc<Watch>) -> Watched<S> {
        Watched { service, watch }
    }
}

/// A request in flight, and whether its answer is being sent; ends both when dropped
/// (answered, or abandoned).
struct InFlight {
    watch: Arc<Watch>,
    sending: bool,
}

impl InFlight {
    fn new(watch: Arc<Watch>) -> InFlight {
        InFlight {
            watch,
            sending: false,
        }
    }

    /// The answer has a body to send.
    fn sending(mut self) -> InFlight {
        self.watch.answer_started();
        self.sending = true;
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.sending {
            self.watch.answer_ended();
        }
        self.watch.request_ended();
    }
}

impl<S, R, B> hyper::service::Service<R> for Watched<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
    B: Body,
{
    type Response = http::Response<WatchedBody<B>>;
    type Error = S::Error;
    type Future = WatchedAnswer<S::Future>;

    fn call(&self, request: R) -> Self::Future {
        self.watch.request_started();
        WatchedAnswer {
            answer: self.service.call(request),
            in_flight: Some(InFlight::new(Arc::clone(&self.watch))),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Watched`] service; hands the request in flight over to the body.
    pub(crate) struct WatchedAnswer<F> {
        #[pin]
        answer: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for WatchedAnswer<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: Body,
{
    type Output = Result<http::Response<WatchedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(answer.map(|response| {
            response.map(|body| {
                // A body with nothing left to send ends the request here; any other is sent.
                let in_flight = in_flight
                    .filter(|_| !body.is_end_stream())
                    .map(InFlight::sending);
                WatchedBody { body, in_flight }
            })
        }))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body; the request is in flight until it ends or is dropped.
    pub(crate) struct WatchedBody<B> {
        #[pin]
        body: B,
        in_flight: Option<InFlight>,
    }
}

impl<B: Body<Data = Bytes>> Body for WatchedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.body.poll_frame(cx));
        match (&frame, this.in_flight.as_ref()) {
            (None, _) => drop(this.in_flight.take()),
            (Some(_), Some(in_flight)) => in_flight.watch.answer_progressed(),
            (Some(_), None) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::service::Service;
    use std::convert::Infallible;

    /// A service answering every call with `body`.
    struct Answer(&'static str);

    impl Service<()> for Answer {
        type Response = http::Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn call(&self, (): ()) -> Self::Future {
            std::future::ready(Ok(http::Response::new(Full::new(Bytes::from(self.0)))))
        }
    }

    #[tokio::test]
    async fn a_connection_waits_from_when_it_opens_or_its_last_answer_ends() {
        let mut connections = Connections::new(TICK * 2, TICK);
        let watch = connections.watch();
        let service = Watched::new(Answer("hi"), Arc::clone(&watch));
        // Two ticks of waiting are allowed, the third is over the limit.
        connections.sweep();
        connections.sweep();
        assert!(!watch.overdue(2, connections.limit));
        assert!(watch.overdue(3, connections.limit));

        // In flight from the call until the body is read to its end: never overdue.
        let pending = service.call(());
        assert!(!watch.overdue(100, connections.limit));
        let response = pending.await.unwrap();
        assert!(!watch.overdue(100, connections.limit));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hi");
        // Waiting again since the answer ended (tick 2).
        assert!(!watch.overdue(4, connections.limit));
        assert!(watch.overdue(5, connections.limit));
    }

    #[tokio::test]
    async fn an_empty_body_or_an_abandoned_request_ends_the_request() {
        let connections = Connections::new(TICK, TICK);
        let watch = connections.watch();
        let service = Watched::new(Answer(""), Arc::clone(&watch));
        let response = service.call(()).await.unwrap();
        assert!(
            watch.overdue(2, connections.limit),
            "an empty body has nothing to send"
        );
        drop(response);

        let abandoned = service.call(());
        assert!(!watch.overdue(2, connections.limit));
        drop(abandoned);
        assert!(watch.overdue(2, connections.limit));
    }

    #[tokio::test]
    async fn an_answer_stalls_when_its_body_gives_no_frame_within_the_send_limit() {
        let connections = Connections::new(TICK * 100, TICK * 2);
        let limit = connections.send_limit;
        let watch = connections.watch();
        let service = Watched::new(Answer("hi"), Arc::clone(&watch));
        // Waiting for the handler is not sending.
        let pending = service.call(());
        assert!(!watch.stalled(50, limit));
        let response = pending.await.unwrap();
        // Sending since tick 0: two ticks without progress are allowed, the third is over.
        assert!(!watch.stalled(2, limit));
        assert!(watch.stalled(3, limit));

        // A frame taken at tick 5 is progress.
        connections.clock.store(5, Ordering::Relaxed);
        let mut body = response.into_body();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "hi");
        assert!(!watch.stalled(7, limit));
        assert!(watch.stalled(8, limit));
        // The end of the body ends the sending.
        assert!(body.frame().await.is_none());
        assert!(!watch.stalled(100, limit));
        assert!(!watch.overdue(105, connections.limit));

        // So does dropping an answer before its end.
        let response = service.call(()).await.unwrap();
        assert!(watch.stalled(100, limit));
        drop(response);
        assert!(!watch.stalled(100, limit));
        assert_eq!(watch.sending.load(Ordering::Relaxed), 0);
        assert_eq!(watch.in_flight.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_sweep_closes_stalled_connections() {
        let mut connections = Connections::new(Duration::from_secs(60), Duration::ZERO);
        let stalled = tokio::spawn(std::future::pending::<()>());
        let busy = tokio::spawn(std::future::pending::<()>());
        let stalled_watch = connections.watch();
        stalled_watch.request_started();
        stalled_watch.answer_started();
        let busy_watch = connections.watch();
        busy_watch.request_started();
        connections.add(stalled_watch, stalled.abort_handle());
        connections.add(busy_watch, busy.abort_handle());
        connections.sweep();
        assert!(stalled.await.unwrap_err().is_cancelled());
        assert_eq!(connections.open.len(), 1, "the busy connection is kept");
        assert!(!busy.is_finished());
        busy.abort();
    }

    #[tokio::test]
    async fn a_sweep_closes_overdue_connections_and_forgets_ended_ones() {
        let mut connections = Connections::new(Duration::ZERO, Duration::ZERO);
        let stalled = tokio::spawn(std::future::pending::<()>());
        let ended = tokio::spawn(async {});
        let busy = tokio::spawn(std::future::pending::<()>());
        let busy_watch = connections.watch();
        busy_watch.request_started();
        connections.add(connections.watch(), stalled.abort_handle());
        connections.add(connections.watch(), ended.abort_handle());
        connections.add(busy_watch, busy.abort_handle());
        ended.await.unwrap();
        connections.sweep();
        // Zero ticks allowed: one tick of waiting is over the limit.
        assert!(stalled.await.unwrap_err().is_cancelled());
        assert_eq!(
            connections.open.len(),
            1,
            "only the busy connection is left"
        );
        assert!(!busy.is_finished());
        busy.abort();
    }
}
