//! `carapace`: the OCI runtime, `carapace do`, and the sandbox's own processes.
//!
//! One binary that re-executes itself: `create`/`start`/`state`/`kill`/`delete`/`run`…
//! keep runc's command line (parsed by `liboci-cli`), `carapace boot` is the sandbox
//! process (the sentry), `carapace gofer` the file server, `carapace do` sets up a
//! sandbox around one command. Each subcommand lives in its own module; this file only
//! parses arguments and sets up logging.

mod bundle;
mod cgroups;
mod cmd_boot;
mod cmd_confine_probe;
mod cmd_create;
mod cmd_do;
mod cmd_exec;
mod cmd_gofer;
mod cmd_ops;
mod cmd_spec;
mod cmd_subcontainer;
mod confine;
mod console;
mod container;
mod hooks;
mod host;
mod json_log;
mod netsetup;
mod security;
mod spec_extras;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "carapace",
    version,
    about = "A container sandbox: every syscall emulated"
)]
struct Cli {
    #[command(flatten)]
    global: liboci_cli::GlobalOpts,
    /// The platform that runs application code.
    #[arg(long, env = "CARAPACE_PLATFORM", default_value = "systrap", value_parser = ["ptrace", "systrap"])]
    platform: String,
    /// systrap: rewrite hot syscall sites so that they stop trapping (`on`, `off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    systrap_patch: String,
    /// How a writable container root takes writes: `memory` (an overlay in sandbox
    /// memory; the bundle's rootfs never changes) or `none` (written through the gofer).
    #[arg(long, value_enum, default_value = "memory")]
    overlay: Overlay,
    /// Print every syscall the container makes (to the container's stderr).
    #[arg(long)]
    strace: bool,
    /// Where the container's TCP/IP sockets live: `sandbox` (the sentry's stack on the
    /// interface of the container's network namespace, which it takes over), `none`
    /// (loopback only) or `host` (host sockets in that namespace). Default: `sandbox`
    /// when the spec names a network namespace with an interface, else `none`.
    #[arg(long, value_enum)]
    network: Option<netsetup::Network>,
    /// Write the sandbox's debug log to this file (implies --debug).
    #[arg(long)]
    debug_log: Option<PathBuf>,
    /// (internal) The cgroup `boot` and `gofer` move into before anything else.
    #[arg(long, hide = true)]
    cgroup: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Overlay {
    Memory,
    None,
}

#[derive(Subcommand)]
enum Command {
    Create(liboci_cli::Create),
    Start(liboci_cli::Start),
    State(liboci_cli::State),
    Kill(liboci_cli::Kill),
    Delete(liboci_cli::Delete),
    Run(liboci_cli::Run),
    Exec(liboci_cli::Exec),
    List(liboci_cli::List),
    #[command(allow_hyphen_values = true)]
    Ps(liboci_cli::Ps),
    Spec(liboci_cli::Spec),
    Features(liboci_cli::Features),
    /// Show the container's resource usage (`--stats`: once; else every `--interval`).
    Events(liboci_cli::Events),
    /// Freeze the container's processes.
    Pause(liboci_cli::Pause),
    /// Thaw a paused container.
    Resume(liboci_cli::Resume),
    /// Change a live container's resource limits.
    Update(liboci_cli::Update),
    /// Wait for the container's init to exit and print its status.
    Wait(cmd_ops::WaitArgs),
    /// Run one command in a fresh sandbox whose root is the host's `/`, read-only.
    Do(cmd_do::DoArgs),
    /// (internal) Serve a directory tree to a sentry over an inherited socket.
    #[command(hide = true)]
    Gofer(cmd_gofer::GoferArgs),
    /// (internal) Confine this process as a sentry or gofer, then try a forbidden thing.
    #[command(hide = true)]
    ConfineProbe(cmd_confine_probe::ProbeArgs),
    /// (internal) The sandbox process of a container: the sentry.
    #[command(hide = true)]
    Boot(cmd_boot::BootArgs),
    /// (internal) Stand in for a pod's app container: exit as its init does.
    #[command(hide = true)]
    ContainerWait(cmd_subcontainer::WaitArgs),
}

/// What the OCI commands need from the global flags.
pub struct RuntimeOpts {
    pub root: PathBuf,
    pub overlay: Overlay,
    pub strace: bool,
    pub platform: String,
    pub network: Option<netsetup::Network>,
    pub systrap_patch: bool,
    log: Option<PathBuf>,
    log_format: LogFormat,
    debug: bool,
}

impl RuntimeOpts {
    /// Give a child carapace process (gofer, boot) the same logging flags.
    pub fn pass_logging(&self, cmd: &mut std::process::Command) {
        if let Some(l) = &self.log {
            cmd.arg("--log").arg(l);
        }
        if self.log_format == LogFormat::Json {
            cmd.arg("--log-format").arg("json");
        }
        if self.debug {
            cmd.arg("--debug");
        }
    }

    /// Give `boot` the sandbox's flags.
    pub fn pass_runtime(&self, cmd: &mut std::process::Command) {
        cmd.arg("--platform").arg(&self.platform);
        cmd.arg("--systrap-patch")
            .arg(if self.systrap_patch { "on" } else { "off" });
        cmd.arg("--overlay").arg(match self.overlay {
            Overlay::Memory => "memory",
            Overlay::None => "none",
        });
        if self.strace {
            cmd.arg("--strace");
        }
        if let Some(n) = self.network {
            cmd.arg("--network").arg(n.name());
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(
    file: Option<&std::path::Path>,
    debug: bool,
    format: LogFormat,
) -> anyhow::Result<()> {
    let level = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CARAPACE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let writer: Box<dyn Fn() -> Box<dyn std::io::Write> + Send + Sync> = match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            let f = std::sync::Arc::new(f);
            Box::new(move || Box::new(LogFile(f.clone())) as Box<dyn std::io::Write>)
        }
        None => Box::new(|| Box::new(std::io::stderr()) as Box<dyn std::io::Write>),
    };
    let ansi = file.is_none();
    match format {
        LogFormat::Text => builder.with_ansi(ansi).with_writer(writer).init(),
        LogFormat::Json => builder
            .event_format(json_log::RuncJson)
            .with_writer(writer)
            .init(),
    }
    Ok(())
}

/// A shared log file; each event is one `write` on an `O_APPEND` file.
struct LogFile(std::sync::Arc<std::fs::File>);

impl std::io::Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = &cli.global;
    let log_format = match g.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            eprintln!("carapace: --log-format {other:?}: expected text or json");
            return ExitCode::from(1);
        }
    };
    let log_file = match &cli.command {
        Command::Do(a) => a.debug_log.clone().or(g.log.clone()),
        _ => cli.debug_log.clone().or(g.log.clone()),
    };
    let debug = g.debug
        || cli.debug_log.is_some()
        || matches!(&cli.command, Command::Do(a) if a.debug_log.is_some());
    if let Err(e) = init_logging(log_file.as_deref(), debug, log_format) {
        eprintln!("carapace: {e:#}");
        return ExitCode::from(125);
    }
    if g.systemd_cgroup {
        return fail(
            anyhow::anyhow!("--systemd-cgroup: the systemd cgroup manager is not supported"),
            1,
        );
    }
    // Absolute, because the sandbox's processes run in `/`.
    let root = g
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/run/carapace"));
    let root = match std::path::absolute(&root) {
        Ok(r) => r,
        Err(e) => return fail(anyhow::anyhow!("--root {}: {e}", root.display()), 1),
    };
    let opts = RuntimeOpts {
        root,
        overlay: cli.overlay,
        strace: cli.strace,
        platform: cli.platform.clone(),
        network: cli.network,
        systrap_patch: cli.systrap_patch == "on",
        log: log_file
            .as_deref()
            .and_then(|l| std::path::absolute(l).ok()),
        log_format,
        debug,
    };
    // `do` keeps its shell-like status for its own failures; the OCI commands exit 1 as
    // runc does.
    // The sandbox's own processes enter the container's cgroup before they start anything
    // (the sentry forks its stubs there).
    if let (Some(path), Command::Boot(_) | Command::Gofer(_) | Command::ContainerWait(_)) =
        (&cli.cgroup, &cli.command)
    {
        let joined = cgroups::Cgroup::for_container("", std::path::Path::new("/"), Some(path))
            .and_then(|c| c.join());
        if let Err(e) = joined {
            return fail(e, 1);
        }
    }
    let (result, error_code) = match cli.command {
        Command::Do(args) => (cmd_do::run(args), 125),
        Command::Gofer(args) => (cmd_gofer::run(args), 125),
        Command::ConfineProbe(args) => (cmd_confine_probe::run(args), 125),
        Command::Boot(args) => (cmd_boot::run(args, &opts), 1),
        Command::Create(args) => (cmd_create::create(args, &opts), 1),
        Command::Run(args) => (cmd_create::run(args, &opts), 1),
        Command::Exec(args) => (cmd_exec::exec(args, &opts), 1),
        Command::Start(args) => (cmd_ops::start(args, &opts), 1),
        Command::State(args) => (cmd_ops::state(args, &opts), 1),
        Command::Kill(args) => (cmd_ops::kill(args, &opts), 1),
        Command::Delete(args) => (cmd_ops::delete(args, &opts), 1),
        Command::List(args) => (cmd_ops::list(args, &opts), 1),
        Command::Ps(args) => (cmd_ops::ps(args, &opts), 1),
        Command::Wait(args) => (cmd_ops::wait(args, &opts), 1),
        Command::Spec(args) => (cmd_spec::spec(args), 1),
        Command::Features(_) => (cmd_spec::features(), 1),
        Command::Events(args) => (cmd_ops::events(args, &opts), 1),
        Command::Pause(args) => (cmd_ops::pause(args, &opts), 1),
        Command::Resume(args) => (cmd_ops::resume(args, &opts), 1),
        Command::Update(args) => (cmd_ops::update(args, &opts), 1),
        Command::ContainerWait(args) => (cmd_subcontainer::wait(args), 1),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // containerd reads a failed runtime's error from the log file.
            if log_file.is_some() {
                tracing::error!("{e:#}");
            }
            fail(e, error_code)
        }
    }
}

/// Report `e` on stderr.
fn fail(e: anyhow::Error, code: u8) -> ExitCode {
    eprintln!("carapace: {e:#}");
    ExitCode::from(code)
}
