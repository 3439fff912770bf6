//! The `hostplane` command: `serve`, `migrate`, `create-admin`.
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
    /// Run the node agent: keep an nginx folder in step with this node's sites.
    Agent(AgentArgs),
}

#[derive(clap::Args)]
struct AgentArgs {
    /// Base URL of the hostplane API, e.g. http://10.0.0.1:8080.
    #[arg(long)]
    api: String,
    /// File holding the node token that add_node or rotate_node_token returned.
    #[arg(long)]
    token_file: std::path::PathBuf,
    /// Folder for the generated server blocks; nginx must `include DIR/*.conf;`.
    #[arg(long)]
    nginx_dir: std::path::PathBuf,
    /// What the server blocks listen on: a port or ADDRESS:PORT.
    #[arg(long, default_value = "80")]
    listen: String,
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
        Command::Serve { config } => {
            let app = hostplane::Application::build(*config).await?;
            tracing::info!(listen = %app.local_addr(), "hostplane is serving POST /api");
            app.run_until(shutdown_signal()).await;
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

async fn run_agent(a: AgentArgs) -> Result<(), String> {
    let token = std::fs::read_to_string(&a.token_file)
        .map_err(|e| format!("cannot read the token file {}: {e}", a.token_file.display()))?;
    let opts = hostplane::agent::AgentOptions {
        api: a.api,
        token: token.trim().to_string(),
        state_file: a
            .state_file
            .unwrap_or_else(|| a.nginx_dir.join(".hostplane-agent.json")),
        nginx_dir: a.nginx_dir,
        listen: a.listen,
        reload_cmd: a.reload_cmd,
        test_cmd: a.test_cmd,
        wait: a.wait,
        docroot_base: a.docroot_base,
    };
    hostplane::agent::run(opts, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
