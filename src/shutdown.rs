//! One future for "the process was asked to stop": SIGINT or SIGTERM.

/// Which signal arrived; as a number (`s as u8`), the shell's exit code for a process ended by
/// it (128 + signal number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt = 130,
    /// SIGTERM.
    Terminate = 143,
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled, so a signal during start-up is not the default "die at once".
/// If a handler cannot be installed, it logs why and only the other signal ends the process.
pub fn signal() -> impl Future<Output = ()> + Send {
    let arrived = wait_for_signal();
    async move {
        match arrived.await {
            Signal::Interrupt => tracing::info!("received SIGINT, shutting down"),
            Signal::Terminate => tracing::info!("received SIGTERM, shutting down"),
        }
    }
}

/// Resolves with the first SIGINT or SIGTERM; the handlers are installed at the call. Must be
/// called inside a tokio runtime.
pub(crate) fn wait_for_signal() -> impl Future<Output = Signal> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &'static str| {
            let installed = signal(kind)
                .inspect_err(|e| tracing::error!(error = %e, "cannot listen for {name}"));
            async move {
                let Ok(mut s) = installed else {
                    return std::future::pending().await;
                };
                s.recv().await;
            }
        };
        let interrupt = listen(SignalKind::interrupt(), "SIGINT");
        let terminate = listen(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                () = interrupt => Signal::Interrupt,
                () = terminate => Signal::Terminate,
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
