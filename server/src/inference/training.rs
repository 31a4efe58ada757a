//! Training the domain classifier: a small head (one hidden layer) over the sentence
//! vectors of an embedding model, fitted with Adam on a labelled set kept in the repository
//! (`server/data/domain_classifier/{train,test}.tsv`, lines of `label<TAB>text`). A tenth
//! of the training lines (chosen by the seed) is held out for early stopping; the test
//! file is used only for the final figures. The head is saved as TorchScript (traced from
//! the trained weights) with a manifest naming the embedding model it reads.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tch::{CModule, Device, Kind, Tensor, nn, nn::ModuleT, nn::OptimizerConfig};

use super::{InferenceError, Manifest, embedding::EmbeddingRunner, worker::Runner};

/// Texts embedded per model call while preparing the data.
const EMBED_BATCH: usize = 32;
/// Units of the hidden layer.
const HIDDEN: i64 = 128;
/// Examples per optimizer step.
const STEP_BATCH: i64 = 64;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// Folder with `train.tsv` and `test.tsv`.
    pub data: PathBuf,
    /// Folder of the embedding model.
    pub encoder: PathBuf,
    /// Folder to write the classifier to.
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: i64,
    /// Most passes over the training lines.
    pub epochs: usize,
    /// Passes without a better validation loss before stopping.
    pub patience: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
}

/// How the trained classifier did on the test file.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Labels, in output order.
    pub labels: Vec<String>,
    /// Share of test lines labelled right.
    pub accuracy: f64,
    /// Mean of the labels' F1 scores.
    pub macro_f1: f64,
    /// Per label: precision, recall, F1, test lines.
    pub per_label: Vec<(f64, f64, f64, usize)>,
    /// Epochs run and the epoch kept.
    pub epochs: (usize, usize),
    /// Lines used: training, validation, test.
    pub lines: (usize, usize, usize),
}

impl Evaluation {
    /// A table of the figures.
    pub fn report(&self) -> String {
        let mut out = format!(
            "trained {} epochs (kept epoch {}); {} training, {} validation, {} test lines\n\n\
             | label | precision | recall | F1 | test lines |\n|---|---|---|---|---|\n",
            self.epochs.0, self.epochs.1, self.lines.0, self.lines.1, self.lines.2
        );
        for (label, (precision, recall, f1, support)) in self.labels.iter().zip(&self.per_label) {
            let _ = writeln!(
                out,
                "| {label} | {precision:.3} | {recall:.3} | {f1:.3} | {support} |"
            );
        }
        let _ = write!(
            out,
            "\naccuracy {:.3}, macro-F1 {:.3}",
            self.accuracy, self.macro_f1
        );
        out
    }
}

/// Labelled lines of a TSV file.
fn read_tsv(path: &Path) -> Result<Vec<(String, String)>, InferenceError> {
    let text = std::fs::read_to_string(path).map_err(|err| InferenceError::Io {
        path: path.to_owned(),
        reason: err.to_string(),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            line.split_once('\t')
                .map(|(label, text)| (label.trim().to_owned(), text.trim().to_owned()))
                .filter(|(label, text)| !label.is_empty() && !text.is_empty())
                .ok_or_else(|| InferenceError::BadManifest {
                    path: path.to_owned(),
                    reason: format!("line {}: expected label<TAB>text", n + 1),
                })
        })
        .collect()
}

/// Sentence vectors of `texts`, `[texts, dimensions]`.
fn embed(runner: &mut EmbeddingRunner, texts: &[String]) -> Result<Tensor, InferenceError> {
    let mut rows = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(EMBED_BATCH) {
        let (vectors, _) = runner.run(chunk)?;
        rows.extend(vectors.iter().map(|v| Tensor::from_slice(v)));
    }
    Ok(Tensor::stack(&rows, 0))
}

/// The head: vectors to label logits.
fn head(root: &nn::Path<'_>, dimensions: i64, labels: i64) -> nn::SequentialT {
    nn::seq_t()
        .add(nn::linear(
            root / "hidden",
            dimensions,
            HIDDEN,
            nn::LinearConfig::default(),
        ))
        .add_fn(Tensor::relu)
        .add_fn_t(|xs, train| xs.dropout(0.1, train))
        .add(nn::linear(
            root / "out",
            HIDDEN,
            labels,
            nn::LinearConfig::default(),
        ))
}

/// Trains the classifier as `settings` say, writes it, and evaluates it on the test file.
///
/// # Errors
/// [`InferenceError`] when the data or the encoder cannot be read, or libtorch fails.
pub fn train(settings: &TrainSettings) -> Result<Evaluation, InferenceError> {
    let failed = |err: tch::TchError| InferenceError::Failed(err.to_string());
    let train_lines = read_tsv(&settings.data.join("train.tsv"))?;
    let test_lines = read_tsv(&settings.data.join("test.tsv"))?;
    let labels: Vec<String> = train_lines
        .iter()
        .map(|(label, _)| label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index_of = |label: &str| {
        labels
            .iter()
            .position(|l| l == label)
            .ok_or_else(|| InferenceError::Invalid {
                field: "test.tsv",
                reason: format!("label {label:?} does not occur in train.tsv"),
            })
    };

    let encoder_manifest = Manifest::read(&settings.encoder)?;
    let encoder_file = encoder_manifest.verify_file(&settings.encoder)?;
    let mut runner = EmbeddingRunner::load(
        &encoder_manifest,
        &settings.encoder,
        &encoder_file,
        Device::Cpu,
    )?;
    tch::manual_seed(settings.seed);

    let texts: Vec<String> = train_lines.iter().map(|(_, t)| t.clone()).collect();
    let targets: Vec<i64> = train_lines
        .iter()
        .map(|(l, _)| index_of(l).map(|i| i as i64))
        .collect::<Result<_, _>>()?;
    let all_x = embed(&mut runner, &texts)?;
    let all_y = Tensor::from_slice(&targets);
    let count = i64::try_from(texts.len()).unwrap_or(i64::MAX);
    let order = Tensor::randperm(count, (Kind::Int64, Device::Cpu));
    let held_out = (count / 10).max(1);
    let (val_index, train_index) = (
        order.narrow(0, 0, held_out),
        order.narrow(0, held_out, count - held_out),
    );
    let (train_x, train_y) = (
        all_x.index_select(0, &train_index),
        all_y.index_select(0, &train_index),
    );
    let (val_x, val_y) = (
        all_x.index_select(0, &val_index),
        all_y.index_select(0, &val_index),
    );

    let dimensions = i64::try_from(encoder_manifest.dimensions).unwrap_or(i64::MAX);
    let label_count = i64::try_from(labels.len()).unwrap_or(i64::MAX);
    let store = nn::VarStore::new(Device::Cpu);
    let model = head(&store.root(), dimensions, label_count);
    // The weights of the best epoch so far are copied into a second head.
    let mut best = nn::VarStore::new(Device::Cpu);
    let final_head = head(&best.root(), dimensions, label_count);
    let mut optimizer = nn::Adam {
        wd: 1e-4,
        ..nn::Adam::default()
    }
    .build(&store, settings.learning_rate)
    .map_err(failed)?;

    let train_count = count - held_out;
    let (mut best_loss, mut best_epoch, mut ran) = (f64::INFINITY, 0, 0);
    for epoch in 1..=settings.epochs {
        ran = epoch;
        let shuffled = Tensor::randperm(train_count, (Kind::Int64, Device::Cpu));
        let mut start = 0;
        while start < train_count {
            let take = STEP_BATCH.min(train_count - start);
            let rows = shuffled.narrow(0, start, take);
            let logits = model.forward_t(&train_x.index_select(0, &rows), true);
            let loss = logits.cross_entropy_for_logits(&train_y.index_select(0, &rows));
            optimizer.backward_step(&loss);
            start += take;
        }
        let loss = tch::no_grad(|| {
            model
                .forward_t(&val_x, false)
                .cross_entropy_for_logits(&val_y)
                .double_value(&[])
        });
        if loss < best_loss - 1e-4 {
            best_loss = loss;
            best_epoch = epoch;
            best.copy(&store).map_err(failed)?;
        } else if epoch - best_epoch >= settings.patience {
            break;
        }
    }

    // Traced weights become constants, which must not require gradients.
    best.freeze();

    // The test figures.
    let test_texts: Vec<String> = test_lines.iter().map(|(_, t)| t.clone()).collect();
    let test_targets: Vec<usize> = test_lines
        .iter()
        .map(|(l, _)| index_of(l))
        .collect::<Result<_, _>>()?;
    let predicted: Vec<i64> = tch::no_grad(|| {
        let logits = final_head.forward_t(&embed(&mut runner, &test_texts)?, false);
        Vec::<i64>::try_from(&logits.argmax(1, false)).map_err(failed)
    })?;
    let evaluation = evaluate(
        &labels,
        &test_targets,
        &predicted,
        (ran, best_epoch),
        (
            usize::try_from(train_count).unwrap_or(0),
            usize::try_from(held_out).unwrap_or(0),
            test_lines.len(),
        ),
    );

    let example = Tensor::zeros([2, dimensions], (Kind::Float, Device::Cpu));
    let traced =
        CModule::create_by_tracing("DomainClassifierHead", "forward", &[example], &mut |xs| {
            vec![final_head.forward_t(&xs[0], false)]
        })
        .map_err(failed)?;
    write_model(settings, &encoder_manifest, &labels, &traced, &evaluation)?;
    Ok(evaluation)
}

/// Confusion counts to precision, recall and F1 per label, accuracy and macro-F1.
fn evaluate(
    labels: &[String],
    truth: &[usize],
    predicted: &[i64],
    epochs: (usize, usize),
    lines: (usize, usize, usize),
) -> Evaluation {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; n]; n];
    for (&t, &p) in truth.iter().zip(predicted) {
        if let Ok(p) = usize::try_from(p)
            && p < n
        {
            confusion[t][p] += 1;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_label: Vec<(f64, f64, f64, usize)> = (0..n)
        .map(|k| {
            let correct = confusion[k][k];
            let predicted_k: usize = (0..n).map(|t| confusion[t][k]).sum();
            let support: usize = confusion[k].iter().sum();
            let precision = ratio(correct, predicted_k);
            let recall = ratio(correct, support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            (precision, recall, f1, support)
        })
        .collect();
    let correct: usize = (0..n).map(|k| confusion[k][k]).sum();
    #[allow(clippy::cast_precision_loss)]
    let macro_f1 = per_label.iter().map(|(_, _, f1, _)| f1).sum::<f64>() / n.max(1) as f64;
    Evaluation {
        labels: labels.to_vec(),
        accuracy: ratio(correct, truth.len()),
        macro_f1,
        per_label,
        epochs,
        lines,
    }
}

/// Writes the traced head, its manifest and the evaluation into `settings.out`.
fn write_model(
    settings: &TrainSettings,
    encoder: &Manifest,
    labels: &[String],
    head: &CModule,
    evaluation: &Evaluation,
) -> Result<(), InferenceError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |err: std::io::Error| InferenceError::Io {
            path,
            reason: err.to_string(),
        }
    };
    std::fs::create_dir_all(&settings.out).map_err(io(&settings.out))?;
    let file = settings.out.join("head.pt");
    head.save(&file)
        .map_err(|err| InferenceError::Failed(err.to_string()))?;
    let bytes = std::fs::read(&file).map_err(io(&file))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let labels_toml: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    let manifest = format!(
        "# Domain classifier: a head over {encoder} sentence vectors, trained by\n\
         # `codexcontinue models train domain-classifier` (seed {seed}) on\n\
         # server/data/domain_classifier. Test accuracy {accuracy:.3}, macro-F1 {f1:.3}.\n\
         name = \"domain-classifier\"\nversion = \"1\"\nkind = \"classifier\"\n\
         file = \"head.pt\"\nsha256 = \"{sha256}\"\nencoder = \"{encoder}\"\n\
         labels = [{labels}]\nmax_length = {max_length}\ndevice = \"auto\"\n\
         max_batch = 32\nmax_wait = \"2ms\"\n",
        encoder = encoder.name,
        seed = settings.seed,
        accuracy = evaluation.accuracy,
        f1 = evaluation.macro_f1,
        labels = labels_toml.join(", "),
        max_length = encoder.max_length,
    );
    let path = settings.out.join("manifest.toml");
    std::fs::write(&path, manifest).map_err(io(&path))?;
    let path = settings.out.join("evaluation.md");
    std::fs::write(&path, evaluation.report()).map_err(io(&path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_confusion_counts() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        // truth a a b b, predicted a b b b
        let evaluation = evaluate(&labels, &[0, 0, 1, 1], &[0, 1, 1, 1], (3, 2), (4, 1, 4));
        assert!((evaluation.accuracy - 0.75).abs() < 1e-9);
        let (pa, ra, fa, sa) = evaluation.per_label[0];
        assert!((pa - 1.0).abs() < 1e-9 && (ra - 0.5).abs() < 1e-9 && sa == 2);
        assert!((fa - 2.0 / 3.0).abs() < 1e-9);
        let (pb, rb, fb, _) = evaluation.per_label[1];
        assert!((pb - 2.0 / 3.0).abs() < 1e-9 && (rb - 1.0).abs() < 1e-9);
        assert!((fb - 0.8).abs() < 1e-9);
        assert!((evaluation.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
        assert!(
            evaluation
                .report()
                .contains("| a | 1.000 | 0.500 | 0.667 | 2 |")
        );
    }
}
