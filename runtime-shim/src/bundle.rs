//! An OCI bundle: `config.json` read with `oci-spec`, checked field by field and turned
//! into what the sentry needs. `create` checks it before anything is started; `boot`
//! reads it again with the same code.

use anyhow::{bail, Context};
use oci_spec::runtime::Spec;
use sentry::fs::{SpecFs, SpecMount};
use sentry::vfs::MountFlags;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The parts of a bundle's spec Carapace honours, checked.
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// `root.path` resolved against the bundle, absolute.
    pub rootfs: PathBuf,
    pub readonly: bool,
    pub oci_version: String,
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: u32,
    pub hostname: Option<Vec<u8>>,
    pub terminal: bool,
    /// `process.consoleSize`: the terminal's initial rows and columns.
    pub console_size: Option<(u16, u16)>,
    pub mounts: Vec<SpecMount>,
    /// The sources of the bind mounts among `mounts`, in order: the gofer serves them as
    /// `m0`, `m1`… of its staged root.
    pub binds: Vec<crate::confine::BindSource>,
    /// `linux.resources` as host cgroup limits, and `linux.cgroupsPath`.
    pub resources: crate::cgroups::Resources,
    pub cgroups_path: Option<String>,
    pub annotations: BTreeMap<String, String>,
    /// Capabilities, noNewPrivileges, rlimits and the compiled `linux.seccomp`.
    pub security: sentry::security::ProcessSecurity,
    /// `hooks`, checked (see `hooks.rs`).
    pub hooks: oci_spec::runtime::Hooks,
    /// maskedPaths, readonlyPaths, sysctl (see `spec_extras.rs`).
    pub extras: crate::spec_extras::Extras,
}

/// Read and check `<bundle>/config.json`.
pub fn load(bundle: &Path) -> anyhow::Result<Bundle> {
    let dir =
        std::fs::canonicalize(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    if !dir.is_dir() {
        bail!("bundle {}: not a directory", bundle.display());
    }
    let path = dir.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{}: malformed config", path.display()))?;
    // Before the typed parse, which would refuse an unknown capability or limit
    // without naming its field.
    let security =
        crate::security::from_config(&value).with_context(|| format!("{}", path.display()))?;
    let spec: Spec = serde_json::from_value(value)
        .with_context(|| format!("{}: malformed config", path.display()))?;
    let mut b = check(&dir, &spec).with_context(|| format!("{}", path.display()))?;
    b.security = security;
    Ok(b)
}

fn check(dir: &Path, spec: &Spec) -> anyhow::Result<Bundle> {
    let Some(root) = spec.root() else {
        bail!("root: missing");
    };
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_context(|| format!("root.path {}", rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root.path {}: not a directory", rootfs.display());
    }
    let Some(process) = spec.process() else {
        bail!("process: missing");
    };
    let args: Vec<Vec<u8>> = process
        .args()
        .iter()
        .flatten()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    if args.is_empty() {
        bail!("process.args: missing or empty");
    }
    let mut env = Vec::new();
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            bail!("process.env[{i}] {e:?}: expected KEY=VALUE");
        }
        env.push(e.as_bytes().to_vec());
    }
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        bail!("process.cwd {}: not an absolute path", cwd.display());
    }
    let user = process.user();
    let umask = user.umask().unwrap_or(0o022);
    if umask > 0o777 {
        bail!("process.user.umask {umask}: more than 0777");
    }
    let mut mounts = Vec::new();
    let mut binds = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mounts.push(
            check_mount(m, dir, &mut binds)
                .with_context(|| format!("mounts[{i}] ({})", m.destination().display()))?,
        );
    }
    let hostname = spec
        .hostname()
        .as_ref()
        .filter(|h| !h.is_empty())
        .map(|h| h.as_bytes().to_vec());
    if hostname.as_ref().is_some_and(|h| h.len() > 64) {
        bail!("hostname: longer than 64 bytes");
    }
    let hooks = spec.hooks().clone().unwrap_or_default();
    crate::hooks::check(&hooks)?;
    let extras = crate::spec_extras::from_spec(spec)?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        rootfs,
        readonly: root.readonly().unwrap_or(false),
        oci_version: spec.version().clone(),
        args,
        env,
        cwd: cwd.as_os_str().as_bytes().to_vec(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask,
        hostname,
        terminal: process.terminal().unwrap_or(false),
        console_size: console_size(process)?,
        mounts,
        binds,
        resources: crate::cgroups::Resources::from_spec(spec),
        cgroups_path: spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned()),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        security: Default::default(),
        hooks,
        extras,
    })
}

/// `process.consoleSize` as (rows, columns), each at most 65535.
pub fn console_size(process: &oci_spec::runtime::Process) -> anyhow::Result<Option<(u16, u16)>> {
    let Some(b) = process.console_size() else {
        return Ok(None);
    };
    let rows = u16::try_from(b.height())
        .map_err(|_| anyhow::anyhow!("process.consoleSize.height {}: too large", b.height()))?;
    let cols = u16::try_from(b.width())
        .map_err(|_| anyhow::anyhow!("process.consoleSize.width {}: too large", b.width()))?;
    Ok(Some((rows, cols)))
}

fn check_mount(
    m: &oci_spec::runtime::Mount,
    bundle: &Path,
    binds: &mut Vec<crate::confine::BindSource>,
) -> anyhow::Result<SpecMount> {
    let dest = m.destination();
    if !dest.is_absolute() {
        bail!("destination: not an absolute path");
    }
    if dest
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        bail!("destination: contains \"..\"");
    }
    let options = m.options().clone().unwrap_or_default();
    let typ = m.typ().as_deref().unwrap_or("");
    let read_only = options.iter().any(|o| o == "ro");
    let flags = mount_flags(&options);
    if typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind") {
        let source = m.source().as_ref().context("source: missing")?;
        // Relative sources are relative to the bundle, as runc reads them.
        let source = bundle.join(source);
        let meta =
            std::fs::metadata(&source).with_context(|| format!("source {}", source.display()))?;
        let name = format!("m{}", binds.len());
        binds.push(crate::confine::BindSource {
            path: source,
            read_only,
        });
        return Ok(SpecMount {
            destination: dest.as_os_str().as_bytes().to_vec(),
            fs: SpecFs::Bind {
                name: name.into_bytes(),
                file: !meta.is_dir(),
            },
            read_only,
            flags,
        });
    }
    let fs = match typ {
        "tmpfs" => {
            let mut mode = 0o1777;
            for o in &options {
                if let Some(m) = o.strip_prefix("mode=") {
                    mode = u32::from_str_radix(m, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .with_context(|| format!("options: bad tmpfs mode {m:?}"))?;
                }
            }
            SpecFs::Tmpfs { mode }
        }
        "proc" => SpecFs::Proc,
        "sysfs" => SpecFs::Sysfs,
        "devpts" => SpecFs::Devpts,
        "mqueue" => SpecFs::Mqueue,
        "cgroup" | "cgroup2" => SpecFs::Cgroup,
        "" => bail!("type: missing"),
        other => bail!("type {other:?}: not supported"),
    };
    Ok(SpecMount {
        destination: dest.as_os_str().as_bytes().to_vec(),
        fs,
        read_only,
        flags,
    })
}

/// `nosuid`/`nodev`/`noexec` among a mount's options; their opposites (`suid`, `dev`,
/// `exec`) clear them, the last one winning as mount(8) reads them.
fn mount_flags(options: &[String]) -> MountFlags {
    let mut f = MountFlags::default();
    for o in options {
        match o.as_str() {
            "nosuid" => f.nosuid = true,
            "suid" => f.nosuid = false,
            "nodev" => f.nodev = true,
            "dev" => f.nodev = false,
            "noexec" => f.noexec = true,
            "exec" => f.noexec = false,
            _ => {}
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(v: serde_json::Value) -> anyhow::Result<SpecMount> {
        check_mount(
            &serde_json::from_value(v).expect("a Mount"),
            Path::new("/"),
            &mut Vec::new(),
        )
    }

    fn err(v: serde_json::Value) -> String {
        format!("{:#}", mount(v).expect_err("should be refused"))
    }

    #[test]
    fn mounts() {
        let m = mount(serde_json::json!({"destination": "/d", "type": "tmpfs",
            "options": ["nosuid", "mode=755", "ro"]}))
        .expect("tmpfs");
        assert_eq!(m.fs, SpecFs::Tmpfs { mode: 0o755 });
        assert!(m.read_only);
        assert_eq!(m.destination, b"/d");
        assert_eq!(
            (m.flags.nosuid, m.flags.nodev, m.flags.noexec),
            (true, false, false)
        );
        let x = mount(serde_json::json!({"destination": "/x", "type": "tmpfs",
            "options": ["noexec", "nodev", "exec"]}))
        .expect("tmpfs");
        assert_eq!(
            (x.flags.nosuid, x.flags.nodev, x.flags.noexec),
            (false, true, false)
        );
        let p = mount(serde_json::json!({"destination": "/proc", "type": "proc"})).expect("proc");
        assert_eq!((p.fs, p.read_only), (SpecFs::Proc, false));

        // Bind mounts: the source must exist; files and directories both work.
        assert!(err(serde_json::json!({"destination": "/h", "type": "bind"})).contains("source"));
        assert!(err(serde_json::json!({"destination": "/h", "type": "none",
            "source": "/nonexistent/carapace", "options": ["rbind"]}))
        .contains("/nonexistent/carapace"));
        let b = mount(serde_json::json!({"destination": "/h", "type": "bind",
            "source": "/etc/hostname", "options": ["ro"]}))
        .expect("file bind");
        assert_eq!(
            (b.fs, b.read_only),
            (
                SpecFs::Bind {
                    name: b"m0".to_vec(),
                    file: true
                },
                true
            )
        );
        assert!(
            err(serde_json::json!({"destination": "rel", "type": "tmpfs"})).contains("absolute")
        );
        assert!(err(serde_json::json!({"destination": "/a/../b", "type": "tmpfs"})).contains(".."));
        assert!(err(serde_json::json!({"destination": "/a", "type": "nfs"})).contains("nfs"));
        assert!(err(serde_json::json!({"destination": "/a"})).contains("type"));
        assert!(err(
            serde_json::json!({"destination": "/a", "type": "tmpfs", "options": ["mode=99"]})
        )
        .contains("mode"));
    }
}
