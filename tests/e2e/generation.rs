//! Local text generation (ModelService.Generate) with the shipped SmolLM2 model: greedy
//! output equals PyTorch's, limits and stop strings end it, seeds repeat it, bad input is
//! named, and a caller that goes away stops the model within a token or two.

use codexcontinue::pb::v1::{
    GenerateMessage, GenerateMessages, GenerateRequest, generate_request::Input,
    model_service_client::ModelServiceClient,
};
use codexcontinue_tests::{
    ServerOptions, TestDatabase, TestEnv, TestServer,
    grpc::{authorized, bad_field},
    metrics,
};
use serde_json::Value;
use tonic::{Code, transport::Channel};

const MODEL: &str = "smollm2-135m-instruct@1";

async fn serve() -> (TestServer, ModelServiceClient<Channel>) {
    let server = TestServer::spawn(
        TestDatabase::migrated().await,
        ServerOptions {
            env: vec![(
                "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
                TestEnv::models_dir().display().to_string(),
            )],
            redis_url: None,
        },
    )
    .await;
    let client = ModelServiceClient::new(server.channel().await);
    (server, client)
}

fn chat(question: &str) -> GenerateRequest {
    GenerateRequest {
        input: Some(Input::Messages(GenerateMessages {
            messages: vec![GenerateMessage {
                role: "user".into(),
                content: question.into(),
            }],
        })),
        temperature: Some(0.0),
        ..GenerateRequest::default()
    }
}

/// The whole text of a generation and its last message.
async fn run(
    models: &mut ModelServiceClient<Channel>,
    key: &str,
    request: GenerateRequest,
) -> Result<(String, codexcontinue::pb::v1::GenerateResponse), tonic::Status> {
    let mut stream = models
        .generate(authorized(key, request))
        .await?
        .into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(message) = stream.message().await? {
        text.push_str(&message.delta);
        last = Some(message);
    }
    Ok((text, last.expect("a final message")))
}

#[tokio::test]
async fn greedy_generation_matches_pytorch_and_stops_where_asked() {
    let (server, mut models) = serve().await;
    let key = server.owner_key.clone();
    let reference: Value =
        serde_json::from_str(include_str!("../fixtures/smollm2_reference.json")).unwrap();
    let question = reference["messages"][0]["content"].as_str().unwrap();
    let answer = reference["answer"].as_str().unwrap();

    let (text, last) = run(&mut models, &key, chat(question)).await.unwrap();
    assert_eq!(text, answer);
    assert_eq!(last.finish_reason, "stop");
    assert_eq!(
        last.prompt_tokens,
        reference["prompt_tokens"].as_i64().unwrap()
    );
    assert!(last.completion_tokens > 0);

    let limited = GenerateRequest {
        max_tokens: 3,
        ..chat(question)
    };
    let (text, last) = run(&mut models, &key, limited).await.unwrap();
    assert_eq!(
        (last.finish_reason.as_str(), last.completion_tokens),
        ("length", 3)
    );
    assert!(answer.starts_with(&text) && !text.is_empty(), "{text:?}");

    let stopped = GenerateRequest {
        stop: vec!["Paris".into()],
        ..chat(question)
    };
    let (text, last) = run(&mut models, &key, stopped).await.unwrap();
    assert_eq!(text, answer[..answer.find("Paris").unwrap()]);
    assert_eq!(last.finish_reason, "stop");

    let sampled = || GenerateRequest {
        temperature: Some(0.9),
        seed: Some(5),
        max_tokens: 12,
        ..chat("Name a colour.")
    };
    let first = run(&mut models, &key, sampled()).await.unwrap().0;
    let again = run(&mut models, &key, sampled()).await.unwrap().0;
    assert_eq!(first, again, "same seed, same text");

    let raw = GenerateRequest {
        input: Some(Input::Prompt("The capital of France is".into())),
        temperature: Some(0.0),
        max_tokens: 4,
        ..GenerateRequest::default()
    };
    let (_, last) = run(&mut models, &key, raw).await.unwrap();
    assert_eq!(last.completion_tokens, 4);

    let field = |status: tonic::Status| bad_field(&status);
    let too_long = GenerateRequest {
        max_tokens: 5000,
        ..chat(question)
    };
    assert_eq!(
        field(run(&mut models, &key, too_long).await.unwrap_err()),
        "max_tokens"
    );
    let nothing = GenerateRequest::default();
    assert_eq!(
        field(run(&mut models, &key, nothing).await.unwrap_err()),
        "input"
    );
    let mut robot = chat(question);
    if let Some(Input::Messages(chat)) = &mut robot.input {
        chat.messages[0].role = "robot".into();
    }
    assert_eq!(
        field(run(&mut models, &key, robot).await.unwrap_err()),
        "messages.role"
    );
    let embedder = GenerateRequest {
        model: "minilm-l6".into(),
        ..chat(question)
    };
    assert_eq!(
        field(run(&mut models, &key, embedder).await.unwrap_err()),
        "model"
    );
}

#[tokio::test]
async fn a_caller_that_goes_away_stops_the_generation() {
    let (server, mut models) = serve().await;
    let key = server.owner_key.clone();
    let long = GenerateRequest {
        max_tokens: 400,
        ..chat("Write a long story about a dragon who learns to bake bread.")
    };
    let mut stream = models
        .generate(authorized(&key, long))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(!first.delta.is_empty());
    drop(stream);

    // The model serves one generation at a time: when the next one is done, the first
    // has ended, and the tokens counted beyond the next one's are the first one's.
    let short = GenerateRequest {
        max_tokens: 3,
        ..chat("Say hello.")
    };
    let (_, last) = run(&mut models, &key, short).await.unwrap();
    let series = format!(r#"inference_generated_tokens_total{{model="{MODEL}"}}"#);
    let total = metrics::value(&metrics::scrape(&server).await, &series);
    let cancelled = total - u64::try_from(last.completion_tokens).unwrap();
    assert!(
        (1..=4).contains(&cancelled),
        "the abandoned generation went on for {cancelled} tokens"
    );
}

#[tokio::test]
async fn the_local_model_answers_chats_through_the_private_alias_with_phi_kept_on_premises() {
    use codexcontinue::pb::v1::{
        GenerationOptions, ListProvidersRequest, PhiPolicy, SendMessageRequest,
    };

    let mut t = super::chat_fixture::setup_with(vec![(
        "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
        TestEnv::models_dir().display().to_string(),
    )])
    .await;
    let key = t.server.owner_key.clone();
    let providers = t
        .admin
        .list_providers(authorized(&key, ListProvidersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .providers;
    let local = providers.iter().find(|p| p.name == "local").unwrap();
    assert!(local.on_premises && local.platform_default);
    assert_eq!(local.models, ["smollm2-135m-instruct"]);

    // The strictest PHI policy refuses prompts with PHI to providers off the premises;
    // the local model is on them.
    t.set_tenant_phi_policy(PhiPolicy::Refuse).await;
    let conversation = t.conversation("private").await;
    let reply = t
        .chat
        .send_message(authorized(
            &key,
            SendMessageRequest {
                conversation_id: conversation.clone(),
                content: "Patient SSN 123-45-6789 reports a mild headache. What should I check?"
                    .into(),
                options: Some(GenerationOptions {
                    temperature: Some(0.0),
                    max_tokens: Some(24),
                    ..GenerationOptions::default()
                }),
                idempotency_key: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(reply.model_used, "local/smollm2-135m-instruct");
    assert!(!reply.content.trim().is_empty());
    let usage = reply.usage.unwrap();
    assert!(
        usage.prompt_tokens > 20 && (1..=24).contains(&usage.completion_tokens),
        "{usage:?}"
    );
    assert!(
        t.upstream.requests().is_empty(),
        "nothing went to the cloud provider"
    );

    let cloud = t
        .send(&conversation, "SSN 123-45-6789 again", "cloud/echo-1")
        .await
        .unwrap_err();
    assert_eq!(
        cloud.code(),
        Code::FailedPrecondition,
        "refused off the premises"
    );
}
