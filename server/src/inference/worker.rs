//! A model's worker: one thread owns the loaded model and serves a bounded queue of
//! requests, each a list of items (texts, or tensors for generic models). It takes the
//! first request waiting, then keeps taking requests until the batch holds `max_batch`
//! items or `max_wait` has passed since the first, runs the model once on the batch (for
//! texts: padded to the longest), and answers each request with its part. A full queue refuses at once, so callers learn of
//! overload instead of waiting without bound. Dropping the [`Worker`] lets the thread
//! finish what it queued and stop.

use std::{
    sync::{
        Arc,
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread,
    time::{Duration, Instant},
};

use tokio::sync::oneshot;

use super::InferenceError;
use crate::telemetry::Metrics;

/// Runs a loaded model on a batch of items.
pub trait Runner: Send + 'static {
    /// What a request gives per item.
    type Input: Clone + Send + 'static;
    /// What each item becomes.
    type Output: Send + 'static;

    /// One output per item, and the tokens processed.
    ///
    /// # Errors
    /// [`InferenceError::Failed`] when the model fails.
    fn run(&mut self, items: &[Self::Input]) -> Result<(Vec<Self::Output>, usize), InferenceError>;
}

/// What a request gets back: its outputs and its items' tokens.
pub type Answer<O> = Result<(Vec<O>, usize), InferenceError>;

/// One queued request.
struct Request<I, O> {
    items: Vec<I>,
    reply: oneshot::Sender<Answer<O>>,
}

/// How a worker batches.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Most items per model call.
    pub max_batch: usize,
    /// Longest the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests that may wait in the queue.
    pub queue: usize,
}

/// The handle of a model's worker thread.
pub struct Worker<I, O> {
    name: String,
    requests: SyncSender<Request<I, O>>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Worker<I, O> {
    /// Starts a thread serving `runner` for model `name`, batching as `batching` says and
    /// counting batch sizes in `metrics`.
    ///
    /// # Errors
    /// [`InferenceError::Failed`] when the thread cannot be started.
    pub fn start<R: Runner<Input = I, Output = O>>(
        name: &str,
        runner: R,
        batching: Batching,
        metrics: Arc<Metrics>,
    ) -> Result<Self, InferenceError> {
        let (requests, queue) = mpsc::sync_channel(batching.queue.max(1));
        let model = name.to_owned();
        thread::Builder::new()
            .name(format!("model-{name}"))
            .spawn(move || serve(&model, runner, &queue, batching, &metrics))
            .map_err(|err| InferenceError::Failed(format!("cannot start a worker: {err}")))?;
        Ok(Self {
            name: name.to_owned(),
            requests,
        })
    }

    /// Runs the model on `items` in the next batch.
    ///
    /// # Errors
    /// [`InferenceError::Busy`] when the queue is full, [`InferenceError::Stopped`] when
    /// the worker stopped, or the model's failure.
    pub async fn run(&self, items: Vec<I>) -> Answer<O> {
        let (reply, answer) = oneshot::channel();
        match self.requests.try_send(Request { items, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(InferenceError::Busy(self.name.clone())),
            Err(TrySendError::Disconnected(_)) => return Err(InferenceError::Stopped),
        }
        answer.await.unwrap_or(Err(InferenceError::Stopped))
    }
}

/// The worker thread: batches until every sender is gone.
fn serve<R: Runner>(
    model: &str,
    mut runner: R,
    queue: &Receiver<Request<R::Input, R::Output>>,
    batching: Batching,
    metrics: &Metrics,
) {
    while let Ok(first) = queue.recv() {
        let deadline = Instant::now() + batching.max_wait;
        let mut size = first.items.len();
        let mut batch = vec![first];
        while size < batching.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match queue.recv_timeout(left) {
                Ok(request) => {
                    size += request.items.len();
                    batch.push(request);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        // Requests whose caller went away are not worth running.
        batch.retain(|request| !request.reply.is_closed());
        run_batch(model, &mut runner, batch, batching.max_batch, metrics);
    }
    tracing::info!(model, "model worker stopped");
}

/// Runs `batch` in model calls of at most `max_batch` items and answers each request.
fn run_batch<R: Runner>(
    model: &str,
    runner: &mut R,
    batch: Vec<Request<R::Input, R::Output>>,
    max_batch: usize,
    metrics: &Metrics,
) {
    if batch.is_empty() {
        return;
    }
    let items: Vec<R::Input> = batch.iter().flat_map(|r| r.items.iter().cloned()).collect();
    let mut outputs = Vec::with_capacity(items.len());
    let mut tokens = 0;
    for chunk in items.chunks(max_batch.max(1)) {
        metrics.record_inference_batch(model, chunk.len());
        match runner.run(chunk) {
            Ok((mut out, used)) => {
                outputs.append(&mut out);
                tokens += used;
            }
            Err(err) => {
                tracing::error!(model, error = %err, "model call failed");
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(InferenceError::Failed(err.to_string())));
                }
                return;
            }
        }
    }
    let total = items.len().max(1);
    let mut outputs = outputs.into_iter();
    for request in batch {
        let mine: Vec<R::Output> = outputs.by_ref().take(request.items.len()).collect();
        // Tokens are shared out in proportion to items; exact per request would need
        // another pass over the encodings for little use.
        let share = tokens * request.items.len() / total;
        let _ = request.reply.send(Ok((mine, share)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles the length of each text; records the batch sizes it saw.
    struct Lengths(Arc<std::sync::Mutex<Vec<usize>>>);

    impl Runner for Lengths {
        type Input = String;
        type Output = usize;

        fn run(&mut self, texts: &[String]) -> Result<(Vec<usize>, usize), InferenceError> {
            self.0.lock().unwrap().push(texts.len());
            Ok((texts.iter().map(|t| t.len() * 2).collect(), texts.len()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_get_their_own_answers() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batching = Batching {
            max_batch: 8,
            max_wait: Duration::from_millis(200),
            queue: 64,
        };
        let worker = Arc::new(
            Worker::start(
                "test",
                Lengths(seen.clone()),
                batching,
                Arc::new(Metrics::new()),
            )
            .unwrap(),
        );
        let calls: Vec<_> = (0..16)
            .map(|n| {
                let worker = worker.clone();
                tokio::spawn(async move { worker.run(vec!["x".repeat(n)]).await })
            })
            .collect();
        for (n, call) in calls.into_iter().enumerate() {
            let (out, _) = call.await.unwrap().unwrap();
            assert_eq!(out, [n * 2]);
        }
        let sizes = seen.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 16);
        assert!(sizes.iter().all(|&s| s <= 8), "{sizes:?}");
        assert!(sizes.len() < 16, "some requests shared a batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        struct Stuck;
        impl Runner for Stuck {
            type Input = String;
            type Output = ();
            fn run(&mut self, _: &[String]) -> Result<(Vec<()>, usize), InferenceError> {
                std::thread::sleep(Duration::from_millis(300));
                Ok((vec![()], 0))
            }
        }
        let batching = Batching {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue: 1,
        };
        let worker = Worker::start("stuck", Stuck, batching, Arc::new(Metrics::new())).unwrap();
        // One request runs, one waits in the queue: of three sent at once, at least one
        // finds the queue full.
        let (a, b, c) = tokio::join!(
            worker.run(vec!["a".into()]),
            worker.run(vec!["b".into()]),
            worker.run(vec!["c".into()]),
        );
        let answers = [a, b, c];
        let busy = answers
            .iter()
            .filter(|a| matches!(a, Err(InferenceError::Busy(_))))
            .count();
        assert!(
            busy >= 1 && answers.iter().any(Result::is_ok),
            "{answers:?}"
        );
    }
}
