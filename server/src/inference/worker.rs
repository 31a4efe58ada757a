//! A model's workers: one or more threads, each owning a copy of the loaded model with its
//! own libtorch intra-op threads, serve one bounded queue of requests, each a list of items
//! (texts, or tensors for generic models). A free worker takes the first request waiting,
//! then keeps taking requests until the batch holds `max_batch` items or `max_wait` has
//! passed since the first, runs the model on the batch, and answers each request with its
//! part; meanwhile the next free worker collects the next batch. (On CPUs, two workers of
//! one thread each do more than one worker of two threads: small matrices parallelise
//! poorly inside one call.) A full queue refuses at once, so callers learn of overload
//! instead of waiting without bound. Dropping the [`Worker`] lets the threads finish what
//! was queued and stop.

use std::{
    sync::{
        Arc, Mutex,
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
    /// libtorch intra-op threads of each worker.
    pub threads: usize,
}

/// The handle of a model's worker threads.
pub struct Worker<I, O> {
    name: String,
    requests: SyncSender<Request<I, O>>,
}

impl<I: Clone + Send + 'static, O: Send + 'static> Worker<I, O> {
    /// Starts a thread per runner (each a copy of the model) serving model `name`,
    /// batching as `batching` says and counting batch sizes in `metrics`.
    ///
    /// # Errors
    /// [`InferenceError::Failed`] when a thread cannot be started.
    pub fn start<R: Runner<Input = I, Output = O>>(
        name: &str,
        runners: Vec<R>,
        batching: Batching,
        metrics: Arc<Metrics>,
    ) -> Result<Self, InferenceError> {
        let (requests, queue) = mpsc::sync_channel(batching.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for (n, runner) in runners.into_iter().enumerate() {
            let model = name.to_owned();
            let queue = queue.clone();
            let metrics = metrics.clone();
            thread::Builder::new()
                .name(format!("model-{name}-{n}"))
                .spawn(move || {
                    tch::set_num_threads(i32::try_from(batching.threads).unwrap_or(1));
                    serve(&model, runner, &queue, batching, &metrics);
                })
                .map_err(|err| InferenceError::Failed(format!("cannot start a worker: {err}")))?;
        }
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

/// A worker thread: batches until every sender is gone.
fn serve<R: Runner>(
    model: &str,
    mut runner: R,
    queue: &Mutex<Receiver<Request<R::Input, R::Output>>>,
    batching: Batching,
    metrics: &Metrics,
) {
    while let Some(mut batch) = collect(queue, batching) {
        // Requests whose caller went away are not worth running.
        batch.retain(|request| !request.reply.is_closed());
        run_batch(model, &mut runner, batch, batching.max_batch, metrics);
    }
    tracing::info!(model, "model worker stopped");
}

/// The next batch, taken while holding the queue (other workers wait their turn); `None`
/// once every sender is gone.
fn collect<I, O>(
    queue: &Mutex<Receiver<Request<I, O>>>,
    batching: Batching,
) -> Option<Vec<Request<I, O>>> {
    let queue = queue.lock().ok()?;
    let first = queue.recv().ok()?;
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
    Some(batch)
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
            threads: 1,
        };
        let worker = Arc::new(
            Worker::start(
                "test",
                vec![Lengths(seen.clone())],
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_take_turns_at_the_queue() {
        /// Records which copy ran each batch; each batch takes a while.
        struct Copy(usize, Arc<std::sync::Mutex<Vec<usize>>>);
        impl Runner for Copy {
            type Input = String;
            type Output = usize;
            fn run(&mut self, texts: &[String]) -> Result<(Vec<usize>, usize), InferenceError> {
                self.1.lock().unwrap().push(self.0);
                std::thread::sleep(Duration::from_millis(20));
                Ok((vec![self.0; texts.len()], 0))
            }
        }
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let batching = Batching {
            max_batch: 1,
            max_wait: Duration::ZERO,
            queue: 64,
            threads: 1,
        };
        let copies = vec![Copy(0, ran.clone()), Copy(1, ran.clone())];
        let worker =
            Arc::new(Worker::start("pool", copies, batching, Arc::new(Metrics::new())).unwrap());
        let calls: Vec<_> = (0..12)
            .map(|n| {
                let worker = worker.clone();
                tokio::spawn(async move { worker.run(vec![n.to_string()]).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran.len(), 12);
        assert!(
            ran.contains(&0) && ran.contains(&1),
            "one copy did everything: {ran:?}"
        );
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
            threads: 1,
        };
        let worker =
            Worker::start("stuck", vec![Stuck], batching, Arc::new(Metrics::new())).unwrap();
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
