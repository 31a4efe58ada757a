//! One chat turn, start to end, in one place: the idempotency claim, preparing the prompt
//! (with the tenant's PHI policy), the call's audit marks, asking the model (whole, or
//! relayed piece by piece and cancellable from any replica), storing the turn or recording
//! a stateless call's usage, and settling the claim. Every API (gRPC, gRPC streams, the
//! OpenAI-compatible routes) asks here and only encodes what comes back, through its
//! [`ReplySink`].

use std::future::Future;

use tokio::sync::oneshot;
use tracing::Instrument;
use uuid::Uuid;

use crate::caller::{Caller, Principal};
use crate::chat::{
    ChatError, GenerationOptions, Generations, Generator, Idempotency, Message, Outcome,
    PreparedTurn, Prompt, Reply, ReplySink, StatelessCall, complete,
    turn::{
        idempotency::Claim,
        relay::{Started, relay},
    },
};

/// What a caller asks for.
pub enum Ask {
    /// A reply to a new message in a conversation; a non-empty `idempotency_key` makes a
    /// retried call answer with what the first one stored.
    Message {
        /// The conversation.
        conversation: Uuid,
        /// The user's message.
        content: String,
        /// Sampling settings and the model.
        options: GenerationOptions,
        /// The caller's key for retries (empty: none).
        idempotency_key: String,
    },
    /// A new reply in place of a conversation's last one.
    Regeneration {
        /// The conversation.
        conversation: Uuid,
        /// Sampling settings and the model.
        options: GenerationOptions,
    },
    /// A reply to messages the caller sends whole; nothing is stored.
    Stateless(StatelessCall),
}

/// What a turn came to.
pub struct Answered {
    /// The reply's id (see [`Started::reply`]).
    pub id: Uuid,
    /// The stored user message and reply (a conversation turn, or its replay).
    pub stored: Option<(Message, Message)>,
    /// What the model said; `None` for a replay, which answers with what was stored.
    pub said: Option<Reply>,
    /// Memories recalled into the prompt.
    pub memory_ids: Vec<Uuid>,
}

/// A sink for a reply that runs on after its call's handler returned (a stream): told how
/// the turn ended once it did.
pub trait DetachedSink: ReplySink + 'static {
    /// Ends the stream with the turn's outcome.
    fn end(self, outcome: Result<Answered, ChatError>) -> impl Future<Output = ()> + Send;
}

/// A sink that keeps the reply for the caller to read whole.
pub struct Collect;

impl ReplySink for Collect {
    async fn text(&mut self, _piece: String) -> bool {
        true
    }

    async fn gone(&self) {
        std::future::pending::<()>().await;
    }

    fn streams(&self) -> bool {
        false
    }
}

/// Conducts chat turns.
#[derive(Clone)]
pub struct Turns {
    generator: Generator,
    generations: Generations,
    idempotency: Idempotency,
}

/// A prepared turn of either kind.
enum Prepared {
    Turn(PreparedTurn),
    Stateless { id: Uuid, prompt: Prompt },
}

impl Prepared {
    fn prompt(&self) -> &Prompt {
        match self {
            Prepared::Turn(turn) => &turn.prompt,
            Prepared::Stateless { prompt, .. } => prompt,
        }
    }

    fn started(&self) -> Started {
        match self {
            Prepared::Turn(turn) => Started {
                reply: turn.reply_id,
                user_message: (!turn.regenerates()).then_some(turn.user_message_id),
            },
            Prepared::Stateless { id, .. } => Started {
                reply: *id,
                user_message: None,
            },
        }
    }
}

impl Turns {
    /// Turns prepared and stored by `generator`, streamed ones registered with
    /// `generations`, retries answered by `idempotency`.
    pub fn new(generator: Generator, generations: Generations, idempotency: Idempotency) -> Self {
        Self {
            generator,
            generations,
            idempotency,
        }
    }

    /// Answers `ask` for `caller` into `sink`: started, then the reply (streamed or
    /// collected, as the sink wants), stored or its usage recorded. An idempotency key is
    /// kept with what was stored, and released when the turn failed, or was dropped
    /// before the model answered. Once it answered, the turn is stored (and its key kept)
    /// even if the call is dropped meanwhile, so a retry replays it instead of generating
    /// it twice.
    ///
    /// # Errors
    /// [`ChatError`]: bad input naming the field, an unknown conversation, a refusal by
    /// the PHI policy or the budget, a provider failure, [`ChatError::Gone`] when the
    /// client left before the reply started.
    pub async fn reply(
        &self,
        caller: &Caller,
        ask: Ask,
        sink: &mut impl ReplySink,
    ) -> Result<Answered, ChatError> {
        let claim = match &ask {
            Ask::Message {
                conversation,
                idempotency_key,
                ..
            } => {
                caller.acts_on(conversation);
                match self
                    .idempotency
                    .claim(&caller.principal, *conversation, idempotency_key)
                    .await?
                {
                    Outcome::Run(claim) => claim,
                    Outcome::Replay(stored) => return Ok(replay(*stored, sink).await),
                }
            }
            Ask::Regeneration { conversation, .. } => {
                caller.acts_on(conversation);
                None
            }
            Ask::Stateless(_) => None,
        };
        let stores = !matches!(ask, Ask::Stateless(_));
        let (prepared, said) = match self.ask_model(caller, ask, sink).await {
            Ok(asked) => asked,
            Err(err) => {
                if let Some(claim) = claim {
                    claim.release().await;
                }
                return Err(err);
            }
        };
        let store = self
            .clone()
            .store(caller.principal.clone(), prepared, said, claim);
        if stores {
            // On a task of its own, which a dropped call does not cancel.
            tokio::spawn(store)
                .await
                .unwrap_or(Err(ChatError::Interrupted))
        } else {
            store.await
        }
    }

    /// Runs [`Turns::reply`] on its own task, for a stream that outlives its call's
    /// handler. Resolves once the reply started (`Ok`), or with the error that ended the
    /// turn before it did, so the call can still answer with it; how the turn ends later
    /// goes to [`DetachedSink::end`].
    ///
    /// # Errors
    /// The [`ChatError`] that ended the turn before it started.
    pub async fn reply_detached(
        &self,
        caller: Caller,
        ask: Ask,
        sink: impl DetachedSink,
    ) -> Result<(), ChatError> {
        let (opened, open) = oneshot::channel();
        let turns = self.clone();
        let task = tokio::spawn(
            async move {
                let mut sink = Opening {
                    inner: sink,
                    opened: Some(opened),
                };
                let outcome = turns.reply(&caller, ask, &mut sink).await;
                match sink.opened.take() {
                    Some(opened) => {
                        let _ = opened.send(outcome.map(drop));
                    }
                    None => sink.inner.end(outcome).await,
                }
            }
            .instrument(tracing::Span::current()),
        );
        // A call dropped before its reply started takes the turn with it, as a call
        // answered whole does; once started, the reply runs on until it ends.
        let mut unstarted = AbortOnDrop(Some(task.abort_handle()));
        let started = open.await.unwrap_or(Err(ChatError::Interrupted));
        unstarted.0 = None;
        started
    }

    /// Prepares the turn and asks the model, relaying the reply to `sink` or collecting it.
    async fn ask_model(
        &self,
        caller: &Caller,
        ask: Ask,
        sink: &mut impl ReplySink,
    ) -> Result<(Prepared, Reply), ChatError> {
        let prepared = self.prepare(caller, ask).await;
        if matches!(prepared, Err(ChatError::PhiRefused { .. }))
            || prepared.as_ref().is_ok_and(|p| p.prompt().phi)
        {
            caller.handled_phi();
        }
        let prepared = prepared?;
        let principal = &caller.principal;
        let mut running = match &prepared {
            Prepared::Turn(turn) if sink.streams() => {
                Some(self.generations.begin(principal, turn.reply_id).await?)
            }
            _ => None,
        };
        let started = prepared.started();
        if !sink.started(started).await {
            return Err(ChatError::Gone);
        }
        let said = if sink.streams() {
            let relayed = relay(prepared.prompt(), running.as_mut(), sink).await;
            // Finished here: a cancellation arriving now has nothing left to stop.
            drop(running);
            relayed?
        } else {
            complete(prepared.prompt()).await?
        };
        Ok((prepared, said))
    }

    /// Stores the turn and keeps its key with it, or records a stateless call's usage.
    async fn store(
        self,
        principal: Principal,
        prepared: Prepared,
        said: Reply,
        claim: Option<Box<Claim>>,
    ) -> Result<Answered, ChatError> {
        match prepared {
            Prepared::Turn(turn) => {
                let stored = self.generator.finish(&principal, &turn, &said).await;
                if let Some(claim) = claim {
                    match &stored {
                        Ok((user, reply)) => claim.keep((user.id, reply.id)).await,
                        Err(_) => claim.release().await,
                    }
                }
                Ok(Answered {
                    id: turn.reply_id,
                    stored: Some(stored?),
                    said: Some(said),
                    memory_ids: turn.memory_ids,
                })
            }
            Prepared::Stateless { id, .. } => {
                self.generator
                    .accounting
                    .record(&principal, &said.model_used, said.usage, said.latency_ms)
                    .await;
                Ok(Answered {
                    id,
                    stored: None,
                    said: Some(said),
                    memory_ids: Vec::new(),
                })
            }
        }
    }

    async fn prepare(&self, caller: &Caller, ask: Ask) -> Result<Prepared, ChatError> {
        let principal = &caller.principal;
        Ok(match ask {
            Ask::Message {
                conversation,
                content,
                options,
                ..
            } => Prepared::Turn(
                self.generator
                    .prepare(principal, conversation, &content, &options)
                    .await?,
            ),
            Ask::Regeneration {
                conversation,
                options,
            } => Prepared::Turn(
                self.generator
                    .prepare_regeneration(principal, conversation, &options)
                    .await?,
            ),
            Ask::Stateless(call) => Prepared::Stateless {
                id: Uuid::now_v7(),
                prompt: self.generator.prepare_stateless(principal, call).await?,
            },
        })
    }
}

/// Answers a retried call with what its first call stored: started, the whole reply as
/// one piece.
async fn replay(stored: (Message, Message), sink: &mut impl ReplySink) -> Answered {
    let (user, reply) = stored;
    let started = Started {
        reply: reply.id,
        user_message: Some(user.id),
    };
    if sink.started(started).await {
        sink.text(reply.content.clone()).await;
    }
    Answered {
        id: reply.id,
        stored: Some((user, reply)),
        said: None,
        memory_ids: Vec::new(),
    }
}

/// A detached sink until its reply starts: the start is reported to the waiting handler.
struct Opening<S> {
    inner: S,
    opened: Option<oneshot::Sender<Result<(), ChatError>>>,
}

impl<S: ReplySink> ReplySink for Opening<S> {
    async fn started(&mut self, started: Started) -> bool {
        let delivered = self.inner.started(started).await;
        // The handler is waiting for this; if it is gone, so is the client.
        let waiting = self
            .opened
            .take()
            .is_some_and(|opened| opened.send(Ok(())).is_ok());
        delivered && waiting
    }

    fn streams(&self) -> bool {
        self.inner.streams()
    }

    fn text(&mut self, piece: String) -> impl Future<Output = bool> + Send {
        self.inner.text(piece)
    }

    fn tool_call(&mut self, piece: crate::llm::ToolCallPiece) -> impl Future<Output = bool> + Send {
        self.inner.tool_call(piece)
    }

    fn gone(&self) -> impl Future<Output = ()> + Send {
        self.inner.gone()
    }
}

/// Aborts a task when dropped while armed.
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
