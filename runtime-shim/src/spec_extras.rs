//! The parts of `linux` in a bundle's spec that the sentry applies after its mounts:
//! `maskedPaths`, `readonlyPaths`, `sysctl`, and the cgroup limits its `/sys/fs/cgroup`
//! shows. Read and checked with the bundle; handed to the sentry by `boot`.

use anyhow::bail;
use oci_spec::runtime::Spec;
use std::os::unix::ffi::OsStrExt;

#[derive(Clone, Debug, Default)]
pub struct Extras {
    pub masked_paths: Vec<Vec<u8>>,
    pub readonly_paths: Vec<Vec<u8>>,
    pub sysctl: Vec<(String, String)>,
}

/// Read and check them: absolute paths, and only sysctls the sandbox owns (runc too
/// refuses sysctls that are not namespaced; the sandbox's are its own).
pub fn from_spec(spec: &Spec) -> anyhow::Result<Extras> {
    let Some(linux) = spec.linux() else {
        return Ok(Extras::default());
    };
    let paths = |field: &str, list: Option<&Vec<String>>| -> anyhow::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for (i, p) in list.into_iter().flatten().enumerate() {
            let path = std::path::Path::new(p);
            if !path.is_absolute() {
                bail!("linux.{field}[{i}] {p:?}: not an absolute path");
            }
            out.push(path.as_os_str().as_bytes().to_vec());
        }
        Ok(out)
    };
    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctl.sort();
    for (k, v) in &sysctl {
        if let Err(e) = sentry::fs::proc::sysctl::check(k, v) {
            bail!("linux.sysctl: {e}");
        }
    }
    Ok(Extras {
        masked_paths: paths("maskedPaths", linux.masked_paths().as_ref())?,
        readonly_paths: paths("readonlyPaths", linux.readonly_paths().as_ref())?,
        sysctl,
    })
}

/// The limits of `r` as the sandbox's cgroupfs shows them.
fn limits(r: &crate::cgroups::Resources) -> sentry::fs::cgroup::Limits {
    use sentry::fs::cgroup::Limits;
    Limits {
        memory_max: r.memory_limit.and_then(|m| u64::try_from(m).ok()),
        pids_max: r.pids_limit.and_then(|m| u64::try_from(m).ok()),
        cpu_quota: r.cpu_quota.and_then(|m| u64::try_from(m).ok()),
        cpu_period: r.cpu_period,
        cpu_weight: r.cpu_shares.map(Limits::weight_of_shares),
    }
}

/// `update`: tell the sandbox its new limits, for its `/sys/fs/cgroup`. A paused sandbox
/// cannot answer; it keeps showing the old ones (a warning says so).
pub fn update_view(c: &crate::container::Container, r: &crate::cgroups::Resources) {
    use crate::container::Status;
    if !matches!(c.status(), Status::Created | Status::Running) {
        tracing::warn!("the container is paused: its /sys/fs/cgroup keeps the old limits");
        return;
    }
    match c.request(&sentry::control::Request::UpdateCgroup(limits(r))) {
        Ok(sentry::control::Response::Ok) => {}
        other => tracing::warn!("the sandbox did not take the new limits: {other:?}"),
    }
}

/// What the sentry applies for bundle `b`, with the preserved descriptors `extra_fds`.
pub fn setup(
    b: &crate::bundle::Bundle,
    extra_fds: Vec<std::os::fd::OwnedFd>,
) -> sentry::fs::oci::OciSetup {
    sentry::fs::oci::OciSetup {
        masked_paths: b.extras.masked_paths.clone(),
        readonly_paths: b.extras.readonly_paths.clone(),
        sysctl: b.extras.sysctl.clone(),
        cgroup: limits(&b.resources),
        extra_fds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extras(linux: serde_json::Value) -> anyhow::Result<Extras> {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "linux": linux,
        }))
        .expect("a spec");
        from_spec(&spec)
    }

    #[test]
    fn checked() {
        let e = extras(serde_json::json!({
            "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
            "sysctl": {"kernel.domainname": "example.org"},
        }))
        .expect("good");
        assert_eq!(e.masked_paths, [b"/proc/kcore".to_vec()]);
        assert_eq!(
            e.sysctl,
            [("kernel.domainname".into(), "example.org".into())]
        );
        let err = format!(
            "{:#}",
            extras(serde_json::json!({"sysctl": {"kernel.shmmax": "1"}})).expect_err("host")
        );
        assert!(err.contains("kernel.shmmax"), "{err}");
        let err = format!(
            "{:#}",
            extras(serde_json::json!({"maskedPaths": ["proc"]})).expect_err("relative")
        );
        assert!(err.contains("maskedPaths[0]"), "{err}");
    }
}
