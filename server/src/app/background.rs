//! The server's background work (probes, jobs, listeners, periodic passes): started in
//! one place, told to stop at once at shutdown, and waited for.

use std::{future::Future, pin::Pin};

use tokio::{sync::watch, task::JoinHandle};

/// The server's background jobs, all told to stop at once at shutdown.
pub(super) struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Background {
    fn default() -> Self {
        Self {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Background {
    /// Spawns the job `start` makes, handing it the future that resolves at shutdown.
    pub(super) fn spawn<J>(
        &mut self,
        start: impl FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> J,
    ) where
        J: Future<Output = ()> + Send + 'static,
    {
        let mut stopped = self.stop.subscribe();
        let stop = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        self.tasks.push(tokio::spawn(start(stop)));
    }

    /// Tells every job to stop and waits for them.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
