//! `hms-ach user …` and `hms-ach keys …`.

use anyhow::{bail, Context};
use std::io::BufRead;

use crate::audit::Origin;
use crate::clock::format_rfc3339;
use crate::config::Config;

/// Reads one line from standard input (so the password is not in the shell history
/// or the process list) and sets it.
pub async fn user_set_password(
    config: Config,
    username: &str,
    must_change: bool,
) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let person = crate::directory::find_person_by_login(app.store(), username)
        .await?
        .with_context(|| format!("no person with username or email {username:?}"))?;
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "Password for {username} (input is shown; pipe it in to keep it off the screen):"
        );
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!("no password on standard input; e.g. `printf '%s' \"$PW\" | hms-ach user set-password {username}`");
    }
    crate::authn::set_password(&app, &person, password, must_change, &Origin::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "password set for {} ({})",
        person.username.as_deref().unwrap_or(username),
        person.id
    );
    Ok(())
}

/// The help desk's reset: a person who lost every second factor sets up a new one at
/// the next sign-in (with `[mfa] enroll_at_signin`). Their sessions end too.
pub async fn user_reset_mfa(config: Config, username: &str) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let person = crate::directory::find_person_by_login(app.store(), username)
        .await?
        .with_context(|| format!("no person with username or email {username:?}"))?;
    let removed = crate::authn::factors::reset(&app, &person.id, &Origin::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "second factors reset for {} ({}): {removed} removed; their sessions have ended",
        person.username.as_deref().unwrap_or(username),
        person.id
    );
    Ok(())
}

pub async fn keys_rotate(config: Config, json: bool) -> anyhow::Result<()> {
    let ahead = config.keys.publish_ahead_seconds;
    let app = super::open_app(config).await?;
    let made = crate::oidc::rotate_keys(
        app.store(),
        app.master_key(),
        app.clock().now_ms(),
        ahead,
        &Origin::cli(),
    )
    .await?;
    if json {
        let v: Vec<_> = made.iter().map(|(kid, alg, at)| serde_json::json!({ "kid": kid, "alg": alg, "activateAt": format_rfc3339(*at) })).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if made.is_empty() {
        println!("a rotation is already pending; see `hms-ach keys list`");
    } else {
        for (kid, alg, at) in &made {
            println!(
                "{alg} key {kid} published now; it signs from {}",
                format_rfc3339(*at)
            );
        }
    }
    Ok(())
}

pub async fn keys_list(config: Config, json: bool) -> anyhow::Result<()> {
    let store = super::open_store(&config).await?;
    let keys = crate::oidc::list_keys(&store).await?;
    if json {
        let v: Vec<_> = keys
            .iter()
            .map(|(kid, alg, status, created, act, drop)| serde_json::json!({ "kid": kid, "alg": alg, "status": status, "createdAt": format_rfc3339(*created), "activateAt": act.map(format_rfc3339), "dropAfter": drop.map(format_rfc3339) }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (kid, alg, status, created, act, drop) in &keys {
            let extra = match status.as_str() {
                "next" => format!("signs from {}", act.map(format_rfc3339).unwrap_or_default()),
                "retired" => format!(
                    "published until {}",
                    drop.map(format_rfc3339).unwrap_or_default()
                ),
                _ => String::new(),
            };
            println!(
                "{alg}  {status:<8} {kid}  created {}  {extra}",
                format_rfc3339(*created)
            );
        }
    }
    Ok(())
}
