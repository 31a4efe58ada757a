//! One chat turn, start to end, in one place: the idempotency claim, preparing the prompt
//! (with the tenant's PHI policy), the call's audit marks, asking the model (whole, or
//! relayed piece by piece and cancellable from any replica), storing the turn or recording
//! a stateless call's usage, and settling the claim. Every API (gRPC, gRPC streams, the
//! OpenAI-compatible routes) asks here and only encodes what comes back, through its
//! [`ReplySink`].

use std::future::Future;

use tracing::Instrument;
use uuid::Uuid;

use crate::caller::{Caller, Principal};
use crate::chat::{
    ChatError, GenerationOptions, Generations, Generator, Idempotency, Message, Outcome,
    PreparedTurn, Prompt, Reply, ReplySink, Running, StatelessCall,
    turn::{idempotency::Claim, relay::Started, rounds},
};
use crate::plugins::Toolbox;

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

/// A turn claimed and prepared, ready to answer.
enum Opened {
    /// A retry of a turn already stored under its idempotency key.
    Replay(Box<(Message, Message)>),
    /// A turn to generate.
    Fresh {
        prepared: Box<Prepared>,
        running: Option<Running>,
        claim: Option<Box<Claim>>,
    },
}

/// A prepared turn of either kind.
enum Prepared {
    Turn(PreparedTurn),
    Stateless {
        id: Uuid,
        prompt: Prompt,
        toolbox: Option<Toolbox>,
    },
}

impl Prepared {
    fn prompt(&self) -> &Prompt {
        match self {
            Prepared::Turn(turn) => &turn.prompt,
            Prepared::Stateless { prompt, .. } => prompt,
        }
    }

    fn toolbox(&self) -> Option<&Toolbox> {
        match self {
            Prepared::Turn(turn) => turn.toolbox.as_ref(),
            Prepared::Stateless { toolbox, .. } => toolbox.as_ref(),
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
        let opened = self.open(caller, ask, sink.streams()).await?;
        self.answer(caller, opened, sink).await
    }

    /// Prepares `ask` here, so the call can still fail with what refuses it, then answers
    /// it on a task of its own, for a stream that outlives its call's handler; how the
    /// turn ends goes to [`DetachedSink::end`].
    ///
    /// # Errors
    /// The [`ChatError`] that refuses the turn before its reply starts.
    pub async fn reply_detached(
        &self,
        caller: Caller,
        ask: Ask,
        mut sink: impl DetachedSink,
    ) -> Result<(), ChatError> {
        let opened = self.open(&caller, ask, sink.streams()).await?;
        let turns = self.clone();
        tokio::spawn(
            async move {
                let outcome = turns.answer(&caller, opened, &mut sink).await;
                sink.end(outcome).await;
            }
            .instrument(tracing::Span::current()),
        );
        Ok(())
    }

    /// Claims the key, then prepares the turn and registers it for cancellation when it
    /// `streams`; a turn that cannot start releases its key before the call fails.
    async fn open(&self, caller: &Caller, ask: Ask, streams: bool) -> Result<Opened, ChatError> {
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
                    Outcome::Replay(stored) => return Ok(Opened::Replay(stored)),
                }
            }
            Ask::Regeneration { conversation, .. } => {
                caller.acts_on(conversation);
                None
            }
            Ask::Stateless(_) => None,
        };
        match self.prepare(caller, ask, streams).await {
            Ok((prepared, running)) => Ok(Opened::Fresh {
                prepared: Box::new(prepared),
                running,
                claim,
            }),
            Err(err) => {
                if let Some(claim) = claim {
                    claim.release().await;
                }
                Err(err)
            }
        }
    }

    /// Starts the reply, asks the model, and stores the turn (or records its usage).
    async fn answer(
        &self,
        caller: &Caller,
        opened: Opened,
        sink: &mut impl ReplySink,
    ) -> Result<Answered, ChatError> {
        let (prepared, running, claim) = match opened {
            Opened::Replay(stored) => return Ok(replay(*stored, sink).await),
            Opened::Fresh {
                prepared,
                running,
                claim,
            } => (prepared, running, claim),
        };
        let said = match self.ask_model(&prepared, running, sink).await {
            Ok(said) => said,
            Err(err) => {
                if let Some(claim) = claim {
                    claim.release().await;
                }
                return Err(err);
            }
        };
        let stores = matches!(*prepared, Prepared::Turn(_));
        let store = self
            .clone()
            .store(caller.principal.clone(), *prepared, said, claim);
        if stores {
            // On a task of its own, which a dropped call does not cancel.
            tokio::spawn(store)
                .await
                .unwrap_or(Err(ChatError::Interrupted))
        } else {
            store.await
        }
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

    /// The turn's prompt (the call's audit event marked when PHI is involved), and its
    /// registration for cancellation from any replica when it `streams`.
    async fn prepare(
        &self,
        caller: &Caller,
        ask: Ask,
        streams: bool,
    ) -> Result<(Prepared, Option<Running>), ChatError> {
        let prepared = self.prompt(caller, ask).await;
        if matches!(prepared, Err(ChatError::PhiRefused { .. }))
            || prepared.as_ref().is_ok_and(|p| p.prompt().phi)
        {
            caller.handled_phi();
        }
        let prepared = prepared?;
        let running = match &prepared {
            Prepared::Turn(turn) if streams => Some(
                self.generations
                    .begin(&caller.principal, turn.reply_id)
                    .await?,
            ),
            _ => None,
        };
        Ok((prepared, running))
    }

    /// Announces the reply and asks the model (in rounds, when it calls the turn's
    /// tools): relayed to `sink` piece by piece (a conversation's stream registered as
    /// `running`), or collected whole.
    async fn ask_model(
        &self,
        prepared: &Prepared,
        mut running: Option<Running>,
        sink: &mut impl ReplySink,
    ) -> Result<Reply, ChatError> {
        if !sink.started(prepared.started()).await {
            return Err(ChatError::Gone);
        }
        let said = rounds::answer(
            &self.generator.guard,
            prepared.prompt(),
            prepared.toolbox(),
            running.as_mut(),
            sink,
        )
        .await;
        // Finished here: a cancellation arriving now has nothing left to stop.
        drop(running);
        said
    }

    async fn prompt(&self, caller: &Caller, ask: Ask) -> Result<Prepared, ChatError> {
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
            Ask::Stateless(call) => {
                let (prompt, toolbox) = self.generator.prepare_stateless(principal, call).await?;
                Prepared::Stateless {
                    id: Uuid::now_v7(),
                    prompt,
                    toolbox,
                }
            }
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
