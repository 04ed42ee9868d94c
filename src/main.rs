//! The `hms-ach` command line: argument parsing only; the work is in `hms_ach::cli`.

use clap::{Args, Parser, Subcommand};
use hms_ach::cli;
use hms_ach::config::{Config, Overrides};
use hms_ach::outbox::SubscriberState;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hms-ach",
    version,
    about = "HMS-ACH: the Access & Credentials Hub"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Configuration file (TOML). Environment variables HMS_ACH__SECTION__KEY override it.
    #[arg(long, global = true, env = "HMS_ACH_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST:PORT/DB
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (creates and migrates the database on first start).
    Serve {
        #[arg(long)]
        bind: Option<String>,
        #[arg(long)]
        issuer: Option<String>,
        /// Seed a demo district and print an admin API client.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Local accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Scheduled jobs: their schedules and history, or one run now.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Validate the configuration and check that the database is reachable.
    CheckConfig,
    /// The outbox: subscribers, replay, dead letters, retention.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The emails the hub sends.
    #[command(subcommand)]
    Email(EmailCommand),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Every subscriber with its state and backlog.
    Subscribers {
        #[arg(long)]
        json: bool,
    },
    /// Send a subscriber every event again from a position (see /api/v1/events).
    Replay {
        subscriber: String,
        #[arg(long = "from")]
        from: i64,
    },
    /// Stop sending to a subscriber; events wait.
    Pause { subscriber: String },
    /// Send again (also enables one the hub disabled after repeated failures).
    Resume { subscriber: String },
    /// A subscriber's dead letters.
    DeadLetters {
        subscriber: String,
        #[arg(long)]
        json: bool,
    },
    /// Try dead letters again: the given positions, or all.
    Requeue {
        subscriber: String,
        #[arg(long = "seq")]
        sequences: Vec<i64>,
    },
    /// Delete events past [outbox] retention that every active subscriber has.
    Sweep,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Each job's schedule, time zone, next run and last run.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run a job now in this process; exits non-zero when the run fails.
    Run {
        /// The job's name, e.g. signin-sweep (see `jobs list`).
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EmailCommand {
    /// Render an email template with sample data to standard output.
    Preview {
        /// The template (see --list).
        template: Option<String>,
        /// List the templates.
        #[arg(long, conflicts_with_all = ["template", "html", "text"])]
        list: bool,
        /// Only the HTML part.
        #[arg(long, conflicts_with = "text")]
        html: bool,
        /// Only the plain-text part.
        #[arg(long)]
        text: bool,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and its secret (once).
    Create(Box<cli::ClientCreateArgs>),
    List {
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret; the old one stops working.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        client_id: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Set a person's password, read from standard input (one line).
    SetPassword {
        /// Username or email address.
        username: String,
        /// Make the person choose a new password at the next sign-in.
        #[arg(long)]
        must_change: bool,
    },
    /// Remove a person's passkeys, authenticator app and recovery codes (lost device).
    ResetMfa {
        /// Username or email address.
        username: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start a rotation: new keys are published now and sign after keys.publish_ahead_seconds.
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// The signing keys and their state (next, active, retired).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits 1 and names the rows when it was tampered with.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (bind, issuer) = match &cli.command {
        Command::Serve { bind, issuer, .. } => (bind.clone(), issuer.clone()),
        _ => (None, None),
    };
    let overrides = Overrides {
        bind,
        issuer,
        database_url: cli.common.database_url.clone(),
    };
    let config = match Config::load(cli.common.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    cli::init_logging(&config, if serving { "" } else { "warn" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { demo, .. } => cli::serve(config, demo).await.map(|_| true),
            Command::Migrate => cli::migrate(config).await.map(|_| true),
            Command::CheckConfig => cli::check_config(config).await.map(|_| true),
            Command::Email(EmailCommand::Preview {
                template,
                list,
                html,
                text,
            }) => {
                let part = match (html, text) {
                    (true, _) => cli::PreviewPart::Html,
                    (_, true) => cli::PreviewPart::Text,
                    _ => cli::PreviewPart::Both,
                };
                if !list && template.is_none() {
                    Err(anyhow::anyhow!(
                        "name a template, or --list; the templates are: {}",
                        hms_ach::mail::Template::names()
                    ))
                } else {
                    cli::email_preview(&config, template.as_deref(), part).map(|_| true)
                }
            }
            Command::Audit(AuditCommand::Verify { json }) => cli::audit_verify(config, json).await,
            Command::User(UserCommand::SetPassword {
                username,
                must_change,
            }) => cli::user_set_password(config, &username, must_change)
                .await
                .map(|_| true),
            Command::User(UserCommand::ResetMfa { username }) => {
                cli::user_reset_mfa(config, &username).await.map(|_| true)
            }
            Command::Keys(KeysCommand::Rotate { json }) => {
                cli::keys_rotate(config, json).await.map(|_| true)
            }
            Command::Keys(KeysCommand::List { json }) => {
                cli::keys_list(config, json).await.map(|_| true)
            }
            Command::Events(e) => match e {
                EventsCommand::Subscribers { json } => cli::events::subscribers(config, json).await,
                EventsCommand::Replay { subscriber, from } => {
                    cli::events::replay(config, &subscriber, from).await
                }
                EventsCommand::Pause { subscriber } => {
                    cli::events::set_state(config, &subscriber, SubscriberState::Paused).await
                }
                EventsCommand::Resume { subscriber } => {
                    cli::events::set_state(config, &subscriber, SubscriberState::Active).await
                }
                EventsCommand::DeadLetters { subscriber, json } => {
                    cli::events::dead_letters(config, &subscriber, json).await
                }
                EventsCommand::Requeue {
                    subscriber,
                    sequences,
                } => cli::events::requeue(config, &subscriber, &sequences).await,
                EventsCommand::Sweep => cli::events::sweep(config).await,
            }
            .map(|_| true),
            Command::Jobs(JobsCommand::List { json }) => {
                cli::jobs_list(config, json).await.map(|_| true)
            }
            Command::Jobs(JobsCommand::Run { name, json }) => {
                cli::jobs_run(config, &name, json).await
            }
            Command::Client(c) => match c {
                ClientCommand::Create(args) => {
                    cli::client_create(config, *args).await.map(|_| true)
                }
                ClientCommand::List { json } => cli::client_list(config, json).await.map(|_| true),
                ClientCommand::RotateSecret { client_id, json } => {
                    cli::client_rotate(config, &client_id, json)
                        .await
                        .map(|_| true)
                }
                ClientCommand::Delete { client_id } => {
                    cli::client_delete(config, &client_id).await.map(|_| true)
                }
            },
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
