//! The command line: `serve`, `migrate`, `bootstrap`, `audit verify|public-key`,
//! `crypto rotate`, `config show`.
//!
//! Failures end the process with one line on stderr (`codexcontinue: error: ...`) and a
//! non-zero status: 2 for configuration mistakes, 1 for everything else. No panics, no
//! backtraces: the message says what is wrong and how to fix it.

use std::{io::Write, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};

use crate::{
    App, Config, audit,
    bootstrap::{BootstrapOutcome, bootstrap},
    config::ConfigError,
    config::{DeviceChoice, ReplicaRole},
    crypto::{self, LocalMasterKey, Sealer},
    inference::training::{self, TrainSettings},
    store::{self, Database},
    telemetry,
    tenancy::{TenantId, TenantSlug},
};

/// CodexContinue: a self-hosted, multi-tenant AI assistant server.
#[derive(Debug, Parser)]
#[command(name = "codexcontinue", version, about)]
pub struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC, gRPC-Web and the HTTP routes until SIGTERM or SIGINT.
    Serve {
        /// Listen address, overriding server.listen (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Apply pending migrations (with database.migration_url) before serving.
        #[arg(long)]
        migrate: bool,
        /// Device for every local model, overriding inference.device: auto (each model's
        /// preference, CUDA when present), cpu or cuda.
        #[arg(long, value_name = "DEVICE")]
        device: Option<DeviceChoice>,
        /// What this replica does, overriding server.role: all, api (no job workers or
        /// repeating passes) or worker (those only; serves health, readiness, metrics).
        #[arg(long, value_name = "ROLE")]
        role: Option<ReplicaRole>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a tenant with its first admin and print an API key for them (once).
    Bootstrap {
        /// The tenant's slug, e.g. "acme-health".
        #[arg(long, value_name = "SLUG")]
        tenant: String,
        /// Email of the first admin (the tenant's owner).
        #[arg(long, value_name = "EMAIL")]
        admin_email: String,
        /// Display name of the tenant (default: the slug).
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        /// Also make the admin a platform operator (may create and suspend tenants).
        #[arg(long)]
        platform_admin: bool,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Work with the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage encryption at rest.
    Crypto {
        #[command(subcommand)]
        command: CryptoCommand,
    },
    /// Work with local models (needs no database or configuration).
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Train one of the project's own models and print its test figures.
    Train {
        #[command(subcommand)]
        model: TrainCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// The domain classifier that picks a conversation's profile: a head over the
    /// embedding model's vectors, trained on a labelled set (train.tsv, test.tsv).
    DomainClassifier {
        /// Folder with train.tsv and test.tsv.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "server/data/domain_classifier"
        )]
        data: PathBuf,
        /// Folder of the embedding model to train on.
        #[arg(long, value_name = "DIR", default_value = ".dev/models/minilm-l6")]
        encoder: PathBuf,
        /// Folder to write the classifier to.
        #[arg(
            long,
            value_name = "DIR",
            default_value = ".dev/models/domain-classifier"
        )]
        out: PathBuf,
        /// Seed of every random choice (same seed, data and encoder: same model).
        #[arg(long, default_value_t = 7)]
        seed: i64,
        /// Most passes over the data.
        #[arg(long, default_value_t = 200)]
        epochs: usize,
        /// Passes without improvement on the held-out tenth before stopping.
        #[arg(long, default_value_t = 15)]
        patience: usize,
        /// Adam's learning rate.
        #[arg(long, default_value_t = 1e-3)]
        learning_rate: f64,
    },
}

#[derive(Debug, Subcommand)]
enum CryptoCommand {
    /// Give tenants a new data key version and seal their stored secrets again with it.
    Rotate {
        /// Only this tenant (slug); default: every active or suspended tenant.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chains and check the signed checkpoints; report the first
    /// broken event; exits 1 if any chain is broken.
    Verify {
        /// Only this tenant (slug); default: every tenant and the platform chain.
        #[arg(long, value_name = "SLUG")]
        tenant: Option<String>,
        /// Check each chain from its newest signed checkpoint on, not from its first
        /// event (the signature vouches for what came before).
        #[arg(long)]
        since_checkpoint: bool,
    },
    /// Print the public key that checkpoints are signed with (base64 Ed25519) and its id.
    PublicKey,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration with secrets masked.
    Show,
}

/// A failure that ends the process.
enum Failure {
    Config(ConfigError),
    Runtime(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure::Runtime(err.to_string())
    }
}

/// Parses the command line, runs the command and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Training models needs no server configuration (nor a database).
    let config = if matches!(cli.command, Command::Models { .. }) {
        Config::default()
    } else {
        match Config::load(cli.config.as_deref()) {
            Ok(config) => config,
            Err(err) => return fail(Failure::Config(err)),
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            return fail(Failure::Runtime(format!(
                "cannot start the async runtime: {err}"
            )));
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(failure),
    }
}

/// `models …`: runs without configuration or database.
fn models(command: ModelsCommand) -> Result<(), Failure> {
    let ModelsCommand::Train {
        model:
            TrainCommand::DomainClassifier {
                data,
                encoder,
                out,
                seed,
                epochs,
                patience,
                learning_rate,
            },
    } = command;
    let evaluation = training::train(&TrainSettings {
        data,
        encoder,
        out: out.clone(),
        seed,
        epochs,
        patience,
        learning_rate,
    })?;
    println!("{}", evaluation.report());
    println!("written to {}", out.display());
    Ok(())
}

fn fail(failure: Failure) -> ExitCode {
    let (message, code) = match failure {
        Failure::Config(err) => (err.to_string(), 2),
        Failure::Runtime(message) => (message, 1),
    };
    eprintln!("codexcontinue: error: {}", message.replace('\n', " "));
    ExitCode::from(code)
}

async fn run(command: Command, mut config: Config) -> Result<(), Failure> {
    match command {
        Command::Models { command } => models(command),
        Command::Serve {
            listen,
            migrate,
            device,
            role,
        } => {
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            if let Some(role) = role {
                config.server.role = role;
            }
            if let Some(device) = device {
                config.inference.device = device;
            }
            telemetry::init_logging(&config.telemetry);
            if migrate {
                report_migrations(
                    &store::migrate(&config.database, config.audit.min_retention_days).await?,
                );
            }
            let shutdown = termination_signal();
            let app = App::build(config).await?;
            let addr = app.local_addr()?;
            tracing::info!(%addr, "listening");
            // The one stdout line of `serve`: scripts and tests read the bound address here.
            println!("codexcontinue listening on {addr}");
            std::io::stdout().flush()?;
            app.run(shutdown).await?;
            Ok(())
        }
        Command::Migrate => {
            report_migrations(
                &store::migrate(&config.database, config.audit.min_retention_days).await?,
            );
            Ok(())
        }
        Command::Bootstrap {
            tenant,
            admin_email,
            display_name,
            platform_admin,
        } => {
            let db = Database::connect(&config.database).await?;
            let outcome = bootstrap(
                &db,
                &tenant,
                display_name.as_deref(),
                &admin_email,
                platform_admin,
            )
            .await?;
            db.close().await;
            match outcome {
                BootstrapOutcome::Created {
                    tenant: id,
                    admin_user,
                    api_key,
                } => {
                    eprintln!(
                        "created tenant {tenant} ({id}) with owner {admin_email} ({admin_user}).\n\
                         API key for {admin_email}, shown only now; send it as \
                         `authorization: Bearer <key>`:"
                    );
                    println!("{}", api_key.expose());
                }
                BootstrapOutcome::AlreadyExists { tenant: id } => {
                    eprintln!(
                        "tenant {tenant} already exists ({id}); nothing changed and no new \
                         credential was issued"
                    );
                }
            }
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    tenant,
                    since_checkpoint,
                },
        } => verify_audit(&config, tenant.as_deref(), since_checkpoint).await,
        Command::Audit {
            command: AuditCommand::PublicKey,
        } => {
            let signer = audit::CheckpointSigner::from_config(&config)?;
            println!(
                "{} (key id {})",
                signer.public_key_base64(),
                signer.key_id()
            );
            Ok(())
        }
        Command::Crypto {
            command: CryptoCommand::Rotate { tenant },
        } => rotate_data_keys(&config, tenant.as_deref()).await,
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
    }
}

/// The tenant named `slug`.
async fn tenant_by_slug(db: &Database, slug: &str) -> Result<TenantId, Failure> {
    let slug = TenantSlug::parse(slug)?;
    store::tenants::find_by_slug(db, &slug)
        .await?
        .ok_or_else(|| Failure::Runtime(format!("no tenant {slug}")))
}

async fn rotate_data_keys(config: &Config, slug: Option<&str>) -> Result<(), Failure> {
    let master_key = config.crypto.master_key.as_ref().ok_or_else(|| {
        Failure::Runtime("crypto.master_key is not set (CODEXCONTINUE_CRYPTO__MASTER_KEY)".into())
    })?;
    let sealer = Sealer::new(Arc::new(LocalMasterKey::from_base64(master_key)?));
    let db = Database::connect(&config.database).await?;
    let tenants = match slug {
        Some(slug) => vec![tenant_by_slug(&db, slug).await?],
        None => {
            let mut tenants = Vec::new();
            let mut after = None;
            loop {
                let page = store::tenants::list_all(&db, after, None, 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                tenants.extend(
                    page.iter()
                        .filter(|t| t.state != "deleted")
                        .map(|t| TenantId(t.id)),
                );
            }
            tenants
        }
    };
    for tenant in tenants {
        let rotation =
            crypto::rotate_data_key(&db, &sealer, tenant, "crypto-rotate", |table, done| {
                eprintln!("{tenant}: {table}: {done} value(s) sealed again");
            })
            .await?;
        println!(
            "{tenant}: data key version {}, {} value(s) sealed again",
            rotation.version, rotation.resealed
        );
    }
    db.close().await;
    Ok(())
}

async fn verify_audit(
    config: &Config,
    slug: Option<&str>,
    since_checkpoint: bool,
) -> Result<(), Failure> {
    let signer = audit::CheckpointSigner::from_config(config)?;
    let db = Database::connect(&config.database).await?;
    let tenants = match slug {
        Some(slug) => vec![tenant_by_slug(&db, slug).await?],
        None => store::audit::audited_tenants(&db).await?,
    };
    let mut broken = 0;
    for tenant in tenants {
        let result = if since_checkpoint {
            audit::verify_since_checkpoint(&db, &signer, tenant).await?
        } else {
            audit::verify(&db, &signer, tenant).await?
        };
        match result.broken {
            None => println!(
                "{tenant}: intact, {} events, {} checkpoints",
                result.events_checked, result.checkpoints_checked
            ),
            Some((seq, problem)) => {
                broken += 1;
                println!("{tenant}: BROKEN at seq {seq}: {problem}");
            }
        }
    }
    db.close().await;
    if broken > 0 {
        return Err(Failure::Runtime(format!(
            "{broken} audit chain(s) do not verify"
        )));
    }
    Ok(())
}

fn report_migrations(applied: &[i64]) {
    if applied.is_empty() {
        eprintln!(
            "database schema is up to date (version {})",
            store::latest_migration()
        );
    } else {
        eprintln!("applied migrations {applied:?}");
    }
}

/// Registers for SIGTERM and SIGINT now (so a signal that arrives while the server is
/// still starting is not lost) and returns a future that resolves on either.
fn termination_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let registered = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        match registered {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; only Ctrl-C will stop the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
