//! `carapace do CMD…`: one command in a fresh sandbox whose root is the host's `/`,
//! served read-only by a gofer under an in-memory overlay (`--overlay=memory`, the
//! default; `--overlay=none` leaves it read-only), with a tmpfs at /tmp and the dev files.
//! The zero-setup way to try Carapace.

use anyhow::Context;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::SetArg;
use nix::unistd::{ForkResult, Pid};
use sentry::boot::{BootError, SandboxConfig};
use sentry::net::inet::packet::LinkDesc;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

#[derive(clap::Args)]
pub struct DoArgs {
    /// The platform that runs application code: `systrap` (seccomp traps handed to the
    /// sentry through shared memory; the default) or `ptrace` (the correctness baseline).
    #[arg(long, env = "CARAPACE_PLATFORM", default_value = "systrap", value_parser = ["ptrace", "systrap"])]
    platform: String,
    /// systrap: rewrite hot syscall sites so that they stop trapping (`on`, `off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    systrap_patch: String,
    /// Print every syscall the application makes, with decoded arguments and results.
    #[arg(long)]
    strace: bool,
    /// Write the sandbox's debug log to this file.
    #[arg(long)]
    pub debug_log: Option<std::path::PathBuf>,
    /// Working directory inside the sandbox (default: the current one).
    #[arg(long)]
    cwd: Option<std::path::PathBuf>,
    /// Set an environment variable inside the sandbox (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// How the root takes writes: `memory` (an overlay in sandbox memory; the host never
    /// changes) or `none` (the host root, read-only).
    #[arg(long, default_value = "memory", value_parser = ["memory", "none"])]
    overlay: String,
    /// Run the command on a pseudo-terminal of the sandbox (its controlling terminal,
    /// with the sandbox's own line discipline and job control), bridged to the terminal
    /// on standard input, which then carries the command's output too.
    #[arg(long)]
    tty: bool,
    /// Where the sandbox's TCP/IP sockets live: `none` (the sentry's own stack, loopback
    /// only), `sandbox` (the sentry's stack on this network namespace's interface, which
    /// it takes over until the command ends: its addresses leave the host) or `host`
    /// (host sockets held by the sentry, in this network namespace).
    #[arg(long, default_value = "none", value_parser = ["none", "sandbox", "host"])]
    network: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<std::ffi::OsString>,
}

/// Exit statuses as shells use them for a command that cannot run.
const EXIT_NOT_FOUND: u8 = 127;
const EXIT_CANNOT_EXECUTE: u8 = 126;

pub fn run(args: DoArgs) -> anyhow::Result<u8> {
    let mut envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect();
    for kv in &args.env {
        let Some((k, _)) = kv.split_once('=') else {
            anyhow::bail!("--env {kv:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            anyhow::bail!("--env {kv:?}: empty variable name");
        }
        let prefix = format!("{k}=");
        envp.retain(|e| !e.starts_with(prefix.as_bytes()));
        envp.push(kv.as_bytes().to_vec());
    }
    let cwd = match &args.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let argv: Vec<Vec<u8>> = args.command.iter().map(|a| a.as_bytes().to_vec()).collect();

    if args.tty && !nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        anyhow::bail!("--tty: standard input is not a terminal");
    }
    // Before any descriptor of this command is opened: the forked gofer inherits them.
    let (gofer, sentry_end) = spawn_gofer()?;
    let console = if args.tty {
        Some(crate::host::dup_stdio(0)?)
    } else {
        None
    };
    let saved_termios = if args.tty {
        nix::sys::termios::tcgetattr(std::io::stdin()).ok()
    } else {
        None
    };
    let stdio = [
        crate::host::dup_stdio(0)?,
        crate::host::dup_stdio(1)?,
        crate::host::dup_stdio(2)?,
    ];
    let mut cfg = SandboxConfig::new(sentry_end, stdio, argv);
    cfg.strace = args.strace;
    cfg.envp = envp;
    cfg.cwd = cwd.as_os_str().as_bytes().to_vec();
    cfg.uid = nix::unistd::getuid().as_raw();
    cfg.gid = nix::unistd::getgid().as_raw();
    // `do` never lets the sandbox write to the host: without the overlay the root stays
    // read-only (the gofer is started with --read-only either way).
    cfg.overlay = if args.overlay == "none" {
        sentry::fs::RootOverlay::None
    } else {
        sentry::fs::RootOverlay::Memory
    };
    cfg.console = console;
    cfg.network = match args.network.as_str() {
        "host" => sentry::net::NetworkMode::Host,
        "sandbox" => sentry::net::NetworkMode::Sandbox,
        _ => sentry::net::NetworkMode::None,
    };
    let taken = if cfg.network == sentry::net::NetworkMode::Sandbox {
        match crate::netsetup::take_over() {
            Ok(t) => Some(t),
            Err(e) => {
                stop_gofer(gofer);
                return Err(e);
            }
        }
    } else {
        None
    };
    cfg.platform = sentry::platform::Kind::from_name(&args.platform).unwrap_or_default();
    cfg.systrap_patch = args.systrap_patch == "on";
    // The sentry runs as pid 1 of a new pid namespace, in a child of this process that
    // confines itself first; this process only waits for it and passes its status on.
    sentry::boot::read_host_facts();
    let (link, removed) = match taken {
        Some(t) => (Some((t.fd, t.desc)), Some(t.removed)),
        None => (None, None),
    };
    let sentry = match crate::confine::fork_into_pid_namespace() {
        Ok(Some(pid)) => {
            // Its copies of the gofer socket, stdio and packet socket belong to the
            // sentry now.
            drop(cfg);
            drop(link);
            // From here this process only waits.
            crate::host::trim_heap();
            if removed.is_some() {
                crate::netsetup::wait_ending_sentry_on_signal(pid);
            }
            pid
        }
        Ok(None) => sentry_main(cfg, link),
        Err(e) => {
            stop_gofer(gofer);
            if let Some(r) = &removed {
                r.restore();
            }
            return Err(e);
        }
    };
    let status = wait_sentry(sentry);
    // The namespace outlives the sandbox: the interface gets its addresses back.
    if let Some(r) = &removed {
        r.restore();
    }
    if let Some(t) = &saved_termios {
        // The sentry gives the terminal its settings back itself; this is for when it
        // could not (killed), so the user's shell is not left in raw mode.
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, t);
    }
    // The sandbox is over: the gofer has nothing left to serve.
    stop_gofer(gofer);
    status
}

/// The sentry's side of the fork: confine, run the sandbox, exit with its status.
fn sentry_main(cfg: SandboxConfig, link: Option<(OwnedFd, LinkDesc)>) -> ! {
    let host_network = cfg.network == sentry::net::NetworkMode::Host;
    let confined = crate::confine::sentry(crate::confine::seccomp::Mode::from_env(), host_network)
        .and_then(|()| match link {
            Some((fd, desc)) => sentry::net::inet::packet::attach(fd, desc)
                .map_err(|e| anyhow::anyhow!("--network=sandbox: {e}")),
            None => Ok(()),
        });
    let code = match confined {
        Ok(()) => match report(sentry::boot::prepare(cfg).map(|sandbox| {
            // Booting (the seccomp filter's build, the loader's buffers) leaves freed
            // heap behind that the sentry would otherwise keep while it runs.
            crate::host::trim_heap();
            sandbox.run()
        })) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("carapace: {e:#}");
                125
            }
        },
        Err(e) => {
            eprintln!("carapace: confining the sentry: {e:#}");
            125
        }
    };
    std::process::exit(i32::from(code))
}

/// Wait for the sentry and turn its end into this command's exit status.
fn wait_sentry(pid: nix::unistd::Pid) -> anyhow::Result<u8> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code as u8),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                let why = if sig == nix::sys::signal::Signal::SIGSYS {
                    " (a host system call outside its seccomp allow-list)"
                } else {
                    ""
                };
                anyhow::bail!("the sentry was killed by {sig}{why}");
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow::anyhow!("waiting for the sentry: {e}")),
        }
    }
}

fn report(result: Result<sentry::kernel::ExitStatus, BootError>) -> anyhow::Result<u8> {
    match result {
        Ok(status) => Ok(status.shell_code() as u8),
        Err(BootError::NotFound(cmd)) => {
            eprintln!("carapace: {cmd}: command not found");
            Ok(EXIT_NOT_FOUND)
        }
        Err(BootError::CannotExecute(cmd, e)) => {
            eprintln!("carapace: {cmd}: cannot execute: {e}");
            Ok(EXIT_CANNOT_EXECUTE)
        }
        Err(BootError::Setup(e)) => Err(anyhow::anyhow!("sandbox setup failed: {e}")),
    }
}

/// Start the gofer serving the host root read-only; returns its pid and the sentry's end
/// of the socketpair.
///
/// The gofer is a fork of this process rather than a fresh `carapace gofer`: a new exec
/// of this (position-independent) binary dirties its own ~440 KiB of relocated read-only
/// data and builds its own heap, while a fork shares them with this process and the
/// sentry (another fork of it) until written. That is safe because `do` is
/// single-threaded here (it starts no thread before `fork_into_pid_namespace`, which
/// relies on the same): the child inherits no lock held by another thread. What an exec
/// would have dropped, the child drops itself: the sentry's end of the socket (or it would
/// never see the sentry hang up), standard input (`/dev/null`, as before). It keeps
/// stdout, stderr and the log. Confinement is the same code as `carapace gofer`'s
/// ([`crate::cmd_gofer::serve`]). The trade-off: the gofer shares the address-space
/// layout (binary, libc, heap, stack) of this process and the sentry instead of getting
/// its own randomisation from an exec.
fn spawn_gofer() -> anyhow::Result<(Pid, OwnedFd)> {
    let (sentry_end, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair for the gofer")?;
    match crate::host::fork().context("cannot start the gofer")? {
        ForkResult::Parent { child } => {
            drop(gofer_end);
            Ok((child, sentry_end))
        }
        ForkResult::Child => {
            drop(sentry_end);
            // Whatever happens (a panic included), the child ends here and never returns
            // into `run`, which is the parent's.
            let code = match std::panic::catch_unwind(move || gofer_main(gofer_end)) {
                Ok(Ok(code)) => code,
                Ok(Err(e)) => {
                    eprintln!("carapace: {e:#}");
                    125
                }
                Err(_) => 125,
            };
            std::process::exit(i32::from(code))
        }
    }
}

/// The gofer's side of the fork.
fn gofer_main(sock: OwnedFd) -> anyhow::Result<u8> {
    // What `ps`, `top` and `pgrep` show (the command line stays the `do` one).
    let _ = nix::sys::prctl::set_name(GOFER_NAME);
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("gofer: opening /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("gofer: standard input")?;
    drop(null);
    crate::cmd_gofer::serve(std::path::Path::new("/"), sock, true, None)
}

/// The gofer's process name (`/proc/PID/comm`).
const GOFER_NAME: &std::ffi::CStr = c"carapace-gofer";

fn stop_gofer(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    loop {
        match nix::sys::wait::waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}
