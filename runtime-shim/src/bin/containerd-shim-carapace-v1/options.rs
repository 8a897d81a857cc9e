//! The shim's options: a TOML file named in the runtime options, as other shims read theirs.
//!
//! containerd hands the shim a `google.protobuf.Any` with the task (or runtime) options. Two
//! kinds are understood:
//! - `runtimeoptions.v1.Options` (what `ctr run --runtime-config-path F` and the CRI plugin's
//!   `options.ConfigPath` send): `config_path` names a TOML file, `config_body` may carry it.
//! - `containerd.runc.v1.Options` (runc's): its `binary_name` and `root` are honoured.
//!
//! The TOML file:
//! ```toml
//! binary_name = "/usr/local/bin/carapace"   # default: `carapace` next to the shim, else on PATH
//! root = "/run/containerd/carapace"         # carapace --root (default: that, plus /NAMESPACE)
//! log = "/var/log/carapace.log"             # carapace --log (default: log.json in the bundle)
//! debug = false                             # carapace --debug
//! [flags]                                   # any other global carapace flag, e.g.
//! overlay = "memory"                        #   --overlay=memory
//! strace = true                             #   --strace
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// What the TOML file may say. Unknown keys are refused so that a typo is not ignored.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShimOptions {
    pub binary_name: Option<String>,
    pub root: Option<String>,
    pub log: Option<String>,
    #[serde(default)]
    pub debug: bool,
    #[serde(default)]
    pub flags: toml::Table,
}

impl ShimOptions {
    pub fn parse_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        let o: ShimOptions =
            toml::from_str(text).with_context(|| format!("shim options in {origin}"))?;
        for (k, v) in &o.flags {
            flag_value(k, v).with_context(|| format!("shim options in {origin}: flags.{k}"))?;
        }
        Ok(o)
    }

    /// The global flags for every `carapace` call, before the command.
    pub fn global_args(&self, root: &Path, log: &Path) -> Vec<String> {
        let mut a = vec![
            "--root".to_string(),
            root.display().to_string(),
            "--log".to_string(),
            log.display().to_string(),
            "--log-format".to_string(),
            "json".to_string(),
        ];
        if self.debug {
            a.push("--debug".to_string());
        }
        for (k, v) in &self.flags {
            if let Ok(Some(s)) = flag_value(k, v) {
                a.push(s);
            }
        }
        a
    }

    /// Applies what a decoded `Any` carried.
    pub fn from_any(type_url: &str, value: &[u8]) -> anyhow::Result<Self> {
        let name = type_url.rsplit('/').next().unwrap_or_default();
        match name {
            "runtimeoptions.v1.Options" => {
                let fields = decode_strings(value).context("runtimeoptions.v1.Options")?;
                let mut path = None;
                let mut body = None;
                for (n, s) in fields {
                    match n {
                        2 => path = Some(s),
                        3 => body = Some(s),
                        _ => {}
                    }
                }
                if let Some(b) = body.filter(|b| !b.trim().is_empty()) {
                    return Self::parse_toml(&b, "config_body");
                }
                match path.filter(|p| !p.is_empty()) {
                    Some(p) => {
                        let text = std::fs::read_to_string(&p)
                            .with_context(|| format!("cannot read shim options {p}"))?;
                        Self::parse_toml(&text, &p)
                    }
                    None => Ok(Self::default()),
                }
            }
            "containerd.runc.v1.Options" => {
                let mut o = Self::default();
                for (n, s) in decode_strings(value).context("containerd.runc.v1.Options")? {
                    match n {
                        6 if !s.is_empty() => o.binary_name = Some(s),
                        7 if !s.is_empty() => o.root = Some(s),
                        _ => {}
                    }
                }
                Ok(o)
            }
            "" => Ok(Self::default()),
            other => bail!("runtime options of type {other:?} are not understood"),
        }
    }

    /// The `carapace` binary: `binary_name` if set, else `carapace` beside the shim, else PATH.
    pub fn binary(&self) -> PathBuf {
        if let Some(b) = &self.binary_name {
            return PathBuf::from(b);
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            let beside = dir.join("carapace");
            if beside.is_file() {
                return beside;
            }
        }
        PathBuf::from("carapace")
    }
}

/// `--key=value` for one `[flags]` entry; a false boolean is left out.
fn flag_value(k: &str, v: &toml::Value) -> anyhow::Result<Option<String>> {
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("not a flag name");
    }
    let k = k.replace('_', "-");
    Ok(match v {
        toml::Value::Boolean(true) => Some(format!("--{k}")),
        toml::Value::Boolean(false) => None,
        toml::Value::String(s) => Some(format!("--{k}={s}")),
        toml::Value::Integer(i) => Some(format!("--{k}={i}")),
        _ => bail!("a flag is a string, an integer or a boolean"),
    })
}

/// The string (length-delimited) fields of a protobuf message, by field number; other wire
/// types are skipped. Malformed input is an error, never a panic.
fn decode_strings(mut b: &[u8]) -> anyhow::Result<Vec<(u64, String)>> {
    fn varint(b: &mut &[u8]) -> anyhow::Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some((&byte, rest)) = b.split_first() else {
                bail!("truncated varint");
            };
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("varint too long")
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(&mut b)?;
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                b = b.get(n..).context("truncated fixed field")?;
            }
            2 => {
                let len = usize::try_from(varint(&mut b)?).context("length")?;
                let data = b.get(..len).context("truncated field")?;
                b = b.get(len..).context("truncated field")?;
                if let Ok(s) = std::str::from_utf8(data) {
                    out.push((field, s.to_string()));
                }
            }
            w => bail!("unknown wire type {w}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u8, s: &str) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn runtimeoptions_body_and_flags() {
        let body = "binary_name = \"/x/carapace\"\ndebug = true\n[flags]\noverlay = \"none\"\nstrace = true\nfoo_bar = false\n";
        let mut msg = field(1, "t");
        msg.extend(field(3, body));
        let o = ShimOptions::from_any("runtimeoptions.v1.Options", &msg).unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("/x/carapace"));
        let a = o.global_args(Path::new("/r"), Path::new("/l"));
        assert!(a.contains(&"--overlay=none".to_string()), "{a:?}");
        assert!(a.contains(&"--strace".to_string()));
        assert!(a.contains(&"--debug".to_string()));
        assert!(!a.iter().any(|s| s.contains("foo")));
    }

    #[test]
    fn runc_options_binary_and_root() {
        let mut msg = vec![8, 1]; // no_pivot_root = true (a varint field)
        msg.extend(field(6, "/b/carapace"));
        msg.extend(field(7, "/run/r"));
        let o = ShimOptions::from_any("containerd.runc.v1.Options", &msg).unwrap();
        assert_eq!(o.binary_name.as_deref(), Some("/b/carapace"));
        assert_eq!(o.root.as_deref(), Some("/run/r"));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(ShimOptions::from_any("runtimeoptions.v1.Options", &[0x12, 0x7f]).is_err());
        assert!(ShimOptions::from_any("runtimeoptions.v1.Options", &[0xff]).is_err());
        assert!(ShimOptions::from_any("some.Other", &[]).is_err());
        assert!(ShimOptions::parse_toml("bogus = 1", "t").is_err());
        assert!(ShimOptions::parse_toml("[flags]\n\"a b\" = true", "t").is_err());
        assert!(ShimOptions::parse_toml("[flags]\nx = [1]", "t").is_err());
    }
}
