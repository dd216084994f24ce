//! The request timeout around a handler, with its timer made only when the handler does not
//! finish on its first poll.
//!
//! Most handlers answer without waiting (the helloworld ones all do). `tokio::time::timeout`
//! makes its timer up front: a clone of the runtime handle (an atomic shared by every worker)
//! and a timer entry per request, for nothing in that case.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The handler did not finish within the limit.
#[derive(Debug)]
pub(crate) struct TimedOut;

/// Polls `future` until it finishes or, once it has had to wait, until `limit` has passed.
pub(crate) fn within<F: Future + Unpin>(limit: Duration, future: F) -> Within<F> {
    Within {
        future,
        limit,
        sleep: None,
    }
}

pub(crate) struct Within<F> {
    future: F,
    limit: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<F: Future + Unpin> Future for Within<F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // As `tokio::time::timeout`: the future first, so an answer that is ready wins.
        if let Poll::Ready(output) = Pin::new(&mut this.future).poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let limit = this.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        sleep.as_mut().poll(cx).map(|()| Err(TimedOut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_answer_wins_and_a_slow_one_times_out() {
        let ready = within(Duration::ZERO, std::future::ready(7)).await;
        assert!(matches!(ready, Ok(7)));
        let slow = Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            1
        });
        let started = std::time::Instant::now();
        let result = within(Duration::from_millis(200), slow).await;
        assert!(matches!(result, Err(TimedOut)));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(10), "{waited:?}");
        let in_time = Box::pin(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            2
        });
        assert!(matches!(
            within(Duration::from_secs(30), in_time).await,
            Ok(2)
        ));
    }
}
