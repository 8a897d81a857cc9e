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
    /// Refuse every operation that would change the tree.
    #[arg(long)]
    read_only: bool,
}

pub fn run(args: GoferArgs) -> anyhow::Result<u8> {
    let sock = crate::host::take_inherited_fd(args.sock_fd).context("--sock-fd")?;
    let ty = nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::SockType)
        .context("--sock-fd is not a socket")?;
    if ty != nix::sys::socket::SockType::SeqPacket {
        anyhow::bail!("--sock-fd is not a SOCK_SEQPACKET socket");
    }
    // From here the gofer's `/` is the tree it serves, and nothing else of the host.
    crate::confine::gofer(
        &args.root,
        args.read_only,
        crate::confine::seccomp::Mode::from_env(),
    )
    .context("confining the gofer")?;
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
            read_only: args.read_only,
        },
    )
    .context("gofer failed")?;
    Ok(0)
}
