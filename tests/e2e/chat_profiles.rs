//! Domain profiles: tenants change built-in ones and add their own; a conversation's
//! profile gives its system prompt, default model and PHI policy.

use codexcontinue::pb::v1::{
    CreateConversationRequest, DeleteProfileRequest, ListProfilesRequest, PhiPolicy, Profile,
    SendMessageRequest, SetProfileRequest,
};
use codexcontinue_tests::grpc::{authorized, bad_field as field, key_with_roles};
use tonic::Code;

use super::chat_fixture::{Chat, set_route, setup};

const RADIOLOGY_PROMPT: &str = "You draft radiology reports in the house style.";

fn radiology() -> SetProfileRequest {
    SetProfileRequest {
        profile: Some(Profile {
            id: "radiology".into(),
            display_name: "Radiology".into(),
            description: "Report drafting".into(),
            default_model: "cloud/echo-1".into(),
            phi_policy: PhiPolicy::Refuse.into(),
            allowed_plugins: vec!["pacs".into()],
            ..Profile::default()
        }),
        system_prompt: RADIOLOGY_PROMPT.into(),
    }
}

async fn profiles(t: &mut Chat, key: &str) -> Vec<Profile> {
    t.chat
        .list_profiles(authorized(key, ListProfilesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .profiles
}

async fn conversation_with(t: &mut Chat, profile: &str) -> Result<String, tonic::Status> {
    Ok(t.chat
        .create_conversation(authorized(
            &t.server.owner_key,
            CreateConversationRequest {
                profile: profile.into(),
                ..CreateConversationRequest::default()
            },
        ))
        .await?
        .into_inner()
        .conversation
        .unwrap()
        .id)
}

/// Sends `content` without naming a model; returns the system prompt and model the
/// upstream was asked with.
async fn ask(
    t: &mut Chat,
    conversation: &str,
    content: &str,
) -> Result<(String, String), tonic::Status> {
    t.chat
        .send_message(authorized(
            &t.server.owner_key,
            SendMessageRequest {
                conversation_id: conversation.into(),
                content: content.into(),
                ..SendMessageRequest::default()
            },
        ))
        .await?;
    let last = t.upstream.requests().pop().unwrap();
    Ok((
        last.body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_owned(),
        last.body["model"].as_str().unwrap().to_owned(),
    ))
}

#[tokio::test]
async fn a_tenant_profile_gives_its_conversations_prompt_model_and_phi_policy() {
    let mut t = setup().await;
    let saved = t
        .admin
        .set_profile(authorized(&t.server.owner_key, radiology()))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    assert!(saved.custom);
    assert_eq!(saved.system_prompt, RADIOLOGY_PROMPT);
    assert_eq!(saved.phi_policy(), PhiPolicy::Refuse);

    let key = t.server.owner_key.clone();
    let listed = profiles(&mut t, &key).await;
    let ids: Vec<&str> = listed.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "developer",
            "finance",
            "general",
            "health",
            "legal",
            "radiology"
        ]
    );
    assert_eq!(listed.last().unwrap(), &saved);

    let conversation = conversation_with(&mut t, "radiology").await.unwrap();
    let (system, model) = ask(&mut t, &conversation, "Draft a chest X-ray report.")
        .await
        .unwrap();
    assert_eq!(system, RADIOLOGY_PROMPT);
    assert_eq!(model, "echo-1", "the profile's default model");

    // The tenant redacts PHI, the profile refuses it.
    let refused = ask(
        &mut t,
        &conversation,
        "Patient SSN 123-45-6789, chest pain.",
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("SSN") || refused.message().contains("ssn"));

    // Deleted, its conversations are served as `general`.
    t.admin
        .delete_profile(authorized(
            &t.server.owner_key,
            DeleteProfileRequest {
                profile_id: "radiology".into(),
            },
        ))
        .await
        .unwrap();
    let general = conversation_with(&mut t, "radiology").await.unwrap_err();
    assert_eq!(field(&general), "profile");
    set_route(
        &mut t.admin,
        &t.server.owner_key,
        "default",
        &[("cloud", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    let (system, _) = ask(&mut t, &conversation, "Still there?").await.unwrap();
    assert_eq!(system, "You are a helpful, precise assistant.");

    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, resource_id FROM audit_events WHERE action LIKE 'profile.%' ORDER BY seq",
    )
    .fetch_all(&mut t.server.db.owner().await)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            ("profile.set".to_owned(), "radiology".to_owned()),
            ("profile.delete".to_owned(), "radiology".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_changed_builtin_profile_is_restored_by_deleting_it() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let mut legal = radiology();
    legal.profile = Some(Profile {
        id: "legal".into(),
        default_model: "cloud/echo-1".into(),
        ..Profile::default()
    });
    legal.system_prompt = "You assist our firm's lawyers under German law.".into();
    t.admin.set_profile(authorized(&key, legal)).await.unwrap();
    let listed = profiles(&mut t, &key).await;
    let changed = listed.iter().find(|p| p.id == "legal").unwrap();
    assert!(!changed.custom, "still the built-in profile");
    assert_eq!(changed.display_name, "Legal");
    assert_eq!(
        changed.phi_policy(),
        PhiPolicy::Redact,
        "the tenant's policy"
    );
    assert_eq!(listed.len(), 5);

    let conversation = conversation_with(&mut t, "legal").await.unwrap();
    let (system, _) = ask(&mut t, &conversation, "Notice periods?").await.unwrap();
    assert_eq!(system, "You assist our firm's lawyers under German law.");

    let delete = |id: &str| DeleteProfileRequest {
        profile_id: id.into(),
    };
    t.admin
        .delete_profile(authorized(&key, delete("legal")))
        .await
        .unwrap();
    let restored = profiles(&mut t, &key).await;
    let legal = restored.iter().find(|p| p.id == "legal").unwrap();
    assert!(
        legal
            .system_prompt
            .starts_with("You assist legal professionals.")
    );
    let again = t
        .admin
        .delete_profile(authorized(&key, delete("legal")))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}

/// A change that spoils a valid request.
type Change = fn(&mut SetProfileRequest);

#[tokio::test]
async fn profiles_are_checked_guarded_by_role_and_kept_per_tenant() {
    let mut t = setup().await;
    let key = t.server.owner_key.clone();
    let refused = |mut request: SetProfileRequest, change: Change| {
        change(&mut request);
        request
    };
    let cases: [(Change, &str); 5] = [
        (
            |r| r.profile.as_mut().unwrap().id = "Radiology!".into(),
            "profile.id",
        ),
        (
            |r| r.system_prompt = "x".repeat(16 * 1024 + 1),
            "system_prompt",
        ),
        (|r| r.system_prompt = "   ".into(), "system_prompt"),
        (
            |r| r.profile.as_mut().unwrap().default_model = "two words".into(),
            "profile.default_model",
        ),
        (|r| r.profile = None, "profile"),
    ];
    for (change, expected) in cases {
        let status = t
            .admin
            .set_profile(authorized(&key, refused(radiology(), change)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(field(&status), expected);
    }

    let channel = t.server.channel().await;
    let member = key_with_roles(channel.clone(), &key, &["member"]).await;
    let denied = t
        .admin
        .set_profile(authorized(&member, radiology()))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        profiles(&mut t, &member).await.len(),
        5,
        "members may read them"
    );

    t.admin
        .set_profile(authorized(&key, radiology()))
        .await
        .unwrap();
    let other = t.server.add_tenant("globex").await;
    let theirs = profiles(&mut t, &other).await;
    assert!(theirs.iter().all(|p| p.id != "radiology"));

    let first_page = t
        .chat
        .list_profiles(authorized(
            &key,
            ListProfilesRequest {
                page_size: 4,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first_page.profiles.len(), 4);
    let second_page = t
        .chat
        .list_profiles(authorized(
            &key,
            ListProfilesRequest {
                page_size: 4,
                page_token: first_page.next_page_token,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let rest: Vec<&str> = second_page.profiles.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(rest, ["legal", "radiology"]);
    assert!(second_page.next_page_token.is_empty());
}

#[tokio::test]
async fn the_domain_classifier_picks_the_profile_of_a_conversation_that_named_none() {
    let models = codexcontinue_tests::TestEnv::models_dir();
    let mut t = super::chat_fixture::setup_with(vec![(
        "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
        models.display().to_string(),
    )])
    .await;
    let key = t.server.owner_key.clone();
    set_route(
        &mut t.admin,
        &key,
        "default",
        &[("cloud", "echo-1")],
        false,
        0,
    )
    .await
    .unwrap();
    let health_question = "Is it safe to take ibuprofen together with lisinopril?";

    let unnamed = conversation_with(&mut t, "").await.unwrap();
    let (system, _) = ask(&mut t, &unnamed, health_question).await.unwrap();
    assert!(
        system.starts_with("You assist healthcare professionals."),
        "{system}"
    );
    let chosen = profile_of(&mut t, &unnamed).await;
    assert_eq!(chosen, "health");
    // Decided once: a later message about code does not move it.
    ask(
        &mut t,
        &unnamed,
        "Refactor this Rust function to stop cloning",
    )
    .await
    .unwrap();
    assert_eq!(profile_of(&mut t, &unnamed).await, "health");

    // A profile the client chose is kept.
    let named = conversation_with(&mut t, "general").await.unwrap();
    let (system, _) = ask(&mut t, &named, health_question).await.unwrap();
    assert_eq!(system, "You are a helpful, precise assistant.");
    assert_eq!(profile_of(&mut t, &named).await, "general");
}

async fn profile_of(t: &mut Chat, conversation: &str) -> String {
    t.chat
        .get_conversation(authorized(
            &t.server.owner_key,
            codexcontinue::pb::v1::GetConversationRequest {
                conversation_id: conversation.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .conversation
        .unwrap()
        .profile
}
