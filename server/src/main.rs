//! `portico` binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    portico_server::cli::run().await
}
