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

/// One connection's requests in flight, and when it last had none.
pub(crate) struct Watch {
    clock: Arc<AtomicU64>,
    in_flight: AtomicUsize,
    /// The tick at which the connection opened or its last request ended.
    waiting_since: AtomicU64,
}

impl Watch {
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
    /// The limit, in whole ticks (rounded up).
    limit: u64,
    open: Vec<(Arc<Watch>, tokio::task::AbortHandle)>,
}

impl Connections {
    pub(crate) fn new(limit: Duration) -> Connections {
        Connections {
            clock: Arc::default(),
            limit: u64::try_from(limit.as_nanos().div_ceil(TICK.as_nanos())).unwrap_or(u64::MAX),
            open: Vec::new(),
        }
    }

    /// A watch for a connection that just opened: it is waiting for its first head.
    pub(crate) fn watch(&self) -> Arc<Watch> {
        Arc::new(Watch {
            clock: Arc::clone(&self.clock),
            in_flight: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
        })
    }

    /// Checks `watch`'s connection, served by `task`, from the next sweep on.
    pub(crate) fn add(&mut self, watch: Arc<Watch>, task: tokio::task::AbortHandle) {
        self.open.push((watch, task));
    }

    /// Advances the clock by a tick, forgets the connections that ended, and closes those
    /// that waited too long for a request head (their task is dropped, which closes the
    /// socket, as hyper's timeout did).
    pub(crate) fn sweep(&mut self) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit;
        self.open.retain(|(watch, task)| {
            if task.is_finished() {
                return false;
            }
            if watch.overdue(now, limit) {
                tracing::debug!("no request head in time; closing the connection");
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

/// A request in flight; ends it when dropped (answered, or abandoned).
struct InFlight(Arc<Watch>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
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
            in_flight: Some(InFlight(Arc::clone(&self.watch))),
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
                // A body with nothing left to send ends the request here.
                let in_flight = in_flight.filter(|_| !body.is_end_stream());
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
        if frame.is_none() {
            this.in_flight.take();
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
        let mut connections = Connections::new(TICK * 2);
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
        let connections = Connections::new(TICK);
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
    async fn a_sweep_closes_overdue_connections_and_forgets_ended_ones() {
        let mut connections = Connections::new(Duration::ZERO);
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
