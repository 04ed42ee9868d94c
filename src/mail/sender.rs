//! Where a message goes: one trait, three senders. SMTP (lettre) in production, a
//! folder of `.eml` files when no SMTP server is configured (the demo), and memory
//! for the tests.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lettre::message::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::MailError;
use crate::config::{Config, MailTls};

/// A message ready to go, and what the ledger knows it by.
pub struct Outgoing {
    /// The ledger row's id: a file sender names the file after it.
    pub id: String,
    pub message_id: String,
    pub recipient: String,
    pub message: Message,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Try again later: a 4xx reply (RFC 5321 §4.2.1), a connection or TLS failure, a
    /// timeout, a full disk.
    Temporary(String),
    /// Never try again: a 5xx reply (the server's words kept for the admins).
    Permanent(String),
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::Temporary(r) | SendError::Permanent(r) => r,
        }
    }
}

/// Sends one message; `Ok` only once the receiving side accepted it (the SMTP server
/// answered 250 to the end of DATA, or the file is on disk under its final name).
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError>;
    /// For the logs and the demo's start-up text.
    fn describe(&self) -> String;
}

/// The sender the configuration asks for: SMTP when `[mail] smtp_host` is set, else
/// `.eml` files.
pub fn from_config(config: &Config) -> Result<Arc<dyn Sender>, MailError> {
    let mail = &config.mail;
    let Some(host) = &mail.smtp_host else {
        return Ok(Arc::new(FileSender::new(
            mail.eml_dir(&config.database.url),
        )));
    };
    let builder = match mail.tls {
        MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        MailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host.as_str(),
        )),
    }
    .map_err(|e| MailError::Config(format!("mail.smtp_host = {host:?}: {e}")))?;
    // HELO/EHLO names the hub by its issuer's host (RFC 5321 §4.1.1.1 wants a name
    // the server can resolve; "localhost" is refused by strict servers).
    let helo = url::Url::parse(&config.issuer())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .map_or_else(
            || ClientId::Domain("localhost".into()),
            |h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => ClientId::Domain(format!("[{ip}]")),
                Err(_) => ClientId::Domain(h),
            },
        );
    let mut builder = builder
        .port(mail.port())
        .timeout(Some(mail.timeout()))
        .hello_name(helo);
    if let (Some(user), Some(pass)) = (&mail.username, &mail.password) {
        builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    Ok(Arc::new(SmtpSender {
        transport: builder.build(),
        shown: format!(
            "SMTP {host}:{} ({:?}{})",
            mail.port(),
            mail.tls,
            if mail.username.is_some() {
                ", authenticated"
            } else {
                ""
            }
        ),
    }))
}

pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    shown: String,
}

#[async_trait::async_trait]
impl Sender for SmtpSender {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        match self.transport.send(mail.message.clone()).await {
            Ok(_) => Ok(()),
            // 5xx: the server refused for good (unknown mailbox, policy); the text is
            // the server's reply ("permanent error (550): 5.1.1 …").
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

/// Writes each message as an RFC 5322 `.eml` file, named after its ledger row, so a
/// message written again after a crash replaces its own file instead of adding one.
pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    pub fn new(dir: PathBuf) -> FileSender {
        FileSender { dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

#[async_trait::async_trait]
impl Sender for FileSender {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        let temporary = |e: std::io::Error| {
            SendError::Temporary(format!("writing to {}: {e}", self.dir.display()))
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(temporary)?;
        let name: String = mail
            .id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let partial = self.dir.join(format!(".{name}.eml.partial"));
        tokio::fs::write(&partial, mail.message.formatted())
            .await
            .map_err(temporary)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(temporary)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(".eml files in {}", self.dir.display())
    }
}

/// A message as the memory sender keeps it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub id: String,
    pub message_id: String,
    pub recipient: String,
    pub raw: String,
}

/// Keeps what it is given; answers with the failures it was told to, first.
#[derive(Default, Clone)]
pub struct MemorySender {
    sent: Arc<Mutex<Vec<Captured>>>,
    failures: Arc<Mutex<std::collections::VecDeque<SendError>>>,
}

impl MemorySender {
    pub fn new() -> MemorySender {
        MemorySender::default()
    }

    /// The next send answers `error` (each call queues one more).
    pub fn fail_next(&self, error: SendError) {
        if let Ok(mut f) = self.failures.lock() {
            f.push_back(error);
        }
    }

    pub fn sent(&self) -> Vec<Captured> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Sender for MemorySender {
    async fn send(&self, mail: &Outgoing) -> Result<(), SendError> {
        if let Some(e) = self.failures.lock().ok().and_then(|mut f| f.pop_front()) {
            return Err(e);
        }
        let raw = String::from_utf8_lossy(&mail.message.formatted()).into_owned();
        if let Ok(mut s) = self.sent.lock() {
            s.push(Captured {
                id: mail.id.clone(),
                message_id: mail.message_id.clone(),
                recipient: mail.recipient.clone(),
                raw,
            });
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
