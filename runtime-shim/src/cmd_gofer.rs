//! `carapace gofer`: the file server. Started by `do` (and later `create`) with one end of
//! a socketpair; serves the tree at `--root` until the sentry hangs up.

use anyhow::Context;

#[derive(clap::Args)]
pub struct GoferArgs {
    /// The directory tree to serve.
    #[arg(long)]
    root: std::path::PathBuf,
    /// The inherited socket to serve on.
    #[arg(long)]
    sock_fd: i32,
    /// Refuse every operation that would change the tree (the root tree, when staged).
    #[arg(long)]
    read_only: bool,
    /// Serve a staged root: `/root` is the tree of `--root`, and `/m0`, `/m1`… the
    /// `--bind` sources in order (for a container's bind mounts).
    #[arg(long)]
    staged: bool,
    /// A bind mount's source, `ro:PATH` or `rw:PATH` (repeatable; needs `--staged`).
    #[arg(long = "bind", value_name = "ro|rw:PATH")]
    binds: Vec<String>,
}

fn parse_bind(s: &str) -> anyhow::Result<crate::confine::BindSource> {
    let (mode, path) = s
        .split_once(':')
        .with_context(|| format!("--bind {s:?}: expected ro:PATH or rw:PATH"))?;
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        _ => anyhow::bail!("--bind {s:?}: expected ro:PATH or rw:PATH"),
    };
    Ok(crate::confine::BindSource {
        path: path.into(),
        read_only,
    })
}

pub fn run(args: GoferArgs) -> anyhow::Result<u8> {
    let sock = crate::host::take_inherited_fd(args.sock_fd).context("--sock-fd")?;
    let ty = nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::SockType)
        .context("--sock-fd is not a socket")?;
    if ty != nix::sys::socket::SockType::SeqPacket {
        anyhow::bail!("--sock-fd is not a SOCK_SEQPACKET socket");
    }
    let binds = args
        .binds
        .iter()
        .map(|b| parse_bind(b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !binds.is_empty() && !args.staged {
        anyhow::bail!("--bind needs --staged");
    }
    serve(
        &args.root,
        sock,
        args.read_only,
        args.staged.then_some(binds.as_slice()),
    )
}

/// Confine this process as the gofer of `root` (see [`crate::confine::gofer`]) and serve
/// the tree on `sock` until the sentry hangs up. `carapace gofer` ends here, and so does
/// the gofer `do` forks (`cmd_do::spawn_gofer`).
pub fn serve(
    root: &std::path::Path,
    sock: std::os::fd::OwnedFd,
    read_only: bool,
    staged: Option<&[crate::confine::BindSource]>,
) -> anyhow::Result<u8> {
    // From here the gofer's `/` is the tree it serves, and nothing else of the host.
    crate::confine::gofer(
        root,
        read_only,
        staged,
        crate::confine::seccomp::Mode::from_env(),
    )
    .context("confining the gofer")?;
    // What confining allocated and freed (the seccomp filter's build) goes back.
    crate::host::trim_heap();
    let root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("cannot open the served tree")?;
    gofer::server::serve(
        root,
        sock,
        gofer::server::ServeOptions {
            // Staged, each tree's own mount says whether it takes writes (the host
            // answers EROFS); the staging root itself is read-only.
            read_only: read_only && staged.is_none(),
        },
    )
    .context("gofer failed")?;
    Ok(0)
}
