//! Stateless calls: the caller sends the whole conversation with each call (the
//! OpenAI-compatible API without a conversation id). The prompt is the profile's
//! instructions followed by the caller's messages; budgets, routing and the PHI policy
//! apply as to a conversation turn, but nothing is stored and no memory is recalled. The
//! usage is recorded once the reply has ended ([`crate::usage::Accounting::record`]).

use crate::chat::{
    ChatError, Generator,
    turn::generate::{MAX_CONTENT_CHARS, ProfileChoice},
    turn::prompt::{Draft, GenerationOptions, Prompt, Turn},
};
use crate::{caller::Principal, llm::Tools, plugins::Toolbox};

/// Most messages a stateless call may send.
pub const MAX_STATELESS_MESSAGES: usize = 256;

/// What a stateless call asks.
pub struct StatelessCall {
    /// The profile whose instructions, default model and PHI policy apply; empty: the
    /// tenant's default profile.
    pub profile: String,
    /// The conversation so far, oldest first; the caller's own system messages included.
    pub messages: Vec<Turn>,
    /// Tools the model may call.
    pub tools: Option<Tools>,
    /// Sampling settings; `model` is the alias or `provider/model` to ask.
    pub options: GenerationOptions,
}

impl Generator {
    /// The prompt of a stateless call, and the tools of the profile's plugins it offers
    /// when the call brings no tools of its own.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] naming `messages`, `stop`, `model` or `profile`;
    /// a used-up budget ([`ChatError::Usage`]); [`ChatError::PhiRefused`]; or a failure.
    pub async fn prepare_stateless(
        &self,
        principal: &Principal,
        call: StatelessCall,
    ) -> Result<(Prompt, Option<Toolbox>), ChatError> {
        let StatelessCall {
            profile,
            messages,
            tools,
            options,
        } = call;
        if messages.is_empty() {
            return Err(ChatError::invalid("messages", "must not be empty"));
        }
        if messages.len() > MAX_STATELESS_MESSAGES {
            return Err(ChatError::invalid(
                "messages",
                format!("at most {MAX_STATELESS_MESSAGES} messages"),
            ));
        }
        if messages
            .iter()
            .map(|m| m.text.chars().count())
            .sum::<usize>()
            > MAX_CONTENT_CHARS
        {
            return Err(ChatError::invalid(
                "messages",
                format!("must hold at most {MAX_CONTENT_CHARS} characters in all"),
            ));
        }
        if options.stop.len() > 4 {
            return Err(ChatError::invalid("stop", "at most 4 stop sequences"));
        }
        let (profile, route) = match self
            .resolve(principal, ProfileChoice::Requested(&profile), |profile| {
                [
                    ("model", options.model.clone()),
                    (
                        "profile.default_model",
                        profile.settings.default_model.clone(),
                    ),
                ]
            })
            .await
        {
            Err(ChatError::UnknownProfile(id)) => {
                return Err(ChatError::invalid(
                    "profile",
                    format!("no profile {id:?} (see ListProfiles)"),
                ));
            }
            other => other?,
        };
        let (toolbox, tools) = match tools {
            Some(tools) => (None, Some(tools)),
            None => self.toolbox(principal, &profile).await?,
        };
        let prompt = Prompt::build(
            &self.guard,
            Draft {
                route,
                breaker: self.breakers.of(principal.tenant),
                policy: profile.phi_policy,
                system: profile.settings.system_prompt,
                turns: &messages,
                options: &options,
                tools,
                answer_schema: None,
            },
        )?;
        Ok((prompt, toolbox))
    }
}
