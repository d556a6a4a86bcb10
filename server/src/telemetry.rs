//! One tracing subscriber factory for the binary and the tests.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the
/// configured level. Safe to call more than once (later calls are no-ops), so
/// tests can call it from every test.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false))
            .try_init(),
        LogFormat::Text => registry.with(fmt::layer().with_target(true)).try_init(),
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

/// For tests: logs to stdout only when `TEST_LOG` is set, otherwise nothing.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(&LogSettings { format: LogFormat::Text, level: "debug,sqlx=warn,hyper=info".into() });
    }
}
