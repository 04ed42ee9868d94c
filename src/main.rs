//! The `hms-ach` command line: argument parsing only; the work is in `hms_ach::cli`.

use clap::{Args, Parser, Subcommand};
use hms_ach::cli;
use hms_ach::config::{Config, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Validate the configuration and check that the database is reachable.
    CheckConfig,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id and its secret (once).
    Create {
        #[arg(long)]
        name: String,
        /// Grant type, repeatable (client_credentials).
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// Scope, repeatable (users.read, users.write, orgs.read, …).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Role to give the client (hub-admin, registrar, compliance-officer, approver, auditor).
        #[arg(long)]
        role: Option<String>,
        /// Org (id or sourcedId) the role applies in; hub-wide when absent.
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        access_token_ttl_seconds: Option<i64>,
        #[arg(long)]
        json: bool,
    },
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
            Command::Audit(AuditCommand::Verify { json }) => cli::audit_verify(config, json).await,
            Command::Client(c) => match c {
                ClientCommand::Create {
                    name,
                    grants,
                    scopes,
                    role,
                    org,
                    access_token_ttl_seconds,
                    json,
                } => cli::client_create(
                    config,
                    cli::ClientCreateArgs {
                        name,
                        grants,
                        scopes,
                        role,
                        org,
                        access_token_ttl_seconds,
                        json,
                    },
                )
                .await
                .map(|_| true),
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
