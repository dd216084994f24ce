//! Panics in handlers: caught per request (the process keeps serving), described with their
//! message and a backtrace for the log and the error reporter, never for the client.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    /// The backtrace of the last panic on this thread that happened inside a request.
    static LAST_BACKTRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs a panic hook that records the backtrace of panics inside request handlers (which
/// the runtime reports with their error id) and leaves other panics to the previous hook.
pub fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if crate::context::current().is_some() {
                let backtrace = Backtrace::force_capture().to_string();
                let location = info
                    .location()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default();
                LAST_BACKTRACE
                    .with(|b| *b.borrow_mut() = Some(format!("panicked{location}\n{backtrace}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// The panic's message and, when the hook caught it, where and the backtrace.
pub(crate) fn describe(payload: Box<dyn Any + Send>) -> anyhow::Error {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned());
    let trace = LAST_BACKTRACE.with(|b| b.borrow_mut().take());
    match trace {
        Some(trace) => anyhow::anyhow!("handler panicked: {message}; {trace}"),
        None => anyhow::anyhow!("handler panicked: {message}"),
    }
}
