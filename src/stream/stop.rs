//! Stopping a continuous query by a signal: SIGINT (Ctrl-C outside the
//! shell) or SIGTERM ends it through its normal path, so what it must say
//! (late and bad rows) and commit (a file sink's open part) is not lost, as it
//! would be if the signal killed the process.
//!
//! Tokio keeps a signal's handler for the rest of the process once one is
//! installed, so after a continuous statement has listened, a later
//! statement of the same script is not killed by SIGINT either. The shell
//! handles Ctrl-C itself (it cancels the statement): it says so with
//! [`leave_signals_to_the_shell`], and queries then do not listen.

use std::sync::atomic::{AtomicBool, Ordering};

/// The interactive shell cancels statements on Ctrl-C itself.
static SHELL_HANDLES_SIGNALS: AtomicBool = AtomicBool::new(false);

/// Say that the shell handles SIGINT (it drops the running statement), so
/// continuous queries do not stop on it themselves.
pub fn leave_signals_to_the_shell() {
    SHELL_HANDLES_SIGNALS.store(true, Ordering::Relaxed);
}

/// The first SIGINT or SIGTERM, by name.
pub async fn stop_signal() -> &'static str {
    if SHELL_HANDLES_SIGNALS.load(Ordering::Relaxed) {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            // No handler: never stop on a signal here (the default action applies).
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}
