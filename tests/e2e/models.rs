//! ModelService on real TorchScript models through libtorch: the shipped embedding model
//! agrees with PyTorch, concurrent requests are batched without changing their answers,
//! and a model whose file fails its checksum is refused while the others serve.

use std::{os::unix::fs::symlink, path::PathBuf};

use codexcontinue::pb::v1::{
    ClassifyRequest, Device, EmbedRequest, GetModelRequest, ListModelsRequest, ModelKind,
    ModelManifest, ModelState, RegisterModelRequest, model_service_client::ModelServiceClient,
    register_model_request::Part,
};
use codexcontinue_tests::{
    TestEnv, TestServer,
    grpc::{authorized, bad_field},
    metrics,
    models::{model_server, save_affine_model, save_integer_model, temp_folder},
};
use serde_json::Value;
use tonic::{Code, transport::Channel};

/// A models folder with the shipped embedding models, the classifier and a copy of
/// `minilm-l6` whose manifest names another checksum.
fn models_folder() -> PathBuf {
    let shipped = TestEnv::models_dir().join("minilm-l6");
    let dir = temp_folder("models");
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    for model in ["minilm-l6", "minilm-l6-bf16", "domain-classifier"] {
        symlink(TestEnv::models_dir().join(model), dir.join(model)).unwrap();
    }
    let manifest: Vec<String> = std::fs::read_to_string(shipped.join("manifest.toml"))
        .unwrap()
        .lines()
        .map(|line| match line.split(' ').next() {
            Some("name") => "name = \"minilm-broken\"".to_owned(),
            Some("sha256") => format!("sha256 = \"{}\"", "0".repeat(64)),
            _ => line.to_owned(),
        })
        .collect();
    let manifest = manifest.join("\n");
    std::fs::write(dir.join("broken/manifest.toml"), manifest).unwrap();
    for file in ["model.pt", "tokenizer.json"] {
        symlink(shipped.join(file), dir.join("broken").join(file)).unwrap();
    }
    dir
}

async fn serve(models: Option<PathBuf>) -> (TestServer, ModelServiceClient<Channel>) {
    let env = models
        .map(|dir| {
            vec![(
                "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
                dir.display().to_string(),
            )]
        })
        .unwrap_or_default();
    model_server(env).await
}

fn embed(key: &str, texts: &[&str], model: &str) -> tonic::Request<EmbedRequest> {
    authorized(
        key,
        EmbedRequest {
            model: model.into(),
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
        },
    )
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y.powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[tokio::test]
async fn embeddings_match_pytorch_and_concurrent_requests_are_batched() {
    let (server, mut models) = serve(Some(models_folder())).await;
    let key = server.owner_key.clone();

    let listed = models
        .list_models(authorized(&key, ListModelsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .models;
    let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "domain-classifier@1",
            "minilm-broken@1",
            "minilm-l6-bf16@1",
            "minilm-l6@1"
        ]
    );
    assert_eq!(listed[1].state(), ModelState::Failed);
    assert!(listed[1].error.contains("SHA-256"), "{}", listed[1].error);
    assert_eq!(listed[3].state(), ModelState::Ready);
    assert_eq!(listed[3].device(), Device::Cpu, "no GPU here");
    let got = models
        .get_model(authorized(
            &key,
            GetModelRequest {
                model: "minilm-l6".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(got.manifest.unwrap().dimensions, 384);

    // Rust (tch) agrees with PyTorch on every reference sentence.
    let reference: Value =
        serde_json::from_str(include_str!("../fixtures/minilm_reference.json")).unwrap();
    let sentences: Vec<&str> = reference["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(sentences.len() >= 20 && sentences.iter().any(|s| !s.is_ascii()));
    let batched = models
        .embed(embed(&key, &sentences, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (batched.model.as_str(), batched.dimensions),
        ("minilm-l6@1", 384)
    );
    assert!(batched.tokens > 0);
    for (n, (got, want)) in batched
        .embeddings
        .iter()
        .zip(reference["vectors"].as_array().unwrap())
        .enumerate()
    {
        let want: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let similarity = cosine(&got.values, &want);
        assert!(similarity >= 0.9999, "sentence {n}: cosine {similarity}");
    }

    // The bfloat16 variant gives nearly the same vectors.
    let bf16 = models
        .embed(embed(&key, &sentences, "minilm-l6-bf16"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bf16.model, "minilm-l6-bf16@1");
    for (n, (got, want)) in bf16.embeddings.iter().zip(&batched.embeddings).enumerate() {
        let want: Vec<f64> = want.values.iter().map(|v| f64::from(*v)).collect();
        let similarity = cosine(&got.values, &want);
        assert!(
            similarity >= 0.999,
            "sentence {n}: bf16 cosine {similarity}"
        );
    }

    // One request per sentence, all at once: the worker batches them, and each answer is
    // the one the sentence gets alone.
    let series = r#"inference_batch_size_count{model="minilm-l6@1"}"#;
    let calls_before = metrics::value(&metrics::scrape(&server).await, series);
    let singles = futures_join(&models, &key, &sentences).await;
    let calls = metrics::value(&metrics::scrape(&server).await, series) - calls_before;
    assert!(
        calls < sentences.len() as u64,
        "{} requests took {calls} model calls",
        sentences.len()
    );
    for (single, together) in singles.iter().zip(&batched.embeddings) {
        let together: Vec<f64> = together.values.iter().map(|v| f64::from(*v)).collect();
        assert!(cosine(single, &together) >= 0.99999);
    }

    // Bad calls get clear statuses.
    let empty = models.embed(embed(&key, &[], "")).await.unwrap_err();
    assert_eq!(bad_field(&empty), "texts");
    let many = vec!["x"; 257];
    let too_many = models.embed(embed(&key, &many, "")).await.unwrap_err();
    assert_eq!(bad_field(&too_many), "texts");
    let unknown = models.embed(embed(&key, &["x"], "nope")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let refused = models
        .embed(embed(&key, &["x"], "minilm-broken"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("SHA-256"),
        "{}",
        refused.message()
    );
}

/// Embeds each sentence in its own concurrent call.
async fn futures_join(
    models: &ModelServiceClient<Channel>,
    key: &str,
    sentences: &[&str],
) -> Vec<Vec<f32>> {
    let calls: Vec<_> = sentences
        .iter()
        .map(|sentence| {
            let mut models = models.clone();
            let request = embed(key, &[sentence], "");
            tokio::spawn(async move { models.embed(request).await })
        })
        .collect();
    let mut vectors = Vec::with_capacity(calls.len());
    for call in calls {
        let answer = call.await.unwrap().unwrap().into_inner();
        vectors.push(answer.embeddings[0].values.clone());
    }
    vectors
}

#[tokio::test]
async fn the_domain_classifier_labels_requests_by_field() {
    let (server, mut models) = serve(Some(models_folder())).await;
    let key = server.owner_key.clone();
    let classify = |texts: Vec<String>, top_k: i32| {
        authorized(
            &key,
            ClassifyRequest {
                model: String::new(),
                texts,
                top_k,
            },
        )
    };
    let clear = [
        (
            "health",
            "Is it safe to take ibuprofen together with lisinopril?",
        ),
        (
            "developer",
            "Refactor this Rust function so it stops cloning the vector",
        ),
        (
            "finance",
            "How much capital gains tax do I owe on selling shares after two years?",
        ),
        (
            "legal",
            "Draft a confidentiality clause for a non-disclosure agreement",
        ),
        (
            "general",
            "Suggest a relaxing weekend trip from Berlin by train",
        ),
    ];
    let answer = models
        .classify(classify(
            clear.iter().map(|(_, t)| (*t).to_owned()).collect(),
            2,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model, "domain-classifier@1");
    for ((label, text), result) in clear.iter().zip(&answer.results) {
        assert_eq!(result.labels.len(), 2, "top_k");
        assert_eq!(&result.labels[0].label, label, "{text}: {result:?}");
        assert!(result.labels[0].score >= result.labels[1].score);
    }

    // The held-out test split, through the API: the figures `models train` printed.
    let lines: Vec<(String, String)> = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/data/domain_classifier/test.tsv"),
    )
    .unwrap()
    .lines()
    .filter_map(|l| l.split_once('\t'))
    .map(|(label, text)| (label.to_owned(), text.to_owned()))
    .collect();
    let mut right = 0;
    for chunk in lines.chunks(200) {
        let texts = chunk.iter().map(|(_, t)| t.clone()).collect();
        let results = models
            .classify(classify(texts, 1))
            .await
            .unwrap()
            .into_inner()
            .results;
        right += chunk
            .iter()
            .zip(&results)
            .filter(|((label, _), result)| &result.labels[0].label == label)
            .count();
    }
    #[allow(clippy::cast_precision_loss)]
    let accuracy = right as f64 / lines.len() as f64;
    assert!(
        lines.len() >= 300 && accuracy >= 0.88,
        "accuracy {accuracy:.3} on {} lines",
        lines.len()
    );

    let wrong_kind = models
        .classify(authorized(
            &key,
            ClassifyRequest {
                model: "minilm-l6".into(),
                texts: vec!["x".into()],
                top_k: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong_kind.code(), Code::InvalidArgument);
    let negative = models
        .classify(classify(vec!["x".into()], -1))
        .await
        .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_server_without_models_says_so() {
    let (server, mut models) = serve(None).await;
    let key = server.owner_key.clone();
    let listed = models
        .list_models(authorized(&key, ListModelsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert!(listed.is_empty());
    let missing = models.embed(embed(&key, &["hello"], "")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Tenants' own models are off unless the operator allows them.
    let manifest = RegisterModelRequest {
        part: Some(Part::Manifest(ModelManifest {
            name: "mine".into(),
            version: "1".into(),
            kind: ModelKind::Torchscript.into(),
            sha256: "0".repeat(64),
            inputs: vec!["x".into()],
            ..ModelManifest::default()
        })),
    };
    let off = models
        .register_model(authorized(&key, tokio_stream::iter([manifest])))
        .await
        .unwrap_err();
    assert_eq!(off.code(), Code::FailedPrecondition);
    assert!(
        off.message().contains("inference.tenant_models"),
        "{}",
        off.message()
    );
}

#[tokio::test]
async fn platform_operators_unload_and_load_models_at_run_time() {
    use codexcontinue::pb::v1::{LoadModelRequest, UnloadModelRequest};

    let (server, mut models) = serve(Some(models_folder())).await;
    let tenant_owner = server.owner_key.clone();
    let operator = server.add_platform_admin().await;
    let unload = |key: &str| {
        authorized(
            key,
            UnloadModelRequest {
                model: "minilm-l6".into(),
            },
        )
    };
    let denied = models
        .unload_model(unload(&tenant_owner))
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "models serve every tenant"
    );

    // Requests sent before the unload are answered; later ones are refused.
    let before: Vec<_> = (0..8)
        .map(|n| {
            let mut models = models.clone();
            let request = embed(&tenant_owner, &[&format!("text {n}")], "");
            tokio::spawn(async move { models.embed(request).await })
        })
        .collect();
    let unloaded = models
        .unload_model(unload(&operator))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unloaded.model.unwrap().state(), ModelState::Registered);
    for call in before {
        let outcome = call.await.unwrap();
        assert!(
            outcome.is_ok() || outcome.as_ref().unwrap_err().code() == Code::FailedPrecondition,
            "{outcome:?}"
        );
    }
    let refused = models
        .embed(embed(&tenant_owner, &["x"], ""))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("unloaded"),
        "{}",
        refused.message()
    );

    // No GPU here: asking for CUDA leaves the model failed with the reason, and loading
    // it again as configured brings it back.
    let load = |device: Device| {
        authorized(
            &operator,
            LoadModelRequest {
                model: "minilm-l6".into(),
                device: device.into(),
            },
        )
    };
    let on_gpu = models
        .load_model(load(Device::Cuda))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(on_gpu.state(), ModelState::Failed);
    assert!(on_gpu.error.contains("CUDA"), "{}", on_gpu.error);
    let back = models
        .load_model(load(Device::Unspecified))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(
        (back.state(), back.device()),
        (ModelState::Ready, Device::Cpu)
    );
    let answer = models
        .embed(embed(&tenant_owner, &["x"], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.embeddings[0].values.len(), 384);
}

#[tokio::test]
async fn generic_torchscript_models_take_and_give_named_tensors() {
    use codexcontinue::pb::v1::{PredictRequest, Tensor as PbTensor};

    // Models of our own: x·W + b on floats, and 2·ids + 1 on integers.
    let dir = temp_folder("models");
    for (name, save, inputs) in [
        (
            "affine",
            save_affine_model as fn(&std::path::Path) -> String,
            "[\"x\", \"b\"]",
        ),
        ("odd", save_integer_model, "[\"ids\"]"),
    ] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        let sha256 = save(&dir.join(name).join("model.pt"));
        std::fs::write(
            dir.join(name).join("manifest.toml"),
            format!(
                "name = \"{name}\"\nversion = \"1\"\nkind = \"torchscript\"\nfile = \"model.pt\"\n\
                 sha256 = \"{sha256}\"\ninputs = {inputs}\n"
            ),
        )
        .unwrap();
    }
    let (server, mut models) = serve(Some(dir)).await;
    let key = server.owner_key.clone();
    let floats = |shape: &[i64], values: &[f32]| PbTensor {
        shape: shape.to_vec(),
        float_values: values.to_vec(),
        int_values: Vec::new(),
    };
    let predict_with = |model: &str, inputs: Vec<(&str, PbTensor)>| {
        authorized(
            &key,
            PredictRequest {
                model: model.into(),
                inputs: inputs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            },
        )
    };

    let predict = |inputs| predict_with("affine", inputs);
    let answer = models
        .predict(predict(vec![
            ("x", floats(&[1, 3], &[1., 1., 1.])),
            ("b", floats(&[1, 2], &[0.5, -0.5])),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model, "affine@1");
    assert_eq!(answer.outputs["output"].shape, [1, 2]);
    assert_eq!(answer.outputs["output"].float_values, [9.5, 11.5]);

    // Integers in, integers out.
    let ids = PbTensor {
        shape: vec![2, 2],
        float_values: Vec::new(),
        int_values: vec![0, 1, 20, -3],
    };
    let odd = models
        .predict(predict_with("odd", vec![("ids", ids)]))
        .await
        .unwrap()
        .into_inner();
    let output = &odd.outputs["output"];
    assert_eq!(output.shape, [2, 2]);
    assert_eq!(output.int_values, [1, 3, 41, -5]);
    assert!(output.float_values.is_empty());

    let field = |status: tonic::Status| bad_field(&status);
    let missing = models
        .predict(predict(vec![("x", floats(&[1, 3], &[1., 1., 1.]))]))
        .await
        .unwrap_err();
    assert_eq!(field(missing), "inputs");
    let mismatched = models
        .predict(predict(vec![
            ("x", floats(&[1, 3], &[1., 1.])),
            ("b", floats(&[1, 2], &[0., 0.])),
        ]))
        .await
        .unwrap_err();
    assert_eq!(field(mismatched), "inputs");
    let wrong_shape = models
        .predict(predict(vec![
            ("x", floats(&[1, 4], &[1., 1., 1., 1.])),
            ("b", floats(&[1, 2], &[0., 0.])),
        ]))
        .await
        .unwrap_err();
    assert_eq!(field(wrong_shape), "inputs");
}
