//! Replicas remember the aliases, budgets and profiles calls read; a change made through
//! one replica applies on every other one at once, not when the remembered copy expires.

use std::time::{Duration, Instant};

use codexcontinue::pb::v1::{
    Budget, BudgetPeriod, PhiPolicy, Profile, SetBudgetRequest, SetProfileRequest,
    chat_service_client::ChatServiceClient,
};
use codexcontinue_tests::grpc::authorized;
use tonic::{Code, transport::Channel};

use super::chat_fixture::{create_conversation, send_message, set_provider, set_route, setup_with};

/// Long enough that only an announcement can make a replica read the settings again.
const CACHE_TTL: &str = "1h";
/// Longest wait for an announcement to reach the other replica.
const PROPAGATION: Duration = Duration::from_secs(10);

/// The other replica, as the tenant's owner calls it.
struct Replica {
    chat: ChatServiceClient<Channel>,
    key: String,
}

impl Replica {
    async fn conversation(&mut self, profile: &str, model: &str) -> String {
        create_conversation(&mut self.chat, &self.key, profile, model).await
    }

    /// Sends `content` in `conversation` asking `model`: the model that answered, or the
    /// refusal.
    async fn send(
        &mut self,
        conversation: &str,
        content: &str,
        model: &str,
    ) -> Result<String, tonic::Status> {
        let reply = send_message(&mut self.chat, &self.key, conversation, content, model).await?;
        Ok(reply.reply.unwrap().model_used)
    }

    /// Sends until `done` accepts the outcome; how long that took.
    async fn until<F>(
        &mut self,
        conversation: &str,
        content: &str,
        model: &str,
        done: F,
    ) -> Duration
    where
        F: Fn(&Result<String, tonic::Status>) -> bool,
    {
        let started = Instant::now();
        loop {
            let outcome = self.send(conversation, content, model).await;
            if done(&outcome) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < PROPAGATION,
                "the other replica still answers {outcome:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn profile(phi_policy: PhiPolicy) -> SetProfileRequest {
    SetProfileRequest {
        profile: Some(Profile {
            id: "desk".into(),
            display_name: "Desk".into(),
            phi_policy: phi_policy.into(),
            ..Profile::default()
        }),
        system_prompt: "You help the front desk.".into(),
    }
}

fn budget(token_limit: i64) -> SetBudgetRequest {
    SetBudgetRequest {
        budget: Some(Budget {
            user_id: String::new(),
            period: BudgetPeriod::Day.into(),
            token_limit,
            tokens_used: 0,
        }),
    }
}

#[tokio::test]
async fn alias_budget_and_profile_changes_apply_on_every_replica_at_once() {
    let ttl = (
        "CODEXCONTINUE_LLM__SETTINGS_CACHE_TTL".to_owned(),
        CACHE_TTL.to_owned(),
    );
    let mut a = setup_with(vec![ttl]).await;
    let key = a.server.owner_key.clone();
    let base = a.upstream.openai_base();
    set_provider(&mut a.admin, &key, "second", &base, true).await;
    set_route(&mut a.admin, &key, "team", &[("cloud", "echo-1")], false, 0)
        .await
        .unwrap();
    a.admin
        .set_profile(authorized(&key, profile(PhiPolicy::Allow)))
        .await
        .unwrap();
    let replica = a.server.replica().await;
    let mut b = Replica {
        chat: ChatServiceClient::new(replica.channel().await),
        key: key.clone(),
    };
    let conversation = b.conversation("desk", "").await;

    // B remembers the alias; A moves it to another provider.
    assert_eq!(
        b.send(&conversation, "hello", "team").await.unwrap(),
        "cloud/echo-1"
    );
    set_route(
        &mut a.admin,
        &key,
        "team",
        &[("second", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    assert_eq!(
        a.send(&conversation, "hello", "team")
            .await
            .unwrap()
            .reply
            .unwrap()
            .model_used,
        "second/echo-1",
        "the changing replica applies it at once"
    );
    let moved = b
        .until(&conversation, "hello", "team", |outcome| {
            outcome.as_deref().ok() == Some("second/echo-1")
        })
        .await;

    // A budget already spent refuses B's next call; removing it lets calls through.
    a.admin
        .set_budget(authorized(&key, budget(1)))
        .await
        .unwrap();
    let refused = b
        .until(&conversation, "hello", "team", |outcome| {
            outcome
                .as_ref()
                .is_err_and(|status| status.code() == Code::ResourceExhausted)
        })
        .await;
    a.admin
        .set_budget(authorized(&key, budget(0)))
        .await
        .unwrap();
    b.until(&conversation, "hello", "team", Result::is_ok).await;

    // The profile now refuses to send PHI off the premises: B stops sending an email
    // address to `cloud`.
    let mail = "write to ana@example.org";
    b.send(&conversation, mail, "cloud/echo-1").await.unwrap();
    a.admin
        .set_profile(authorized(&key, profile(PhiPolicy::Refuse)))
        .await
        .unwrap();
    let guarded = b
        .until(&conversation, mail, "cloud/echo-1", |outcome| {
            outcome
                .as_ref()
                .is_err_and(|status| status.code() == Code::FailedPrecondition)
        })
        .await;
    println!(
        "settings propagation to the other replica: alias {moved:?}, budget {refused:?}, \
         profile {guarded:?}"
    );
}
