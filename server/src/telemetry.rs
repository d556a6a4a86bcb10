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

/// Everything the test process logged (see [`init_for_tests`]).
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
/// Beyond this the capture stops growing (a test suite logs a few MB).
const CAPTURE_LIMIT: usize = 256 * 1024 * 1024;

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut captured = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
        if captured.len() + buf.len() <= CAPTURE_LIMIT {
            captured.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// For tests: every event at debug level (sqlx and hyper quieter) goes into
/// an in-memory capture that tests grep for secrets ([`captured_logs`]);
/// with `TEST_LOG` set it is printed as well.
pub fn init_for_tests() {
    let filter = EnvFilter::new("debug,sqlx=warn,hyper=info,hyper_util=info,h2=info,rustls=info");
    let capture = fmt::layer().with_target(true).with_ansi(false).with_writer(|| Capture);
    let print = std::env::var_os("TEST_LOG").is_some().then(|| fmt::layer().with_target(true).with_test_writer());
    let _ = tracing_subscriber::registry().with(filter).with(capture).with(print).try_init();
}

/// What this test process has logged so far (see [`init_for_tests`]).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}
