//! `carapace`: the OCI runtime, `carapace do`, and the sandbox's own processes.
//!
//! One binary that re-executes itself: `carapace gofer` is the file server process,
//! `carapace do` sets up a sandbox around one command. Each subcommand lives in its own
//! module; this file only parses arguments and sets up logging.

mod cmd_confine_probe;
mod cmd_do;
mod cmd_gofer;
mod confine;
mod host;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "carapace",
    version,
    about = "A container sandbox: every syscall emulated"
)]
struct Cli {
    /// Write logs to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<std::path::PathBuf>,
    /// Log at debug level.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one command in a fresh sandbox whose root is the host's `/`, read-only.
    Do(cmd_do::DoArgs),
    /// (internal) Serve a directory tree to a sentry over an inherited socket.
    #[command(hide = true)]
    Gofer(cmd_gofer::GoferArgs),
    /// (internal) Confine this process as a sentry or gofer, then try a forbidden thing.
    #[command(hide = true)]
    ConfineProbe(cmd_confine_probe::ProbeArgs),
}

fn init_logging(file: Option<&std::path::Path>, debug: bool) -> anyhow::Result<()> {
    let level = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARAPACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_file = match &cli.command {
        Command::Do(a) => a.debug_log.clone().or(cli.log.clone()),
        Command::Gofer(_) | Command::ConfineProbe(_) => cli.log.clone(),
    };
    let debug = cli.debug || matches!(&cli.command, Command::Do(a) if a.debug_log.is_some());
    if let Err(e) = init_logging(log_file.as_deref(), debug) {
        eprintln!("carapace: {e:#}");
        return ExitCode::from(125);
    }
    let result = match cli.command {
        Command::Do(args) => cmd_do::run(args),
        Command::Gofer(args) => cmd_gofer::run(args),
        Command::ConfineProbe(args) => cmd_confine_probe::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("carapace: {e:#}");
            ExitCode::from(125)
        }
    }
}
