//! One future for "the process was asked to stop": SIGINT or SIGTERM.

/// Which signal arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    /// The shell's exit code for a process ended by this signal (128 + signal number).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM. If a handler cannot be installed, it logs why and only
/// the other signal ends the process.
pub async fn signal() {
    let s = wait_for_signal().await;
    match s {
        Signal::Interrupt => tracing::info!("received SIGINT, shutting down"),
        Signal::Terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}

/// Resolves with the first SIGINT or SIGTERM.
pub async fn wait_for_signal() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => Signal::Interrupt,
            _ = term => Signal::Terminate,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
