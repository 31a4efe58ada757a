//! Generating a reply: the prompt is assembled from the profile's instructions, the recent
//! turns and the new message; the tenant's PHI policy is applied when the provider is off
//! the premises (pass, redact with placeholders restored in the answer, or refuse); the
//! provider streams the reply; the user's message and the reply are stored together,
//! sealed, once the reply is complete (or cancelled).

use time::OffsetDateTime;
use uuid::Uuid;

use std::sync::Arc;

use crate::chat::{
    ChatError, Conversations, DEFAULT_PROFILE, Message, MessageRole, Profile, SettingsCache,
    conversation::window::{Recent, StoredTurn},
    model_jobs::facts,
    model_jobs::summaries,
    profile::profiles,
    profile::settings_cache::profile_key,
    turn::context::{ContextAssembler, Ingredients, memory_block},
    turn::follow_ups::{FollowUps, StoredTurnIds},
    turn::prompt::{Draft, GenerationOptions, Prompt, Reply, Turn},
};
use crate::{
    caller::Principal,
    llm::{Breakers, ProviderError, Providers, Route, ToolOwner, Tools},
    plugins::{Plugins, Toolbox},
    privacy::{PhiGuard, PhiPolicy},
    store::LazyTenantTx,
    store::{self, conversations::MessageRow, usage::UsageEvent},
    usage::Accounting,
};

/// Longest message accepted, in characters.
pub const MAX_CONTENT_CHARS: usize = 100_000;

/// A turn ready to go to the model.
pub struct PreparedTurn {
    /// The conversation.
    pub conversation: Uuid,
    /// Id the user's message will be stored under.
    pub user_message_id: Uuid,
    /// Id the reply will be stored under.
    pub reply_id: Uuid,
    /// The user's message as written.
    pub content: String,
    /// The conversation has no title yet: the first message gives it one.
    pub untitled: bool,
    /// What goes to the model.
    pub prompt: Prompt,
    /// Messages the conversation held before this turn.
    message_count: i64,
    /// For a regeneration: the stored message answered and the reply replaced.
    replaced: Option<Replaced>,
    /// The conversation's recent window (sealed rows), extended when the turn is stored.
    window: Vec<MessageRow>,
    /// Memories recalled into the prompt.
    pub memory_ids: Vec<Uuid>,
    /// The plugins' tools the model is offered; `None` when none.
    pub toolbox: Option<Toolbox>,
}

/// Which profile serves a call.
#[derive(Debug, Clone, Copy)]
pub(in crate::chat) enum ProfileChoice<'a> {
    /// A conversation's profile: the tenant's default when it is gone.
    Serving(&'a str),
    /// The profile a call asks for (the default when empty): it must exist.
    Requested(&'a str),
}

/// A regeneration's stored message and the reply it replaces.
#[derive(Debug, Clone, Copy)]
pub(in crate::chat) struct Replaced {
    user_message: Uuid,
    reply: Uuid,
}

/// Instructions that make the model name a conversation.
const TITLE_INSTRUCTIONS: &str = "Write a title of at most six words for a conversation that \
    starts with the user's message below. Answer with the title only: no quotes, no \
    punctuation at the end.";

/// What a turn asks of the model.
#[derive(Debug, Clone, Copy)]
pub(in crate::chat) enum Framing {
    /// A reply to a new message.
    Reply,
    /// A new reply in place of an old one.
    Regeneration(Replaced),
    /// A title for the conversation the message starts.
    Title,
    /// Facts and preferences about the user in the message, as JSON (see `chat::model_jobs::facts`).
    Facts,
    /// A summary of the conversation given as the message (see `chat::model_jobs::summaries`).
    Summary,
}

impl PreparedTurn {
    /// Whether this turn answers a stored message again instead of a new one.
    pub fn regenerates(&self) -> bool {
        self.replaced.is_some()
    }
}

/// Generates replies in conversations.
#[derive(Clone)]
pub struct Generator {
    pub(in crate::chat) conversations: Conversations,
    pub(in crate::chat) providers: Providers,
    pub(in crate::chat) accounting: Accounting,
    pub(in crate::chat) breakers: Breakers,
    pub(in crate::chat) follow_ups: FollowUps,
    pub(in crate::chat) context: ContextAssembler,
    pub(in crate::chat) guard: PhiGuard,
    pub(in crate::chat) settings: Arc<SettingsCache>,
    pub(in crate::chat) plugins: Plugins,
}

impl Generator {
    /// Replies in `conversations`, asking `providers` past `breakers`, accounted by
    /// `accounting`; follow-up work goes to `follow_ups`; memories, recent turns and the
    /// profile of conversations created without one come from `context`; budgets,
    /// profiles and routes are remembered in `settings`; the tools of the profile's
    /// plugins come from `plugins`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        conversations: Conversations,
        providers: Providers,
        accounting: Accounting,
        breakers: Breakers,
        follow_ups: FollowUps,
        context: ContextAssembler,
        settings: Arc<SettingsCache>,
        plugins: Plugins,
    ) -> Self {
        Self {
            conversations,
            providers,
            accounting,
            breakers,
            follow_ups,
            context,
            guard: PhiGuard::default(),
            settings,
            plugins,
        }
    }

    /// The tools of `profile`'s plugins that `principal` may have the model call, as the
    /// prompt offers them; `None` when there are none.
    pub(in crate::chat) async fn toolbox(
        &self,
        principal: &Principal,
        profile: &Profile,
    ) -> Result<(Option<Toolbox>, Option<Tools>), ChatError> {
        let toolbox = self
            .plugins
            .toolbox(
                principal,
                &profile.settings.allowed_plugins,
                profile.phi_policy,
            )
            .await?;
        if toolbox.is_empty() {
            return Ok((None, None));
        }
        let tools = Tools {
            definitions: toolbox.definitions(),
            choice: None,
            owner: ToolOwner::Server,
        };
        Ok((Some(toolbox), Some(tools)))
    }

    /// The provider calls' settings: checks the message and the caller's budgets, resolves
    /// the model, assembles the prompt and applies the PHI policy.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] for bad input, [`ChatError::NotFound`],
    /// a used-up budget ([`ChatError::Usage`]), [`ChatError::PhiRefused`] when the policy forbids
    /// sending the prompt, or a failure.
    pub async fn prepare(
        &self,
        principal: &Principal,
        conversation: Uuid,
        content: &str,
        options: &GenerationOptions,
    ) -> Result<PreparedTurn, ChatError> {
        if content.trim().is_empty() {
            return Err(ChatError::invalid("content", "must not be empty"));
        }
        if content.chars().count() > MAX_CONTENT_CHARS {
            return Err(ChatError::invalid(
                "content",
                format!("must be at most {MAX_CONTENT_CHARS} characters"),
            ));
        }
        if options.stop.len() > 4 {
            return Err(ChatError::invalid(
                "options.stop",
                "at most 4 stop sequences",
            ));
        }
        let mut recent = self.conversations.recent(principal, conversation).await?;
        let current = &recent.conversation;
        if current.profile_automatic
            && current.message_count == 0
            && let Some(profile) = self.context.pick_profile(content).await
            && self
                .conversations
                .choose_profile(principal, conversation, &profile)
                .await?
        {
            recent.conversation.profile = profile;
        }
        self.assemble(principal, recent, content, options, Framing::Reply)
            .await
    }

    /// Like [`Self::prepare`], for a new answer to the conversation's last message in place
    /// of the last reply.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] when the conversation does not end with a reply to a
    /// message, or as [`Self::prepare`].
    pub async fn prepare_regeneration(
        &self,
        principal: &Principal,
        conversation: Uuid,
        options: &GenerationOptions,
    ) -> Result<PreparedTurn, ChatError> {
        let mut recent = self.conversations.recent(principal, conversation).await?;
        let (Some(reply), Some(asked)) = (recent.messages.pop(), recent.messages.pop()) else {
            return Err(ChatError::invalid(
                "conversation_id",
                "has no reply to regenerate",
            ));
        };
        if reply.role != MessageRole::Assistant || asked.role != MessageRole::User {
            return Err(ChatError::invalid(
                "conversation_id",
                "does not end with a reply to a message",
            ));
        }
        let replaced = Replaced {
            user_message: asked.id,
            reply: reply.id,
        };
        self.assemble(
            principal,
            recent,
            &asked.content,
            options,
            Framing::Regeneration(replaced),
        )
        .await
    }

    /// Resolves the model, assembles the prompt (instructions, recalled memories, the
    /// recent messages that fit the model's window, then `content`; see `chat::turn::context`)
    /// and applies the PHI policy.
    pub(in crate::chat) async fn assemble(
        &self,
        principal: &Principal,
        recent: Recent,
        content: &str,
        options: &GenerationOptions,
        framing: Framing,
    ) -> Result<PreparedTurn, ChatError> {
        let Recent {
            conversation: current,
            messages: history,
            rows: window,
        } = recent;
        let conversation = current.id;
        let (profile, route) = self
            .resolve(
                principal,
                ProfileChoice::Serving(&current.profile),
                |profile| {
                    [
                        ("options.model", options.model.clone()),
                        ("conversation.model", current.model.clone()),
                        (
                            "profile.default_model",
                            profile.settings.default_model.clone(),
                        ),
                    ]
                },
            )
            .await?;
        let (toolbox, tools) = match framing {
            Framing::Reply | Framing::Regeneration(_) => self.toolbox(principal, &profile).await?,
            Framing::Title | Framing::Facts | Framing::Summary => (None, None),
        };
        let system = match framing {
            Framing::Title => TITLE_INSTRUCTIONS.to_owned(),
            Framing::Facts => facts::INSTRUCTIONS.to_owned(),
            Framing::Summary => summaries::INSTRUCTIONS.to_owned(),
            Framing::Reply | Framing::Regeneration(_) => profile.settings.system_prompt,
        };
        let ingredients = Ingredients {
            route: &route,
            instructions: &system,
            content,
            history,
            max_tokens: options.max_tokens,
            recall: matches!(framing, Framing::Reply | Framing::Regeneration(_)),
        };
        let mut context = self.context.assemble(principal, ingredients).await;
        // A recalled memory must not make a clean message fail the tenant's `refuse`
        // policy: where the prompt leaves the premises under it, memories holding PHI
        // stay out. The rest pass the guard with the turns.
        let refusing =
            profile.phi_policy == PhiPolicy::Refuse && route.targets.iter().any(|t| !t.on_premises);
        if refusing {
            context
                .memories
                .retain(|(_, line)| self.guard.detect(line).is_empty());
        }
        let lines: Vec<&str> = context.memories.iter().map(|(_, l)| l.as_str()).collect();
        let mut turns: Vec<Turn> = memory_block(&lines)
            .map(|block| Turn::new(MessageRole::User, block))
            .into_iter()
            .chain(
                context
                    .history
                    .into_iter()
                    .map(|m| Turn::new(m.role, m.content)),
            )
            .collect();
        turns.push(Turn::new(MessageRole::User, content));
        let memory_ids = context.memories.iter().map(|(id, _)| *id).collect();
        let recalled = lines.iter().map(|line| (*line).to_owned()).collect();
        let toolbox = toolbox.map(|toolbox| toolbox.in_turn(conversation, recalled));
        let prompt = Prompt::build(
            &self.guard,
            Draft {
                route,
                breaker: self.breakers.of(principal.tenant),
                policy: profile.phi_policy,
                system,
                turns: &turns,
                options,
                tools,
                answer_schema: matches!(framing, Framing::Facts).then(facts::answer_schema),
            },
        )?;
        let replaced = match framing {
            Framing::Regeneration(replaced) => Some(replaced),
            Framing::Reply | Framing::Title | Framing::Facts | Framing::Summary => None,
        };
        Ok(PreparedTurn {
            conversation,
            user_message_id: replaced.map_or_else(Uuid::now_v7, |r| r.user_message),
            replaced,
            reply_id: Uuid::now_v7(),
            content: content.to_owned(),
            untitled: current.title.is_empty(),
            prompt,
            message_count: current.message_count,
            window,
            memory_ids,
            toolbox,
        })
    }

    /// What a call reads before its prompt is built: the caller's budgets (refusing when
    /// one is used up), the profile, and the route of the first model reference
    /// `references` names for that profile: (field it comes from, alias or
    /// `provider/model`). What the replica remembers ([`SettingsCache`]) is not read
    /// again; the rest is read in one transaction.
    ///
    /// # Errors
    /// a used-up budget ([`ChatError::Usage`]); [`ChatError::UnknownProfile`] for a requested
    /// profile the tenant lacks; [`ChatError::Invalid`] naming the field of an unknown
    /// model; or a failure.
    pub(in crate::chat) async fn resolve<const N: usize>(
        &self,
        principal: &Principal,
        profile: ProfileChoice<'_>,
        references: impl FnOnce(&Profile) -> [(&'static str, String); N],
    ) -> Result<(Profile, Route), ChatError> {
        let tenant = principal.tenant;
        let version = self.settings.version(tenant);
        let mut tx = LazyTenantTx::new(&self.conversations.db, tenant);
        let budgets = match self.settings.budgets(tenant, version) {
            Some(budgets) => budgets,
            None => {
                let budgets = store::usage::budgets(tx.get().await?, None).await?;
                self.settings.keep_budgets(tenant, version, budgets.clone());
                budgets
            }
        };
        let budgets: Vec<_> = budgets
            .into_iter()
            .filter(|b| crate::usage::applies_to(b, principal.user))
            .collect();
        if !budgets.is_empty() {
            self.accounting.check(tx.get().await?, budgets).await?;
        }
        let (id, fallback) = match profile {
            ProfileChoice::Serving(id) => (id, true),
            ProfileChoice::Requested("") => (DEFAULT_PROFILE, true),
            ProfileChoice::Requested(id) => (id, false),
        };
        let key = profile_key(id, fallback);
        let profile = match self.settings.profile(tenant, version, &key) {
            Some(profile) => profile,
            None => {
                let conn = tx.get().await?;
                let profile = if fallback {
                    profiles::serving(conn, id).await?
                } else {
                    profiles::named(conn, id).await?
                };
                self.settings
                    .keep_profile(tenant, version, key, profile.clone());
                profile
            }
        };
        let references = references(&profile);
        let (field, reference) = references
            .iter()
            .find(|(_, model)| !model.is_empty())
            .map(|(field, model)| (*field, model.as_str()))
            .unwrap_or_default();
        let route = match self.settings.route(tenant, version, reference) {
            Some(route) => route,
            None => match self
                .providers
                .route(tx.get().await?, principal, reference)
                .await
            {
                Ok(route) => {
                    self.settings.keep_route(tenant, version, reference, &route);
                    route
                }
                Err(err @ ProviderError::UnknownAlias { .. }) => {
                    return Err(ChatError::invalid(field, err.to_string()));
                }
                Err(err) => return Err(err.into()),
            },
        };
        tx.commit().await?;
        Ok((profile, route))
    }

    /// Stores the user's message and the reply together (sealed), titling an untitled
    /// conversation after its first message (and queueing the job that asks the model
    /// for a better title); for a regeneration, the reply in place of the one it replaces.
    ///
    /// # Errors
    /// [`ChatError`] when a store fails.
    pub async fn finish(
        &self,
        principal: &Principal,
        turn: &PreparedTurn,
        reply: &Reply,
    ) -> Result<(Message, Message), ChatError> {
        let now = OffsetDateTime::now_utc();
        let user = Message {
            id: turn.user_message_id,
            conversation_id: turn.conversation,
            role: MessageRole::User,
            content: turn.content.clone(),
            model_used: String::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_micros: 0,
            finish_reason: String::new(),
            tool_calls: Vec::new(),
            created_at: now,
        };
        let assistant = Message {
            id: turn.reply_id,
            conversation_id: turn.conversation,
            role: MessageRole::Assistant,
            content: reply.content.clone(),
            model_used: reply.model_used.clone(),
            prompt_tokens: reply.usage.prompt_tokens,
            completion_tokens: reply.usage.completion_tokens,
            cost_micros: self.accounting.cost_micros(
                &reply.model_used,
                reply.usage.prompt_tokens,
                reply.usage.completion_tokens,
            ),
            finish_reason: reply.finish_reason.as_str().to_owned(),
            tool_calls: reply.tools_used.clone(),
            created_at: now,
        };
        let title = turn.untitled.then(|| title_from(&turn.content));
        let usage = UsageEvent {
            id: Uuid::now_v7(),
            user_id: principal.user,
            model: assistant.model_used.clone(),
            prompt_tokens: assistant.prompt_tokens,
            completion_tokens: assistant.completion_tokens,
            cost_micros: assistant.cost_micros,
            latency_ms: i32::try_from(reply.latency_ms).unwrap_or(i32::MAX),
        };
        let (messages, titled) = match turn.replaced {
            Some(replaced) => {
                let stored = StoredTurn {
                    messages: &[&assistant],
                    title: None,
                    usage: &usage,
                    replaces: Some(replaced.reply),
                    window: &turn.window,
                };
                self.conversations.store_turn(principal, stored).await?;
                (vec![assistant.id], false)
            }
            None => {
                let stored = StoredTurn {
                    messages: &[&user, &assistant],
                    title: title.as_deref(),
                    usage: &usage,
                    replaces: None,
                    window: &turn.window,
                };
                self.conversations.store_turn(principal, stored).await?;
                (vec![user.id, assistant.id], title.is_some())
            }
        };
        let ids = StoredTurnIds {
            conversation: turn.conversation,
            messages: &messages,
            title_from: titled.then_some((user.id, assistant.model_used.as_str())),
            user_message: turn.replaced.is_none().then_some(user.id),
            messages_before: turn.message_count,
            last_message: assistant.id,
        };
        self.follow_ups.after(principal, ids).await;
        Ok((user, assistant))
    }
}

/// A title from the first line of a message: at most 60 characters.
fn title_from(content: &str) -> String {
    let line = content
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim();
    let mut title: String = line.chars().take(60).collect();
    if line.chars().count() > 60 {
        title.push('…');
    }
    title
}
