//! Where the service's log lines go: a buffer shared by the threads that log, written out in
//! batches by whichever thread finds it full, or by a flusher thread.
//!
//! Why not `tracing_appender::non_blocking`: its channel wakes the writer thread for nearly
//! every line under load (the writer drains the queue, parks, and the next line unparks it).
//! On a 2-core machine that was a futex wake and a context switch every few requests, and
//! about 6 % of the service's throughput on `GET /ping` (see docs/benchmarks.md). Here a
//! line is appended under a mutex and nobody is woken while the flusher is busy or pausing:
//!
//! - when the log was idle, the first line wakes the flusher, which writes it at once (an
//!   interactive user sees each line as it happens);
//! - under load the flusher writes at most once per [`FLUSH_PAUSE`], and a thread whose
//!   line fills the buffer past [`BATCH_BYTES`] writes the batch itself;
//! - nothing is dropped: when the output blocks, logging threads wait for it (back-pressure,
//!   with at most about two batches in memory);
//! - [`LogSink::stop`] (from the service's log guard) writes what is left; lines logged
//!   after it are written directly.
//!
//! Lines keep their order: a batch is taken out of the buffer while its taker already holds
//! the output, so two batches are never written at once or out of order.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// A batch is written as soon as the buffer holds this much.
const BATCH_BYTES: usize = 64 * 1024;

/// Under load, the flusher waits this long after a write before the next one.
const FLUSH_PAUSE: Duration = Duration::from_millis(10);

/// The shared log buffer and its output (stdout in the service). Cheap to clone.
#[derive(Clone)]
pub(crate) struct LogSink {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the flusher: a line arrived while it waited, or `stop`.
    wake: Condvar,
    output: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    /// A spare buffer, swapped in when a batch is taken, so batches reuse their allocation.
    spare: Vec<u8>,
    flusher_waiting: bool,
    stopped: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bytes behind: still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LogSink {
    /// A sink writing to `output`, with its flusher thread (`klue-log`). Without a thread
    /// (the system refused one), the sink writes every line directly.
    pub(crate) fn start(output: Box<dyn Write + Send>) -> (LogSink, Option<JoinHandle<()>>) {
        let sink = LogSink {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                output: Mutex::new(output),
            }),
        };
        let flusher = sink.clone();
        let handle = std::thread::Builder::new()
            .name("klue-log".into())
            .spawn(move || flusher.run_flusher())
            .ok();
        if handle.is_none() {
            lock(&sink.shared.state).stopped = true;
        }
        (sink, handle)
    }

    /// Adds one or more whole lines.
    pub(crate) fn append(&self, lines: &[u8]) {
        let mut state = lock(&self.shared.state);
        if state.stopped {
            drop(state);
            write_out(&mut lock(&self.shared.output), lines);
            return;
        }
        let was_empty = state.pending.is_empty();
        state.pending.extend_from_slice(lines);
        if state.pending.len() >= BATCH_BYTES {
            self.write_batch(state);
        } else if was_empty && state.flusher_waiting {
            self.shared.wake.notify_one();
        }
    }

    /// Takes the pending lines and writes them, keeping the order (see the module docs).
    fn write_batch(&self, mut state: MutexGuard<'_, State>) {
        let mut output = lock(&self.shared.output);
        let spare = std::mem::take(&mut state.spare);
        let mut batch = std::mem::replace(&mut state.pending, spare);
        drop(state);
        write_out(&mut output, &batch);
        drop(output);
        batch.clear();
        let mut state = lock(&self.shared.state);
        if state.spare.capacity() < batch.capacity() {
            state.spare = batch;
        }
    }

    fn run_flusher(&self) {
        loop {
            let mut state = lock(&self.shared.state);
            while state.pending.is_empty() && !state.stopped {
                state.flusher_waiting = true;
                state = self
                    .shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.flusher_waiting = false;
            }
            let stopped = state.stopped;
            if !state.pending.is_empty() {
                self.write_batch(state);
            }
            if stopped {
                return;
            }
            std::thread::sleep(FLUSH_PAUSE);
        }
    }

    /// Writes what is pending and makes later lines go out directly; wakes the flusher so
    /// that it ends.
    pub(crate) fn stop(&self) {
        let mut state = lock(&self.shared.state);
        state.stopped = true;
        self.shared.wake.notify_one();
        if !state.pending.is_empty() {
            self.write_batch(state);
        }
    }
}

/// Writes and flushes; a failing output (a closed stdout) loses the lines, as `println!`
/// would not, but a service must not stop serving because its log reader went away.
fn write_out(output: &mut Box<dyn Write + Send>, bytes: &[u8]) {
    let _ = output.write_all(bytes);
    let _ = output.flush();
}

/// What `tracing_subscriber` writes an event into: the formatted line, in one `write_all`.
pub(crate) struct SinkWriter<'a>(&'a LogSink);

impl Write for SinkWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = SinkWriter<'a>;

    fn make_writer(&'a self) -> SinkWriter<'a> {
        SinkWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut inner = lock(&self.0);
            inner.0.extend_from_slice(buf);
            inner.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8_lossy(&lock(&self.0).0).into_owned()
        }
        fn writes(&self) -> usize {
            lock(&self.0).1
        }
    }

    fn wait_for(capture: &Capture, lines: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = capture.text();
            if text.lines().count() >= lines || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_line_after_a_quiet_time_is_written_without_waiting_for_more() {
        let capture = Capture::default();
        let (sink, handle) = LogSink::start(Box::new(capture.clone()));
        sink.append(b"first\n");
        assert_eq!(wait_for(&capture, 1), "first\n");
        std::thread::sleep(FLUSH_PAUSE * 3);
        sink.append(b"second\n");
        assert_eq!(wait_for(&capture, 2), "first\nsecond\n");
        sink.stop();
        if let Some(handle) = handle {
            assert!(handle.join().is_ok());
        }
    }

    #[test]
    fn many_threads_lose_nothing_and_keep_each_threads_order() {
        let capture = Capture::default();
        let (sink, handle) = LogSink::start(Box::new(capture.clone()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        sink.append(format!("{t} {i:06} {}\n", "x".repeat(40)).as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        sink.stop();
        if let Some(handle) = handle {
            assert!(handle.join().is_ok());
        }
        let text = capture.text();
        assert_eq!(text.lines().count(), 80_000);
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("{t} ")))
                .collect();
            assert_eq!(mine.len(), 20_000);
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "thread {t} out of order"
            );
        }
        // Batched: far fewer writes than lines.
        assert!(
            capture.writes() < 80_000 / 10,
            "{} writes",
            capture.writes()
        );
    }

    #[test]
    fn lines_after_stop_are_written_directly() {
        let capture = Capture::default();
        let (sink, handle) = LogSink::start(Box::new(capture.clone()));
        sink.append(b"before\n");
        sink.stop();
        if let Some(handle) = handle {
            assert!(handle.join().is_ok());
        }
        sink.append(b"after\n");
        assert_eq!(capture.text(), "before\nafter\n");
    }
}
