//! The commands on an existing container: `start`, `state`, `kill`, `delete`, `list`,
//! `ps`, `wait`. Each loads the record under `--root` and, where the container is alive,
//! talks to its sentry over the control socket.

use crate::container::{Container, Root, Status};
use anyhow::{bail, Context};
use sentry::control::{Request, Response};

fn load(opts: &crate::RuntimeOpts, id: &str) -> anyhow::Result<Container> {
    Root::new(opts.root.clone()).load(id)
}

/// An answer that should be `Ok`, or the sandbox's error message.
fn expect_ok(r: Response) -> anyhow::Result<()> {
    match r {
        Response::Ok => Ok(()),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    }
}

pub fn start(args: liboci_cli::Start, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    match c.status() {
        Status::Created => expect_ok(crate::hooks::start(&c, || c.request(&Request::Start))?)?,
        Status::Running => bail!("cannot start an already running container"),
        Status::Paused => bail!("cannot start a paused container"),
        Status::Stopped => bail!("cannot start a container that has stopped"),
    }
    Ok(0)
}

pub fn state(args: liboci_cli::State, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    println!("{}", serde_json::to_string_pretty(&c.state_json())?);
    Ok(0)
}

pub fn kill(args: liboci_cli::Kill, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let signo = parse_signal(&args.signal)?;
    let c = load(opts, &args.container_id)?;
    let status = c.status();
    if status == Status::Stopped {
        bail!("container not running");
    }
    // The sentry delivers signals, so a paused one is thawed for it and frozen again:
    // the signal stays pending in the sandbox until `resume`, as with a frozen task.
    let frozen = (status == Status::Paused).then(|| c.cgroup()).flatten();
    if let Some(cg) = &frozen {
        cg.freeze(false)?;
    }
    let sent = match c.request(&Request::Signal {
        signo,
        all: args.all,
    }) {
        Ok(r) => expect_ok(r),
        // A sandbox that no longer answers can still be killed from the host.
        Err(_) if signo == libc::SIGKILL => {
            c.saved.pid.kill();
            Ok(())
        }
        Err(e) => Err(e),
    };
    if let Some(cg) = &frozen {
        if signo != libc::SIGKILL {
            cg.freeze(true)?;
        }
    }
    sent?;
    Ok(0)
}

/// A signal as runc takes it: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}");
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

pub fn delete(args: liboci_cli::Delete, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let root = Root::new(opts.root.clone());
    let c = match root.load(&args.container_id) {
        Ok(c) => c,
        Err(e) if e.is::<crate::container::NotExist>() => {
            // A directory without a record is what a `create` killed half-way leaves; its
            // sandbox is gone once nothing answers on the control socket. As runc, a
            // forced delete of a container that does not exist succeeds.
            let dir = root.container_dir(&args.container_id)?;
            if dir.is_dir()
                && std::os::unix::net::UnixStream::connect(dir.join("control.sock")).is_err()
            {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot remove {}", dir.display()))?;
                return Ok(0);
            }
            if args.force {
                return Ok(0);
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    match c.status() {
        // As runc: a created container has run nothing yet and is deleted without --force.
        Status::Stopped | Status::Created => c.destroy()?,
        Status::Running | Status::Paused if args.force => c.destroy()?,
        Status::Paused => bail!(
            "cannot delete container {} that is not stopped: paused",
            args.container_id
        ),
        Status::Running => bail!(
            "cannot delete container {} that is not stopped: running",
            args.container_id
        ),
    }
    Ok(0)
}

pub fn list(args: liboci_cli::List, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let containers = Root::new(opts.root.clone()).list()?;
    if args.quiet {
        for c in &containers {
            println!("{}", c.saved.id);
        }
        return Ok(0);
    }
    let states: Vec<_> = containers.iter().map(Container::state_json).collect();
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&states)?),
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for s in &states {
                rows.push([
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            print!("{}", table(&rows));
        }
        other => bail!("invalid format option {other:?}: expected table or json"),
    }
    Ok(0)
}

/// Columns padded like Go's tabwriter as runc sets it up (min width 12, padding 3).
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count().saturating_add(3)).max(12);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < N {
                let pad = widths.get(i).copied().unwrap_or(0);
                out.push_str(&" ".repeat(pad.saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

/// `ps`: the container's processes as sandbox pids (the container's own pid namespace,
/// init is 1), as `runsc ps` reports them. Application code runs in stub processes whose
/// host pids mean nothing inside the container and must not be signalled directly.
pub fn ps(args: liboci_cli::Ps, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    match c.status() {
        Status::Stopped => bail!("container not running"),
        // Its sentry is frozen and cannot answer.
        Status::Paused => bail!("container {} is paused", args.container_id),
        _ => {}
    }
    let pids = match c.request(&Request::Ps)? {
        Response::Ps { pids } => pids,
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the sandbox: {other:?}"),
    };
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            println!("PID");
            for p in pids {
                println!("{p}");
            }
        }
        other => bail!("invalid format option {other:?}: expected table or json"),
    }
    Ok(0)
}

/// `wait ID`: block until the container's init exits; prints runsc's
/// `{"id":…,"exitStatus":…}` with the `wait(2)` status and exits 0.
#[derive(clap::Args)]
pub struct WaitArgs {
    container_id: String,
}

pub fn wait(args: WaitArgs, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    let status = match c.request(&Request::Wait) {
        Ok(Response::Exited { wait_status }) => wait_status,
        Ok(Response::Error { message }) => bail!("{message}"),
        Ok(other) => bail!("unexpected answer from the sandbox: {other:?}"),
        Err(e) => return Err(e).context("container not running"),
    };
    println!(
        "{}",
        serde_json::json!({"id": args.container_id, "exitStatus": status})
    );
    Ok(0)
}

/// `events`: runc's stats records from the container's cgroup, once with `--stats`, else
/// every `--interval` seconds until the container stops.
pub fn events(args: liboci_cli::Events, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = Root::new(opts.root.clone()).load(&args.container_id)?;
    let cg = crate::cgroups::Cgroup::load(&c.dir.join("cgroup"))
        .with_context(|| format!("container {} has no cgroup", args.container_id))?;
    loop {
        if c.status() == Status::Stopped {
            bail!("container {} is not running", args.container_id);
        }
        let record = serde_json::json!({
            "type": "stats",
            "id": args.container_id,
            "data": cg.stats(),
        });
        println!("{record}");
        if args.stats {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_secs(u64::from(
            args.interval.max(1),
        )));
    }
}

/// The container's cgroup, for the commands that need one.
fn cgroup_of(c: &Container, id: &str) -> anyhow::Result<crate::cgroups::Cgroup> {
    c.cgroup()
        .with_context(|| format!("container {id} has no cgroup"))
}

/// `pause`: freeze the sandbox's host processes (sentry, stubs, gofer) in their cgroup.
pub fn pause(args: liboci_cli::Pause, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    match c.status() {
        Status::Running => cgroup_of(&c, &args.container_id)?.freeze(true)?,
        Status::Paused => bail!("container {} is already paused", args.container_id),
        _ => bail!("container not running"),
    }
    Ok(0)
}

/// `resume`: thaw a paused container.
pub fn resume(args: liboci_cli::Resume, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    match c.status() {
        Status::Paused => cgroup_of(&c, &args.container_id)?.freeze(false)?,
        _ => bail!("container {} is not paused", args.container_id),
    }
    Ok(0)
}

/// `update`: new memory, CPU or pids limits for a live container, from flags or from a
/// `linux.resources` JSON file (`-r`, `-` for stdin).
pub fn update(args: liboci_cli::Update, opts: &crate::RuntimeOpts) -> anyhow::Result<u8> {
    let c = load(opts, &args.container_id)?;
    if c.status() == Status::Stopped {
        bail!("container not running");
    }
    let mut r = crate::cgroups::Resources::default();
    if let Some(path) = &args.resources {
        let text = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        } else {
            std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?
        };
        let res: oci_spec::runtime::LinuxResources =
            serde_json::from_str(&text).context("--resources: malformed")?;
        r = crate::cgroups::Resources::from_linux(&res);
    }
    let int =
        |v: u64, what: &str| i64::try_from(v).with_context(|| format!("--{what} {v}: too large"));
    if let Some(m) = args.memory {
        r.memory_limit = Some(int(m, "memory")?);
    }
    if let Some(q) = args.cpu_quota {
        r.cpu_quota = Some(int(q, "cpu-quota")?);
    }
    r.cpu_period = args.cpu_period.or(r.cpu_period);
    r.cpu_shares = args.cpu_share.or(r.cpu_shares);
    r.pids_limit = args.pids_limit.or(r.pids_limit);
    cgroup_of(&c, &args.container_id)?.update(&r)?;
    crate::spec_extras::update_view(&c, &r);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_as_runc_parses_them() {
        assert_eq!(parse_signal("KILL").ok(), Some(9));
        assert_eq!(parse_signal("sigterm").ok(), Some(15));
        assert_eq!(parse_signal("SIGUSR1").ok(), Some(10));
        assert_eq!(parse_signal("9").ok(), Some(9));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }
}
