//! Model files for tests: a folder of their own, and a small TorchScript model made here
//! with libtorch (x·W + b), so tests need nothing prepared beyond `make models`.

use std::path::{Path, PathBuf};

use codexcontinue::pb::v1::model_service_client::ModelServiceClient;
use sha2::{Digest, Sha256};
use tch::{CModule, Kind, Tensor};
use tonic::transport::Channel;

use crate::TestServer;

/// A server with settings `env` and a ModelService client of it.
pub async fn model_server(env: Vec<(String, String)>) -> (TestServer, ModelServiceClient<Channel>) {
    let server = TestServer::with_env(env).await;
    let client = ModelServiceClient::new(server.channel().await);
    (server, client)
}

/// A fresh, empty folder under the suite's temporary folder.
///
/// # Panics
/// When it cannot be made.
pub fn temp_folder(label: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("codexcontinue-e2e")
        .join(format!("{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// Lower-case hex SHA-256 of a file.
///
/// # Panics
/// When the file cannot be read.
pub fn sha256_of(file: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(file).expect("read the file")))
}

/// Saves a model whose `forward(x, b)` is `x·W + b` with W = [[1,2],[3,4],[5,6]] (x is
/// `[n, 3]`, b `[n, 2]`) to `file`; returns its SHA-256.
///
/// # Panics
/// When libtorch cannot trace or save it.
pub fn save_affine_model(file: &Path) -> String {
    let weights = Tensor::from_slice(&[1f32, 2., 3., 4., 5., 6.]).view([3, 2]);
    let example = [
        Tensor::zeros([1, 3], (Kind::Float, tch::Device::Cpu)),
        Tensor::zeros([1, 2], (Kind::Float, tch::Device::Cpu)),
    ];
    let module = CModule::create_by_tracing("Affine", "forward", &example, &mut |xs| {
        vec![xs[0].matmul(&weights) + &xs[1]]
    })
    .expect("trace the model");
    module.save(file).expect("save the model");
    sha256_of(file)
}

/// Saves a model whose `forward(ids)` is `2·ids + 1` on 64-bit integers to `file`;
/// returns its SHA-256.
///
/// # Panics
/// When libtorch cannot trace or save it.
pub fn save_integer_model(file: &Path) -> String {
    let example = [Tensor::zeros([1, 2], (Kind::Int64, tch::Device::Cpu))];
    let module =
        CModule::create_by_tracing("Odd", "forward", &example, &mut |xs| vec![&xs[0] * 2 + 1])
            .expect("trace the model");
    module.save(file).expect("save the model");
    sha256_of(file)
}

/// Settings that serve only the shipped embedding model (`minilm-l6`, from
/// `make models`): what memory needs, without the cost of loading the others.
///
/// # Panics
/// When the folder cannot be made.
pub fn embedding_model_env() -> Vec<(String, String)> {
    let dir = temp_folder("embedding-model");
    std::os::unix::fs::symlink(
        crate::TestEnv::models_dir().join("minilm-l6"),
        dir.join("minilm-l6"),
    )
    .expect("link the embedding model");
    vec![(
        "CODEXCONTINUE_INFERENCE__MODELS_DIR".to_owned(),
        dir.display().to_string(),
    )]
}
