//! Fuzz target: the spec loader (`klue_spec::load_sources`) on arbitrary YAML/JSON text, then
//! the runtime's startup checks (`ServiceBuilder::build`) on whatever loads.
//!
//! The input is one or two files: the text before a line `%%common` is `apis/api.yaml`, the text
//! after it is `apis/common.yaml` (so relative-file `$ref`s such as
//! `common.yaml#/components/schemas/Error` are reachable). Any outcome is fine except a panic, a
//! hang or an abort: a bad spec must come back as `SpecErrors` or `StartupError`, never as a
//! crash at startup.
#![no_main]

use klue::spec::{Source, load_sources};
use klue::{Handlers, Reply, Service};
use libfuzzer_sys::fuzz_target;

const SEPARATOR: &str = "\n%%common\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (api, common) = match text.split_once(SEPARATOR) {
        Some((api, common)) => (api, Some(common)),
        None => (text, None),
    };
    let mut sources = vec![Source {
        path: "apis/api.yaml".into(),
        text: api.to_owned(),
    }];
    if let Some(common) = common {
        sources.push(Source {
            path: "apis/common.yaml".into(),
            text: common.to_owned(),
        });
    }
    let Ok(apis) = load_sources(&sources) else {
        return;
    };
    // Every API that loads is also checked by the runtime, with a handler for each operation.
    for api in &apis {
        let mut handlers = Handlers::new();
        for op in api.operations.iter().filter(|op| !op.builtin) {
            handlers.insert(op.operation_id.clone(), |_request: klue::Request| async {
                Ok(Reply::empty(http::StatusCode::NO_CONTENT))
            });
        }
        let builder = Service::builder(apis.clone())
            .serve(&api.name, handlers)
            .authenticator(std::sync::Arc::new(klue::auth::DenyAll));
        let _ = builder.build();
    }
});
