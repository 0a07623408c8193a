//! One reaper for the whole unit-test process.
//!
//! Every `ExitRouter` reaps with `waitpid(-1)`, so two routers alive in one process steal each
//! other's exit statuses. Tests run as threads of one process: those that spawn children share
//! this router, which lives on its own thread and runtime for the life of the test binary.
//! (It belongs beside `reaper.rs`; it lives here until the reaper's own tests adopt it.)

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::reaper::ExitRouter;

pub fn shared() -> ExitRouter {
    static ROUTER: OnceLock<ExitRouter> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("test-reaper".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("test reaper runtime");
                    runtime.block_on(async move {
                        sender
                            .send(ExitRouter::start().expect("test reaper"))
                            .expect("hand the router over");
                        std::future::pending::<()>().await
                    })
                })
                .expect("test reaper thread");
            receiver.recv().expect("test reaper started")
        })
        .clone()
}

/// `program` looked up in PATH, without running anything (a run would need a reaper).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether the test runs as root, for tests that need mount and namespace privileges.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
