//! `hms-ach email …`: what the emails look like, without a database or a server.

use anyhow::bail;

use crate::config::Config;
use crate::mail::Template;

/// Which part of the message to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewPart {
    Html,
    Text,
    /// Subject, then the plain text, then the HTML.
    Both,
}

/// Prints `template` rendered with sample data and the configured district's
/// branding; `None` (or `--list`) lists the templates.
pub fn email_preview(
    config: &Config,
    template: Option<&str>,
    part: PreviewPart,
) -> anyhow::Result<()> {
    let Some(name) = template else {
        for t in Template::ALL {
            println!("{}", t.name());
        }
        return Ok(());
    };
    let rendered = match crate::mail::preview(config, name) {
        Ok(r) => r,
        Err(e) => bail!("{e}"),
    };
    match part {
        PreviewPart::Html => print!("{}", rendered.html),
        PreviewPart::Text => print!("{}", rendered.text),
        PreviewPart::Both => {
            println!("Subject: {}\n", rendered.subject);
            println!("----- text/plain -----\n{}", rendered.text);
            println!("----- text/html -----\n{}", rendered.html);
        }
    }
    Ok(())
}
