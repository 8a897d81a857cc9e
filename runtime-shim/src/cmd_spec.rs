//! `carapace spec` (a starting config.json) and `carapace features` (what this runtime
//! honours, as the runtime-spec's features document).

use anyhow::{bail, Context};
use oci_spec::runtime::Spec;

pub fn spec(args: liboci_cli::Spec) -> anyhow::Result<u8> {
    if args.rootless {
        bail!("--rootless: rootless containers are not supported yet");
    }
    let dir = args.bundle.unwrap_or_else(|| ".".into());
    let path = dir.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let json = serde_json::to_string_pretty(&default_spec()?)?;
    std::fs::write(&path, json + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(0)
}

/// runc's default spec (`sh` in `rootfs`, read-only root, the usual mounts) from
/// oci-spec's defaults, except that it asks for no terminal: terminals are not
/// supported yet and `carapace run` should work on the spec as written.
fn default_spec() -> anyhow::Result<Spec> {
    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_hostname(Some("carapace".into()));
    let mut process = spec
        .process()
        .clone()
        .context("oci-spec default has no process")?;
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    Ok(spec)
}

pub fn features() -> anyhow::Result<u8> {
    let f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::container::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
            "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "mode"],
        "linux": {
            "namespaces": [],
            "capabilities": crate::security::capability_names(),
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false},
            "seccomp": crate::security::seccomp_features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "org.carapace.platforms": "systrap,ptrace",
            "org.carapace.mountTypes": "tmpfs,proc,sysfs,devpts,mqueue,cgroup",
        },
    });
    println!("{}", serde_json::to_string_pretty(&f)?);
    Ok(0)
}
