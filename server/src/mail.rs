//! Outgoing email over SMTP (portal links to IT admins).

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use crate::config::{SmtpSettings, SmtpTls};

/// A configured SMTP sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// What a portal-link email says.
pub struct PortalLinkEmail<'a> {
    pub to: &'a str,
    pub vendor_name: &'a str,
    pub organization_name: &'a str,
    pub url: &'a str,
    pub expires_at: OffsetDateTime,
}

impl Mailer {
    /// Builds a mailer, or `None` when `smtp.host` is not set.
    pub fn from_settings(settings: &SmtpSettings) -> anyhow::Result<Option<Self>> {
        let Some(host) = settings.host.as_deref() else {
            return Ok(None);
        };
        let builder = match settings.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .with_context(|| format!("invalid smtp.host {host:?}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .with_context(|| format!("invalid smtp.host {host:?}"))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(Duration::from_secs(settings.timeout_secs)));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        let from: Mailbox =
            settings.from.parse().with_context(|| format!("invalid smtp.from address {:?}", settings.from))?;
        Ok(Some(Self { transport: builder.build(), from }))
    }

    /// Sends the portal link as text + HTML.
    #[tracing::instrument(skip_all)]
    pub async fn send_portal_link(&self, mail: &PortalLinkEmail<'_>) -> anyhow::Result<()> {
        let to: Mailbox = mail.to.parse().context("invalid recipient address")?;
        let expires = mail
            .expires_at
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_else(|_| mail.expires_at.to_string());
        let subject = format!("Set up {} for {}", mail.vendor_name, mail.organization_name);
        let text = format!(
            "Hello,\n\n{vendor} invites you to configure single sign-on, user provisioning or domain \
             verification for {org}.\n\nOpen this link to start (it works once and expires {expires}):\n\n{url}\n\n\
             If you did not expect this email, you can ignore it.\n\n-- {vendor}\n",
            vendor = mail.vendor_name,
            org = mail.organization_name,
            url = mail.url,
        );
        let html = format!(
            "<!DOCTYPE html><html><body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#1b1f2a\">\
             <p>Hello,</p><p><strong>{vendor}</strong> invites you to configure single sign-on, user provisioning \
             or domain verification for <strong>{org}</strong>.</p>\
             <p><a href=\"{url}\" style=\"display:inline-block;padding:10px 18px;background:#3047d6;color:#fff;\
             border-radius:6px;text-decoration:none\">Open the admin portal</a></p>\
             <p style=\"color:#555d70\">The link works once and expires {expires}.</p>\
             <p style=\"color:#555d70\">If you did not expect this email, you can ignore it.</p></body></html>",
            vendor = html_escape(mail.vendor_name),
            org = html_escape(mail.organization_name),
            url = html_escape(mail.url),
            expires = html_escape(&expires),
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .context("Failed to build the email")?;
        self.transport.send(message).await.context("SMTP delivery failed")?;
        Ok(())
    }
}

/// Minimal HTML escaping for text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
