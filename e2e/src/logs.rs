//! The operators' logs: kept in memory, so that a test can search everything the operators
//! logged (e.g. for a password), and printed on the test's output when `E2E_LOG` is set (a
//! filter such as `info` or `k8ssandra_data_plane=debug`), for debugging a test.

use std::{
    io::Write,
    sync::{Mutex, Once},
};

use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// Everything the operators logged at debug level or above, as text.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// What is kept: every event of the project's crates, debug level included.
const CAPTURE_FILTER: &str = "k8ssandra_control_plane=debug,k8ssandra_data_plane=debug,\
                              k8ssandra_reconcile=debug,k8ssandra_mgmt_api=debug";

/// Installs the log subscriber once per test process.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let capture = fmt::layer()
            .with_ansi(false)
            .with_writer(|| Captured)
            .with_filter(EnvFilter::new(CAPTURE_FILTER));
        let echo = std::env::var("E2E_LOG").ok().map(|filter| {
            fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::new(filter))
        });
        let _ = tracing_subscriber::registry()
            .with(capture)
            .with(echo)
            .try_init();
    });
}

/// Everything the operators of this test process logged so far.
#[must_use]
pub fn captured() -> String {
    CAPTURED
        .lock()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

struct Captured;

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = CAPTURED.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
