//! Tenants' own models: uploaded by a tenant admin (RegisterModel), checked before they are
//! kept, stored sealed in Postgres, visible and usable only by their tenant, fetched by
//! another replica on first use, and loaded, unloaded and deleted on every replica.

use std::{os::unix::fs::symlink, path::Path};

use codexcontinue::pb::v1::{
    DeleteModelRequest, EmbedRequest, GetModelRequest, ListModelsRequest, LoadModelRequest, Model,
    ModelKind, ModelManifest, ModelState, PredictRequest, RegisterModelRequest, Tensor as PbTensor,
    UnloadModelRequest, model_service_client::ModelServiceClient, register_model_request::Part,
};
use codexcontinue_tests::{
    TestEnv, eventually,
    grpc::{authorized, bad_field, key_with_roles},
    models::{model_server, save_affine_model, sha256_of, temp_folder},
};
use sqlx::Row;
use tonic::{Code, Status, transport::Channel};

const CHUNK: usize = 4 * 1024 * 1024;

/// Settings of a server that accepts tenant models, its platform models in `models`, the
/// models it fetches in `fetched`.
fn settings(models: &Path, fetched: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
            models.display().to_string(),
        ),
        (
            "CODEXCONTINUE_INFERENCE__TENANT_MODELS".to_owned(),
            "true".to_owned(),
        ),
        (
            "CODEXCONTINUE_INFERENCE__TENANT_MODELS_DIR".to_owned(),
            fetched.display().to_string(),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Platform models: the shipped embedding model.
fn platform_models() -> std::path::PathBuf {
    let dir = temp_folder("platform-models");
    symlink(
        TestEnv::models_dir().join("minilm-l6"),
        dir.join("minilm-l6"),
    )
    .unwrap();
    dir
}

/// The messages of an upload: manifest, model chunks, tokenizer chunks.
fn upload(
    manifest: ModelManifest,
    model: &[u8],
    tokenizer: Option<&[u8]>,
) -> Vec<RegisterModelRequest> {
    let part = |part| RegisterModelRequest { part: Some(part) };
    let mut messages = vec![part(Part::Manifest(manifest))];
    messages.extend(model.chunks(CHUNK).map(|c| part(Part::Chunk(c.to_vec()))));
    if let Some(tokenizer) = tokenizer {
        messages.extend(
            tokenizer
                .chunks(CHUNK)
                .map(|c| part(Part::TokenizerJson(c.to_vec()))),
        );
    }
    messages
}

async fn register(
    client: &mut ModelServiceClient<Channel>,
    key: &str,
    messages: Vec<RegisterModelRequest>,
) -> Result<Model, Status> {
    client
        .register_model(authorized(key, tokio_stream::iter(messages)))
        .await
        .map(|response| response.into_inner().model.expect("a model"))
}

fn affine_manifest(name: &str, sha256: &str) -> ModelManifest {
    ModelManifest {
        name: name.into(),
        version: "1".into(),
        kind: ModelKind::Torchscript.into(),
        sha256: sha256.into(),
        inputs: vec!["x".into(), "b".into()],
        ..ModelManifest::default()
    }
}

/// The affine model's file and SHA-256.
fn affine_file() -> (Vec<u8>, String) {
    let file = temp_folder("affine").join("model.pt");
    let sha256 = save_affine_model(&file);
    (std::fs::read(&file).unwrap(), sha256)
}

async fn predict(
    client: &mut ModelServiceClient<Channel>,
    key: &str,
    model: &str,
) -> Result<Vec<f32>, Status> {
    let floats = |shape: &[i64], values: &[f32]| PbTensor {
        shape: shape.to_vec(),
        float_values: values.to_vec(),
        int_values: Vec::new(),
    };
    let request = PredictRequest {
        model: model.into(),
        inputs: [
            ("x".to_owned(), floats(&[1, 3], &[1., 1., 1.])),
            ("b".to_owned(), floats(&[1, 2], &[0.5, -0.5])),
        ]
        .into(),
    };
    client
        .predict(authorized(key, request))
        .await
        .map(|r| r.into_inner().outputs["output"].float_values.clone())
}

async fn embed(
    client: &mut ModelServiceClient<Channel>,
    key: &str,
    model: &str,
) -> Result<Vec<f32>, Status> {
    let request = EmbedRequest {
        model: model.into(),
        texts: vec!["Die Katze schläft auf dem Sofa.".into()],
    };
    client
        .embed(authorized(key, request))
        .await
        .map(|r| r.into_inner().embeddings[0].values.clone())
}

async fn listed(client: &mut ModelServiceClient<Channel>, key: &str) -> Vec<(String, bool)> {
    client
        .list_models(authorized(key, ListModelsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|m| (m.id, m.tenant_private))
        .collect()
}

#[tokio::test]
async fn a_tenant_model_is_private_to_its_tenant_and_served_by_every_replica() {
    let platform = platform_models();
    let (fetched_here, fetched_there) = (temp_folder("fetched"), temp_folder("fetched"));
    let (server, mut here) = model_server(settings(&platform, &fetched_here, &[])).await;
    let acme = server.owner_key.clone();
    let globex = server.add_tenant("globex").await;

    // A generic model and an embedding model (90 MB: many stored parts, and a tokenizer).
    let (affine, affine_sha) = affine_file();
    let model = register(
        &mut here,
        &acme,
        upload(affine_manifest("affine", &affine_sha), &affine, None),
    )
    .await
    .unwrap();
    assert_eq!(model.id, "affine@1");
    assert!(model.tenant_private);
    assert_eq!(model.state(), ModelState::Ready);
    assert_eq!(
        predict(&mut here, &acme, "affine").await.unwrap(),
        [9.5, 11.5]
    );

    let shipped = TestEnv::models_dir().join("minilm-l6");
    let minilm = std::fs::read(shipped.join("model.pt")).unwrap();
    let tokenizer = std::fs::read(shipped.join("tokenizer.json")).unwrap();
    let manifest = ModelManifest {
        name: "our-minilm".into(),
        version: "2".into(),
        kind: ModelKind::Embedding.into(),
        sha256: sha256_of(&shipped.join("model.pt")),
        dimensions: 384,
        ..ModelManifest::default()
    };
    register(
        &mut here,
        &acme,
        upload(manifest, &minilm, Some(&tokenizer)),
    )
    .await
    .unwrap();
    let platform_vector = embed(&mut here, &acme, "minilm-l6").await.unwrap();
    assert_eq!(
        embed(&mut here, &acme, "our-minilm@2").await.unwrap(),
        platform_vector
    );

    // Only acme sees them; globex sees the platform model.
    let ours = listed(&mut here, &acme).await;
    assert!(ours.contains(&("affine@1".to_owned(), true)), "{ours:?}");
    assert!(
        ours.contains(&("minilm-l6@1".to_owned(), false)),
        "{ours:?}"
    );
    assert_eq!(
        listed(&mut here, &globex).await,
        [("minilm-l6@1".to_owned(), false)]
    );
    let hidden = here
        .get_model(authorized(
            &globex,
            GetModelRequest {
                model: "affine".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(
        predict(&mut here, &globex, "affine")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        embed(&mut here, &globex, "our-minilm")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Stored sealed: no part holds the file's bytes in the clear.
    let mut db = server.db.owner().await;
    let first_part: Vec<u8> = sqlx::query(
        "SELECT p.data_sealed FROM tenant_model_parts p JOIN tenant_models m ON m.id = p.model_id
         WHERE m.name = 'our-minilm' AND p.file = 'model' AND p.seq = 0",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
    .get(0);
    assert!(!first_part.windows(64).any(|w| w == &minilm[..64]));

    // Another replica lists them before fetching, then fetches and serves them.
    let replica = server
        .replica_with(settings(&platform, &fetched_there, &[]))
        .await;
    let mut there = ModelServiceClient::new(replica.channel().await);
    let theirs = listed(&mut there, &acme).await;
    assert!(
        theirs.contains(&("our-minilm@2".to_owned(), true)),
        "{theirs:?}"
    );
    assert_eq!(
        predict(&mut there, &acme, "affine@1").await.unwrap(),
        [9.5, 11.5]
    );
    assert_eq!(
        embed(&mut there, &acme, "our-minilm").await.unwrap(),
        platform_vector
    );
    assert_eq!(
        predict(&mut there, &globex, "affine")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Unloaded on one replica: refused on both; loaded again: served on both.
    let unloaded = here
        .unload_model(authorized(
            &acme,
            UnloadModelRequest {
                model: "affine".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(unloaded.state(), ModelState::Registered);
    eventually("the other replica unloads it", || {
        let mut there = there.clone();
        let acme = acme.clone();
        async move {
            let refused = predict(&mut there, &acme, "affine").await.err()?;
            (refused.code() == Code::FailedPrecondition).then_some(())
        }
    })
    .await;
    there
        .load_model(authorized(
            &acme,
            LoadModelRequest {
                model: "affine@1".into(),
                device: 0,
            },
        ))
        .await
        .unwrap();
    eventually("this replica loads it again", || {
        let mut here = here.clone();
        let acme = acme.clone();
        async move { predict(&mut here, &acme, "affine").await.ok() }
    })
    .await;

    // Deleted: gone on every replica, from Postgres and from the replicas' folders.
    here.delete_model(authorized(
        &acme,
        DeleteModelRequest {
            model: "affine".into(),
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        predict(&mut here, &acme, "affine")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    eventually("the other replica forgets it", || {
        let mut there = there.clone();
        let acme = acme.clone();
        async move {
            let gone = predict(&mut there, &acme, "affine").await.err()?;
            (gone.code() == Code::NotFound).then_some(())
        }
    })
    .await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM tenant_models")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(names, ["our-minilm"]);
    let acme_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    for fetched in [&fetched_here, &fetched_there] {
        let folders = std::fs::read_dir(fetched.join(acme_id.to_string()))
            .unwrap()
            .count();
        assert_eq!(
            folders,
            1,
            "only our-minilm is left in {}",
            fetched.display()
        );
    }
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE action LIKE 'model.%' ORDER BY seq",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "model.register",
            "model.register",
            "model.unload",
            "model.load",
            "model.delete"
        ]
    );
    for dir in [platform, fetched_here, fetched_there] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn uploads_are_checked_before_anything_is_kept() {
    let platform = platform_models();
    let fetched = temp_folder("fetched");
    let limits = [
        ("CODEXCONTINUE_INFERENCE__MAX_MODEL_BYTES", "1048576"),
        ("CODEXCONTINUE_INFERENCE__MAX_TENANT_MODELS", "2"),
    ];
    let (server, mut models) = model_server(settings(&platform, &fetched, &limits)).await;
    let owner = server.owner_key.clone();
    let (affine, sha) = affine_file();
    let refused = |status: Status| bad_field(&status);

    let member = key_with_roles(server.channel().await, &owner, &["member"]).await;
    let denied = register(
        &mut models,
        &member,
        upload(affine_manifest("a", &sha), &affine, None),
    )
    .await
    .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let chunk_first = vec![RegisterModelRequest {
        part: Some(Part::Chunk(affine.clone())),
    }];
    assert_eq!(
        refused(
            register(&mut models, &owner, chunk_first)
                .await
                .unwrap_err()
        ),
        "part"
    );
    let bad_name = upload(affine_manifest("Affine!", &sha), &affine, None);
    assert_eq!(
        refused(register(&mut models, &owner, bad_name).await.unwrap_err()),
        "manifest"
    );
    let wrong_sum = upload(affine_manifest("a", &"0".repeat(64)), &affine, None);
    assert_eq!(
        refused(register(&mut models, &owner, wrong_sum).await.unwrap_err()),
        "manifest.sha256"
    );
    let big = vec![7u8; 1_100_000];
    let big_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big));
    let too_big = upload(affine_manifest("a", &big_sha), &big, None);
    let status = register(&mut models, &owner, too_big).await.unwrap_err();
    assert!(
        status.message().contains("inference.max_model_bytes"),
        "{status:?}"
    );
    assert_eq!(refused(status), "chunk");
    let junk = b"not a TorchScript archive".to_vec();
    let junk_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&junk));
    let not_torchscript = upload(affine_manifest("a", &junk_sha), &junk, None);
    let status = register(&mut models, &owner, not_torchscript)
        .await
        .unwrap_err();
    assert!(status.message().contains("does not load"), "{status:?}");
    assert_eq!(refused(status), "chunk");
    let no_tokenizer = ModelManifest {
        kind: ModelKind::Embedding.into(),
        dimensions: 384,
        inputs: Vec::new(),
        ..affine_manifest("a", &sha)
    };
    assert_eq!(
        refused(
            register(&mut models, &owner, upload(no_tokenizer, &affine, None))
                .await
                .unwrap_err()
        ),
        "tokenizer_json"
    );
    let platform_name = upload(affine_manifest("minilm-l6", &sha), &affine, None);
    let taken = register(&mut models, &owner, platform_name)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");

    // Nothing of the refused uploads was kept.
    let mut db = server.db.owner().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_models")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let leftovers: usize = std::fs::read_dir(&fetched)
        .unwrap()
        .map(|tenant| std::fs::read_dir(tenant.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(leftovers, 0);

    // Two models fit; the same name and version again, or a third, do not.
    for name in ["a", "b"] {
        register(
            &mut models,
            &owner,
            upload(affine_manifest(name, &sha), &affine, None),
        )
        .await
        .unwrap();
    }
    let again = register(
        &mut models,
        &owner,
        upload(affine_manifest("a", &sha), &affine, None),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let third = register(
        &mut models,
        &owner,
        upload(affine_manifest("c", &sha), &affine, None),
    )
    .await
    .unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");

    // Platform models are not the tenant's to delete.
    let platform_model = models
        .delete_model(authorized(
            &owner,
            DeleteModelRequest {
                model: "minilm-l6".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(platform_model.code(), Code::FailedPrecondition);
    for dir in [platform, fetched] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
