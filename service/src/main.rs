//! The example klue service: serves `apis/helloworld.yaml` with the handlers in
//! [`handlers`], bound at compile time through the generated `HelloworldApi` trait.

mod api;
mod handlers;

use handlers::Helloworld;

/// mimalloc instead of the system allocator: fewer instructions per allocation on the request
/// path, and no per-thread 64 MiB arenas (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    klue::server::run_service(api::specs(), |builder| {
        builder.serve(
            "helloworld",
            api::helloworld::server::handlers(Helloworld::default()),
        )
    })
    .await
}
