//! Command line: `portico serve | migrate | org … | api-key …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::config::Settings;
use crate::orgs::{DomainName, ExternalId, NewOrganization, OrgName, OrgQuery};
use crate::startup::Application;
use crate::store::Store;

/// Portico: self-hosted customer admin portal with SSO and SCIM.
#[derive(Parser)]
#[command(name = "portico", version, about)]
pub struct Cli {
    /// TOML config file; `PORTICO_*` environment variables override it.
    #[arg(long, short, global = true, env = "PORTICO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (applies migrations first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage vendor API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Portal links.
    #[command(subcommand)]
    Link(LinkCommand),
    /// The event log.
    #[command(subcommand)]
    Events(EventsCommand),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events as they happen, one line each (Ctrl-C to stop).
    Tail {
        /// Comma-separated types or patterns, e.g. `sso.enabled,sso.disabled` or `directory.*`.
        #[arg(long = "type")]
        types: Option<String>,
        /// Only this organization.
        #[arg(long)]
        org: Option<String>,
        /// Start after this event id instead of now.
        #[arg(long)]
        after: Option<String>,
        /// Print each event as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LinkCommand {
    /// Create a single-use portal link and print its URL.
    Create {
        /// Organization id.
        #[arg(long)]
        org: String,
        /// `sso`, `dsync` or `domain_verification`; repeat for several.
        #[arg(long = "intent", required = true)]
        intents: Vec<String>,
        /// Lifetime in seconds (default: portal.link_ttl_secs).
        #[arg(long)]
        expires_in: Option<i64>,
        #[arg(long)]
        return_url: Option<String>,
        #[arg(long)]
        success_url: Option<String>,
        /// Also email the link to this address.
        #[arg(long)]
        email: Option<String>,
        /// Print the whole link object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a link: it no longer opens, and the session it started ends.
    Revoke {
        /// Link id (the `id` printed by `link create --json`).
        id: String,
    },
    /// End every portal session of an organization and revoke its unopened
    /// links.
    RevokeSessions {
        /// Organization id.
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        external_id: Option<String>,
        /// A domain of the organization; repeat for several.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Print the organization as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List organizations (oldest first).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create a key and print it. It is shown only this once.
    Create {
        #[arg(long)]
        name: String,
        /// Revoke existing active keys with the same name.
        #[arg(long)]
        replace: bool,
        /// Print only the key (for scripts).
        #[arg(long)]
        quiet: bool,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke { id: Uuid },
}

/// Parses arguments, runs the command, maps failure to exit code 1
/// (configuration errors to 2).
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings.log);
    match execute(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            tracing::info!(
                port = app.port(),
                public_url = %settings.public_url,
                database = ?app.store().kind(),
                "Portico listening on {}:{}", settings.listen.ip(), app.port()
            );
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Org(cmd) => {
            let store = Store::connect(&settings.database_url, 2).await?;
            let result = org(cmd, &store).await;
            store.close().await;
            result
        }
        Command::Link(LinkCommand::Create { org, intents, expires_in, return_url, success_url, email, json }) => {
            let store = Store::connect(&settings.database_url, 2).await?;
            let mailer = crate::mail::Mailer::from_settings(&settings.smtp)?;
            let request = crate::portal::LinkRequest {
                organization_id: org,
                intents,
                expires_in,
                return_url,
                success_url,
                email,
            };
            let result = crate::portal::issue_link(&store, &settings, mailer.as_ref(), &request).await;
            store.close().await;
            let link = result.map_err(|e| match e {
                crate::portal::LinkError::Invalid(errors) => anyhow::anyhow!(
                    "{}",
                    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
                ),
                other => anyhow::Error::new(other),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&link)?);
            } else {
                println!("{}", link.url);
            }
            Ok(())
        }
        Command::Link(LinkCommand::Revoke { id }) => {
            let id = Uuid::try_parse(&id).map_err(|_| anyhow::anyhow!("{id:?} is not a link id"))?;
            let store = Store::connect(&settings.database_url, 2).await?;
            let result = store.revoke_portal_link(id).await;
            store.close().await;
            match result? {
                None => anyhow::bail!("portal link {id} not found"),
                Some(r) if r.already_revoked => println!("portal link {id} was already revoked"),
                Some(r) => println!("portal link {id} revoked; {} session(s) ended", r.sessions_revoked.len()),
            }
            Ok(())
        }
        Command::Link(LinkCommand::RevokeSessions { org }) => {
            let id = Uuid::try_parse(&org).map_err(|_| anyhow::anyhow!("{org:?} is not an organization id"))?;
            let store = Store::connect(&settings.database_url, 2).await?;
            let result = store.revoke_portal_access(id).await;
            store.close().await;
            let revoked = result?.ok_or_else(|| anyhow::anyhow!("organization {id} not found"))?;
            println!(
                "{} portal session(s) ended, {} unopened link(s) revoked",
                revoked.sessions_revoked.len(),
                revoked.links_revoked.len()
            );
            Ok(())
        }
        Command::Events(EventsCommand::Tail { types, org, after, json }) => {
            let store = Store::connect(&settings.database_url, 2).await?;
            let mut filter = crate::http::api::events::parse_filter(types.as_deref(), org.as_deref())
                .map_err(|e| anyhow::anyhow!("{}", problem_text(e)))?;
            filter.after = Some(match after {
                Some(a) => Uuid::try_parse(&a).map_err(|_| anyhow::anyhow!("--after must be an event id"))?,
                None => crate::events::uuid_ceil(time::OffsetDateTime::now_utc() - crate::http::api::events::SETTLE),
            });
            let mut follow = crate::http::api::events::follow(store, filter);
            loop {
                let e = tokio::select! {
                    e = follow.next() => e,
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                };
                let out = crate::http::api::events::EventOut::from(e);
                if json {
                    println!("{}", serde_json::to_string(&out)?);
                } else {
                    let when = out.occurred_at.format(&time::format_description::well_known::Rfc3339)?;
                    let org = out.organization_id.map(|o| o.to_string()).unwrap_or_else(|| "-".into());
                    println!("{when} {:<28} org={org} id={} {}", out.kind, out.id, out.data);
                }
                use std::io::Write;
                std::io::stdout().flush()?;
            }
        }
        Command::ApiKey(cmd) => {
            let store = Store::connect(&settings.database_url, 2).await?;
            let result = api_key(cmd, &store).await;
            store.close().await;
            result
        }
    }
}

/// The human part of an API error, for CLI messages.
fn problem_text(e: crate::http::error::ApiError) -> String {
    match e {
        crate::http::error::ApiError::Validation(errors) => {
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    }
}

async fn org(cmd: OrgCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        OrgCommand::Create { name, external_id, domains, json } => {
            let name = OrgName::parse(&name).map_err(|m| anyhow::anyhow!("--name {m}"))?;
            let external_id = external_id
                .map(|e| ExternalId::parse(&e).map_err(|m| anyhow::anyhow!("--external-id {m}")))
                .transpose()?;
            let domains = domains
                .iter()
                .map(|d| DomainName::parse(d).map_err(|m| anyhow::anyhow!("--domain {m}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let org =
                store.create_org(NewOrganization { name, external_id, domains, branding: Default::default() }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&org)?);
            } else {
                println!("{}", org.id);
            }
        }
        OrgCommand::List { limit, json } => {
            let page = store.list_orgs(&OrgQuery { limit: limit.clamp(1, 100), ..Default::default() }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page.data)?);
            } else {
                println!("{:<36}  {:<24}  {:<20}  DOMAINS", "ID", "NAME", "EXTERNAL ID");
                for o in &page.data {
                    let domains: Vec<&str> = o.domains.iter().map(|d| d.domain.as_str()).collect();
                    println!(
                        "{:<36}  {:<24}  {:<20}  {}",
                        o.id,
                        o.name,
                        o.external_id.as_deref().unwrap_or("-"),
                        domains.join(",")
                    );
                }
            }
        }
    }
    Ok(())
}

async fn api_key(cmd: ApiKeyCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCommand::Create { name, replace, quiet } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let created = store.create_api_key(name, replace).await?;
            if quiet {
                println!("{}", created.key.expose_secret());
            } else {
                println!("API key {} ({}) created. Store it now: it cannot be shown again.", created.info.id, name);
                println!("{}", created.key.expose_secret());
            }
        }
        ApiKeyCommand::List => {
            println!("{:<36}  {:<24}  {:<8}  LAST USED", "ID", "NAME", "STATE");
            for k in store.list_api_keys().await? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                let last = k.last_used_at.map(|t| t.to_string()).unwrap_or_else(|| "never".into());
                println!("{:<36}  {:<24}  {:<8}  {}", k.id, k.name, state, last);
            }
        }
        ApiKeyCommand::Revoke { id } => {
            anyhow::ensure!(store.revoke_api_key(id).await?, "no active API key with id {id}");
            println!("revoked {id}");
        }
    }
    Ok(())
}
