//! The `hostplane` command and its subcommands.
//!
//! The `hostplane` command: `serve`, `migrate`, `create-admin`, `api-key`, `agent`, `mail-config`,
//! `dns-config`.
//!
//! Reads `HOSTPLANE_LOG` (a tracing filter, default `info,tokio_postgres=warn`), `HOSTPLANE_ADMIN_PASSWORD` for
//! `create-admin`, and everything [`hostplane::config`] reads.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use hostplane::config::Config;

#[derive(Parser)]
#[command(
    name = "hostplane",
    version,
    about = "Command machine of a multi-node hosting platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations and serve the API until SIGTERM or ctrl-c.
    Serve {
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Create an admin account, or reset its password and make it admin. The password comes
    /// from HOSTPLANE_ADMIN_PASSWORD or, if unset, one line of standard input.
    CreateAdmin {
        /// The admin's login.
        login: String,
        #[command(flatten)]
        config: Box<Config>,
    },
    /// Manage API keys from the command line.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Run the node agent: keep an nginx folder in step with this node's sites.
    Agent(AgentArgs),
    /// Write a mail node's configuration: Postfix pgsql maps and main.cf lines, Dovecot's SQL
    /// passdb/userdb, and reader-grants.sql (run once by a database superuser) for the role the
    /// mail servers read the views as.
    MailConfig(MailConfigArgs),
    /// Write a DNS node's PowerDNS configuration and its reader's grants.
    DnsConfig(DnsConfigArgs),
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Make a key for a user and print it: it is shown only this once.
    Create(ApiKeyCreateArgs),
}

#[derive(clap::Args)]
struct ApiKeyCreateArgs {
    /// The login of the key's owner.
    #[arg(long)]
    user: String,
    /// A name to tell the key apart.
    #[arg(long, default_value = "")]
    name: String,
    /// The actions the key may call (comma-separated; default: all its owner may).
    #[arg(long, value_delimiter = ',')]
    actions: Vec<String>,
    /// The key may only call actions that change nothing.
    #[arg(long)]
    read_only: bool,
    /// The key stops working after this long: 90d, 12h, 30m.
    #[arg(long)]
    expires: Option<String>,
    /// Networks the key may be used from (comma-separated CIDRs).
    #[arg(long, value_delimiter = ',')]
    cidr: Vec<String>,
    /// The key's requests per hour (default: HOSTPLANE_RATE_LIMIT).
    #[arg(long = "limit", id = "key_limit")]
    limit: Option<i64>,
    #[command(flatten)]
    config: Box<Config>,
}

#[derive(clap::Args)]
struct MailConfigArgs {
    /// The region whose mail this node serves.
    #[arg(long, default_value = "default")]
    region: String,
    /// Folder to write the files into (created when missing).
    #[arg(long)]
    out: std::path::PathBuf,
    /// The region's database role the mail servers log in as (default: hostplane_mail_REGION).
    #[arg(long)]
    reader: Option<String>,
    /// File holding the reader's password (created with a random one when missing).
    #[arg(long)]
    reader_password_file: std::path::PathBuf,
    /// Database host as the mail node reaches it (default: DATABASE_URL's).
    #[arg(long)]
    db_host: Option<String>,
    /// Database port as the mail node reaches it (default: DATABASE_URL's).
    #[arg(long)]
    db_port: Option<u16>,
    /// The folder holding every mailbox on the mail node.
    #[arg(long, default_value = "/var/vmail")]
    mail_root: String,
    /// The user and group id owning the mailboxes.
    #[arg(long, default_value_t = 5000)]
    mail_uid: u32,
    /// Where the Dovecot files will live on the mail node.
    #[arg(long, default_value = "/etc/dovecot/hostplane")]
    dovecot_dir: String,
    /// Postfix's queue directory on the mail node (Dovecot's LMTP and auth sockets go in private/).
    #[arg(long, default_value = "/var/spool/postfix")]
    postfix_queue: String,
    /// Certificate of the node's TLS: Postfix on 25, 465 and 587, Dovecot's IMAPS (PEM; the
    /// agent writes the node's own as TLS_DIR/NODE_NAME.pem).
    #[arg(long, default_value = "/etc/ssl/certs/ssl-cert-snakeoil.pem")]
    tls_cert: String,
    /// Key of the node's TLS (PEM; the agent writes it as TLS_DIR/NODE_NAME.key).
    #[arg(long, default_value = "/etc/ssl/private/ssl-cert-snakeoil.key")]
    tls_key: String,
    /// The group Postfix's processes run as (reads the maps).
    #[arg(long, default_value = "postfix")]
    postfix_group: String,
    /// The group Dovecot's internal processes run as (reads the SQL files).
    #[arg(long, default_value = "dovecot")]
    dovecot_group: String,
    /// The group OpenDKIM runs as (reads its tables).
    #[arg(long, default_value = "opendkim")]
    opendkim_group: String,
    /// PostgreSQL URL of hostplane's database (its schema is taken from it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: hostplane::config::Secret,
}

#[derive(clap::Args)]
struct DnsConfigArgs {
    /// Folder to write the files into (created when missing).
    #[arg(long)]
    out: std::path::PathBuf,
    /// The database role PowerDNS logs in as.
    #[arg(long, default_value = "hostplane_dns")]
    reader: String,
    /// File holding the reader's password (created with a random one when missing).
    #[arg(long)]
    reader_password_file: std::path::PathBuf,
    /// Database host as the DNS node reaches it (default: DATABASE_URL's).
    #[arg(long)]
    db_host: Option<String>,
    /// Database port as the DNS node reaches it (default: DATABASE_URL's).
    #[arg(long)]
    db_port: Option<u16>,
    /// PostgreSQL URL of hostplane's database (its schema is taken from it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: hostplane::config::Secret,
}

#[derive(clap::Args)]
struct AgentArgs {
    /// Base URL of the hostplane API, e.g. https://panel.internal:8443 (or http://).
    #[arg(long)]
    api: String,
    /// PEM file of the CA that signs the API's certificate (default: the public web roots).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// File holding the node token that add_node or rotate_node_token returned.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Folder for the generated server blocks; nginx must `include DIR/*.conf;`.
    #[arg(long)]
    nginx_dir: std::path::PathBuf,
    /// What the server blocks listen on: a port or ADDRESS:PORT.
    #[arg(long, default_value = "80")]
    listen: String,
    /// What HTTPS server blocks listen on (a port or ADDRESS:PORT), or `off`.
    #[arg(long, default_value = "443")]
    listen_tls: String,
    /// Folder for certificates and keys, written with mode 0600 (default: NGINX_DIR/hostplane-tls).
    #[arg(long)]
    tls_dir: Option<std::path::PathBuf>,
    /// Folder nginx serves ACME HTTP-01 tokens from (default: NGINX_DIR/hostplane-acme).
    #[arg(long)]
    acme_dir: Option<std::path::PathBuf>,
    /// Command that reloads nginx.
    #[arg(long, default_value = "nginx -s reload")]
    reload_cmd: String,
    /// Command that checks the configuration before a reload.
    #[arg(long, default_value = "nginx -t")]
    test_cmd: String,
    /// Where the agent remembers the revision it handled (default: NGINX_DIR/.hostplane-agent.json).
    #[arg(long)]
    state_file: Option<std::path::PathBuf>,
    /// Document roots must lie in this folder; a revision with a site elsewhere is refused and
    /// reported as an error.
    #[arg(long, default_value = "/var/www")]
    docroot_base: std::path::PathBuf,
    /// Seconds each sync request waits for a change (1-60).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=60))]
    wait: u64,
}

fn main() -> ExitCode {
    let command = Cli::command().mut_subcommands(hostplane::config::name_values_after_env);
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOSTPLANE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hostplane: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostplane: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Agent(args) => run_agent(args).await,
        Command::ApiKey {
            command: ApiKeyCommand::Create(a),
        } => {
            let registry = hostplane::registry::Registry::new(hostplane::actions::all())?;
            let ask = hostplane::actions::KeyAsk {
                name: Some(a.name),
                actions: (!a.actions.is_empty()).then_some(a.actions),
                read_only: a.read_only,
                expires: a.expires.as_deref(),
                cidrs: (!a.cidr.is_empty()).then_some(a.cidr),
                rate_limit: a.limit,
            };
            let request = hostplane::actions::KeyRequest::check(
                ask,
                a.config.rate_limit,
                // The operator may name any action a key can call, admin ones included.
                |action| hostplane::actions::grantable(&registry, action, true),
            )
            .map_err(|e| e.to_cli_text())?;
            let (key, info) =
                hostplane::actions::create_key_for(&a.config, &a.user, &request).await?;
            eprintln!(
                "API key {} ({}) for {}: shown only now, keep it safe",
                info.keyid, info.prefix, a.user
            );
            println!("{key}");
            Ok(())
        }
        Command::MailConfig(args) => mail_config(args).await,
        Command::DnsConfig(args) => dns_config(args).await,
        Command::Serve { config } => {
            let config = config.settled();
            hostplane::http::metrics::warn_if_public(&config);
            let app = hostplane::Application::build(config).await?;
            tracing::info!(listen = %app.local_addr(), "hostplane is serving POST /api");
            app.run_until(hostplane::app::shutdown_signal()).await;
            Ok(())
        }
        Command::Migrate { config } => {
            let pool = hostplane::db::create_pool(&config)?;
            let applied = hostplane::db::migrate::run(&pool).await?;
            println!(
                "applied {} migration(s): {}",
                applied.len(),
                applied.join(", ")
            );
            Ok(())
        }
        Command::CreateAdmin { login, config } => {
            let password = match std::env::var("HOSTPLANE_ADMIN_PASSWORD") {
                Ok(p) if !p.is_empty() => p,
                _ => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let userid = hostplane::actions::create_admin(&config, &login, password).await?;
            println!("admin {login} ready (userid {userid})");
            Ok(())
        }
    }
}

async fn dns_config(a: DnsConfigArgs) -> Result<(), String> {
    let db = hostplane::nodeconf::reader::reader_db(
        &a.database_url,
        &a.reader_password_file,
        a.db_host,
        a.db_port,
    )
    .await?;
    let config = hostplane::nodeconf::dns::DnsConfig {
        db_host: db.host,
        db_port: db.port,
        db_name: db.name,
        schema: db.schema,
        reader: a.reader,
        reader_password: db.password,
    };
    let written = hostplane::nodeconf::dns::write(&config, &a.out)?;
    println!("wrote {} into {}", written.join(", "), a.out.display());
    Ok(())
}

async fn mail_config(a: MailConfigArgs) -> Result<(), String> {
    let db = hostplane::nodeconf::reader::reader_db(
        &a.database_url,
        &a.reader_password_file,
        a.db_host,
        a.db_port,
    )
    .await?;
    let config = hostplane::nodeconf::mail::MailConfig {
        db_host: db.host,
        db_port: db.port,
        db_name: db.name,
        schema: db.schema,
        reader: a
            .reader
            .unwrap_or_else(|| format!("hostplane_mail_{}", a.region)),
        reader_password: db.password,
        region: a.region,
        mail_root: a.mail_root,
        mail_uid: a.mail_uid,
        dovecot_dir: a.dovecot_dir,
        postfix_queue: a.postfix_queue,
        tls_cert: a.tls_cert,
        tls_key: a.tls_key,
    };
    let groups = hostplane::nodeconf::mail::Groups {
        postfix: a.postfix_group,
        dovecot: a.dovecot_group,
        opendkim: a.opendkim_group,
    };
    let written = hostplane::nodeconf::mail::write(&config, &groups, &a.out)?;
    println!("wrote {} into {}", written.join(", "), a.out.display());
    Ok(())
}

async fn run_agent(a: AgentArgs) -> Result<(), String> {
    let token = std::fs::read_to_string(&a.token_file)
        .map_err(|e| format!("cannot read the token file {}: {e}", a.token_file.display()))?;
    let opts = hostplane::agent::AgentOptions {
        api: a.api,
        ca_file: a.ca_file,
        token: token.trim().to_string(),
        state_file: a
            .state_file
            .unwrap_or_else(|| a.nginx_dir.join(".hostplane-agent.json")),
        tls_dir: a
            .tls_dir
            .unwrap_or_else(|| a.nginx_dir.join("hostplane-tls")),
        acme_dir: a
            .acme_dir
            .unwrap_or_else(|| a.nginx_dir.join("hostplane-acme")),
        listen_tls: (a.listen_tls != "off").then_some(a.listen_tls),
        nginx_dir: a.nginx_dir,
        listen: a.listen,
        reload_cmd: a.reload_cmd,
        test_cmd: a.test_cmd,
        wait: a.wait,
        docroot_base: a.docroot_base,
    };
    hostplane::agent::run(opts, hostplane::app::shutdown_signal()).await
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
