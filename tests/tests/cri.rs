//! Kubernetes' CRI with Carapace (issue 8), the way kubelet drives it: a private
//! containerd whose CRI plugin has a `carapace` runtime handler (runtime_type
//! `io.containerd.carapace.v1`) and a pause image built here (a static C `pause`), and a
//! CRI client (the `k8s-cri` crate over containerd's socket) that runs a host-network pod
//! of two busybox containers: RunPodSandbox → CreateContainer ×2 → StartContainer →
//! ExecSync → ContainerStatus and the log files → StopPodSandbox → RemovePodSandbox. It
//! checks exit codes and logs, that both containers ran in the pod's one sentry (one
//! sentry process on the host, a gofer per container), and that a shim, a sentry or a
//! gofer killed mid-run still lets containerd report the containers as exited and remove
//! the pod, leaving nothing running. Everything it started is removed at the end, also
//! when an assertion fails.

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopPodSandboxRequest, VersionRequest,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[path = "support/host_procs.rs"]
mod host_procs;

const TIMEOUT: Duration = Duration::from_secs(120);
const HANDLER: &str = "carapace";
const PAUSE_IMAGE: &str = "localhost/carapace-pause:latest";
const IMAGE: &str = "localhost/carapace-busybox:latest";
const NAMESPACE: &str = "k8s.io";

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        .unwrap_or(false)
}

fn missing_tools() -> Option<String> {
    let missing: Vec<&str> = ["containerd", "ctr", "umoci", "skopeo", "gcc"]
        .into_iter()
        .filter(|t| which(t).is_none())
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} not installed (scripts/deps.sh installs them)",
            missing.join(", ")
        ));
    }
    if !is_root() {
        return Some("containerd needs root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox missing (busybox-static)".into());
    }
    None
}

/// Builds the shim with the tests' profile and target directory, as `tests::carapace()`
/// does for `carapace`.
fn shim_binary() -> PathBuf {
    let profile_dir = tests::profile_dir().expect("profile dir");
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(name) => name.to_string(),
        None => panic!("the profile directory has no name"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", "runtime-shim", "--bin"])
        .arg("containerd-shim-carapace-v1")
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(tests::workspace_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the shim failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("containerd-shim-carapace-v1")
}

fn run_ok(cmd: Command) {
    let what = format!("{cmd:?}");
    let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.code(), Some(0), "{}", r.dump());
}

/// `rootfs` as an OCI image archive named `name` whose command is `cmd`.
fn oci_archive(dir: &Path, rootfs: &Path, name: &str, cmd: &str) -> PathBuf {
    let layout = dir.join("layout");
    let _ = std::fs::remove_dir_all(&layout);
    let image = format!("{}:t", layout.display());
    let archive = dir.join("image.tar");
    let mut c = Command::new("umoci");
    c.args(["init", "--layout"]).arg(&layout);
    run_ok(c);
    let mut c = Command::new("umoci");
    c.args(["new", "--image", &image]);
    run_ok(c);
    let mut c = Command::new("umoci");
    c.args(["insert", "--image", &image]).arg(rootfs).arg("/");
    run_ok(c);
    let mut c = Command::new("umoci");
    c.args(["config", "--image", &image])
        .arg(format!("--config.cmd={cmd}"))
        .arg("--config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    run_ok(c);
    let mut c = Command::new("skopeo");
    c.args(["copy", "-q"])
        .arg(format!("oci:{image}"))
        .arg(format!("oci-archive:{}:{name}", archive.display()));
    run_ok(c);
    archive
}

/// The pause image: one static binary, `/pause` (tests/cri/pause.c).
fn build_pause_image(dir: &Path) -> PathBuf {
    let work = dir.join("pause-image");
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir");
    let src = tests::crate_dir().join("cri/pause.c");
    let mut c = Command::new("gcc");
    c.args(["-static", "-O2", "-o"])
        .arg(rootfs.join("pause"))
        .arg(src);
    run_ok(c);
    oci_archive(&work, &rootfs, PAUSE_IMAGE, "/pause")
}

/// busybox with every applet.
fn build_busybox_image(dir: &Path) -> PathBuf {
    let work = dir.join("busybox-image");
    let rootfs = work.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("applet symlink");
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("pw");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
    std::fs::write(rootfs.join("etc/whoami"), "busybox image\n").expect("whoami");
    oci_archive(&work, &rootfs, IMAGE, "/bin/sh")
}

/// A private containerd with the CRI plugin and the carapace handler, and a CRI client.
/// Drop tears everything down.
struct Cri {
    dir: PathBuf,
    daemon: Option<Child>,
    rt: tokio::runtime::Runtime,
    client: Option<RuntimeServiceClient<Channel>>,
}

impl Cri {
    fn start(dir: PathBuf) -> Cri {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut c = Cri {
            dir,
            daemon: None,
            rt,
            client: None,
        };
        let shim = shim_binary();
        let carapace = tests::carapace().expect("carapace binary");
        std::os::unix::fs::symlink(&shim, c.dir.join("bin/containerd-shim-carapace-v1"))
            .expect("symlink shim");
        std::os::unix::fs::symlink(&carapace, c.dir.join("bin/carapace")).expect("symlink");
        let d = c.dir.display();
        std::fs::write(
            c.dir.join("carapace.toml"),
            format!(
                "binary_name = \"{}\"\nroot = \"{d}/carapace-root\"\ndebug = true\n",
                carapace.display()
            ),
        )
        .expect("carapace.toml");
        std::fs::create_dir_all(c.dir.join("cni/bin")).expect("mkdir");
        std::fs::create_dir_all(c.dir.join("cni/conf")).expect("mkdir");
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  level = \"debug\"\n\
             [{cri}]\n  sandbox_image = \"{PAUSE_IMAGE}\"\n  restrict_oom_score_adj = true\n\
             \x20 stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n\
             [{cri}.cni]\n  bin_dir = \"{d}/cni/bin\"\n  conf_dir = \"{d}/cni/conf\"\n\
             [{cri}.containerd]\n  snapshotter = \"overlayfs\"\n  default_runtime_name = \"runc\"\n\
             [{cri}.containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.{HANDLER}]\n  runtime_type = \"io.containerd.carapace.v1\"\n\
             [{cri}.containerd.runtimes.{HANDLER}.options]\n\
             \x20 TypeUrl = \"io.containerd.carapace.v1.options\"\n\
             \x20 ConfigPath = \"{d}/carapace.toml\"\n"
        );
        std::fs::write(c.dir.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(c.dir.join("containerd.log")).expect("log");
        let path = format!(
            "{}:{}",
            c.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(c.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start containerd");
        c.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !c.sock().exists() {
            if let Some(Ok(Some(status))) = c.daemon.as_mut().map(|d| d.try_wait()) {
                panic!("containerd exited ({status}):\n{}", c.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd's socket did not appear:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for archive in [build_pause_image(&c.dir), build_busybox_image(&c.dir)] {
            let mut cmd = c.ctr();
            cmd.args(["images", "import"]).arg(archive);
            run_ok(cmd);
        }
        let sock = c.sock();
        let channel = c.rt.block_on(async move {
            tonic::transport::Endpoint::try_from("http://[::]:50051")
                .expect("endpoint")
                .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                    let sock = sock.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(sock).await?,
                        ))
                    }
                }))
                .await
                .expect("connect to containerd's CRI")
        });
        c.client = Some(RuntimeServiceClient::new(channel));
        let v = c.call(|mut cl| async move { cl.version(VersionRequest::default()).await });
        assert_eq!(v.runtime_api_version, "v1", "{v:?}");
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// containerd's log, then each container's carapace log (json lines in its bundle).
    fn log(&self) -> String {
        let mut out = tests::tail(
            &std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default(),
            60,
        );
        let bundles = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(NAMESPACE);
        for e in std::fs::read_dir(bundles).into_iter().flatten().flatten() {
            let log = std::fs::read_to_string(e.path().join("log.json")).unwrap_or_default();
            out.push_str(&format!(
                "\n--- carapace log of {}:\n{}",
                e.file_name().to_string_lossy(),
                tests::tail(&log, 40)
            ));
        }
        out
    }

    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.sock())
            .arg("--namespace")
            .arg(NAMESPACE);
        cmd
    }

    /// One CRI call; a failure fails the test with containerd's log.
    fn call<T, F>(&self, f: impl FnOnce(RuntimeServiceClient<Channel>) -> F) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match self.try_call(f) {
            Ok(t) => t,
            Err(s) => panic!("CRI call failed: {s}\n{}", self.log()),
        }
    }

    fn try_call<T, F>(
        &self,
        f: impl FnOnce(RuntimeServiceClient<Channel>) -> F,
    ) -> Result<T, tonic::Status>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = self.client.clone().expect("client");
        self.rt.block_on(async move {
            tokio::time::timeout(TIMEOUT, f(client))
                .await
                .map_err(|_| tonic::Status::deadline_exceeded("the call took too long"))?
                .map(tonic::Response::into_inner)
        })
    }

    fn pod_config(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            log_directory: self.dir.join("logs").join(name).display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run_pod(&self, name: &str) -> (String, PodSandboxConfig) {
        let config = self.pod_config(name);
        std::fs::create_dir_all(&config.log_directory).expect("mkdir logs");
        let cfg = config.clone();
        let r = self.call(|mut cl| async move {
            cl.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(cfg),
                runtime_handler: HANDLER.into(),
            })
            .await
        });
        (r.pod_sandbox_id, config)
    }

    fn create_container(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        name: &str,
        cmd: &[&str],
    ) -> String {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                command: cmd.iter().map(|s| s.to_string()).collect(),
                log_path: format!("{name}.log"),
                ..Default::default()
            }),
            sandbox_config: Some(pod_config.clone()),
        };
        self.call(|mut cl| async move { cl.create_container(req).await })
            .container_id
    }

    fn start_container(&self, id: &str) {
        let id = id.to_string();
        self.call(|mut cl| async move {
            cl.start_container(StartContainerRequest { container_id: id })
                .await
        });
    }

    /// (state, exit code, reason) of a container.
    fn container_status(&self, id: &str) -> (i32, i32, String) {
        let id = id.to_string();
        let s = self.call(|mut cl| async move {
            cl.container_status(ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
        });
        let st = s.status.expect("a status");
        (st.state, st.exit_code, st.reason)
    }

    /// Waits (bounded) until the container has exited; returns its exit code.
    fn wait_exited(&self, id: &str) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (state, code, _) = self.container_status(id);
            if state == ContainerState::ContainerExited as i32 {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never exited (state {state})\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> (i32, String, String) {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        };
        let r = self.call(|mut cl| async move { cl.exec_sync(req).await });
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    fn stop_and_remove_pod(&self, pod: &str) {
        // kubelet retries StopPodSandbox until it succeeds; so does this. After a disaster
        // containerd may still be processing the exits (its shim already gone) and fail
        // the first attempt ("ttrpc: closed").
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let id = pod.to_string();
            let r = self.try_call(|mut cl| async move {
                cl.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id })
                    .await
            });
            match r {
                Ok(_) => break,
                Err(s) if Instant::now() < deadline => {
                    eprintln!("StopPodSandbox failed, retrying: {s}");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(s) => panic!("CRI call failed: {s}\n{}", self.log()),
            }
        }
        let id = pod.to_string();
        self.call(|mut cl| async move {
            cl.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await
        });
    }

    /// A container's log file, as the CRI plugin wrote it: `TIME STREAM TAG TEXT` lines.
    fn log_file(&self, pod_config: &PodSandboxConfig, name: &str) -> String {
        let path = Path::new(&pod_config.log_directory).join(format!("{name}.log"));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The processes (other than containerd) whose command line names the directory:
    /// shims (their socket and bundle), sentries and gofers (their root and bundle).
    fn leftovers(&self) -> Vec<(i32, String)> {
        let daemon = self.daemon.as_ref().map_or(-1, |d| d.id() as i32);
        host_procs::naming(&self.dir.display().to_string(), daemon)
    }

    /// Sentries: the children of the `boot` processes `create` started (which fork the
    /// sentry into its pid namespace), not the stubs those fork.
    fn sentries(&self) -> Vec<i32> {
        let boots: Vec<i32> = self
            .leftovers()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(" boot "))
            .map(|(pid, _)| pid)
            .collect();
        host_procs::sentries(&boots)
    }

    fn gofers(&self) -> Vec<(i32, String)> {
        self.leftovers()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(" gofer "))
            .collect()
    }

    /// The shims: `containerd-shim-carapace-v1` processes naming the directory.
    fn shims(&self) -> Vec<(i32, String)> {
        self.leftovers()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-carapace-v1"))
            .collect()
    }

    fn mounts(&self) -> Vec<String> {
        host_procs::mounts_under(&self.dir.display().to_string())
    }

    /// Waits (bounded) until no sandbox process of the test is left (shims may stay a
    /// moment after their last container, as runc's do).
    fn assert_nothing_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left: Vec<_> = self
                .leftovers()
                .into_iter()
                .filter(|(_, cmd)| cmd.contains(" boot ") || cmd.contains(" gofer "))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sandbox processes left: {left:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // containerd's clean-up after a dead shim runs in the background: give it time.
        let states = || -> Vec<_> {
            std::fs::read_dir(self.dir.join("carapace-root"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name())
                .collect()
        };
        while !states().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left = states();
        assert!(
            left.is_empty(),
            "carapace state left: {left:?}\n{}",
            self.log()
        );
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        self.client = None;
        host_procs::tear_down(self.daemon.take(), || self.leftovers(), || self.mounts());
        // carapace's cgroups: the CRI gives none (no cgroup parent), so /carapace/ID.
        for ctl in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let base = ctl.path().join("carapace");
            for sub in std::fs::read_dir(&base).into_iter().flatten().flatten() {
                let name = sub.file_name().to_string_lossy().into_owned();
                if name.len() == 64 && sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kill9(pid: i32) {
    let r = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(r.success(), "kill -KILL {pid}");
}

fn setup(tag: &str) -> Option<Cri> {
    if let Some(why) = missing_tools() {
        eprintln!("SKIP CRI test: {why}");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("carapace-cri-{tag}-{}", std::process::id()));
    Some(Cri::start(dir))
}

#[test]
fn a_pod_of_two_containers_runs_in_one_sentry() {
    let Some(c) = setup("pod") else { return };
    let (pod, pod_config) = c.run_pod("two");
    assert_eq!(c.sentries().len(), 1, "{:#?}", c.leftovers());

    let one = c.create_container(
        &pod,
        &pod_config,
        "one",
        &[
            "sh",
            "-c",
            "echo one-out; echo one-err >&2; cat /etc/whoami; exec sleep 1000",
        ],
    );
    let two = c.create_container(
        &pod,
        &pod_config,
        "two",
        // Held until the test lets it go (the CRI deletes a container's task, and so its
        // gofer, as soon as it exits).
        &[
            "sh",
            "-c",
            "echo two-out; while [ ! -e /tmp/go ]; do sleep 1; done; exit 3",
        ],
    );
    c.start_container(&one);
    c.start_container(&two);

    // Both containers in the pod's one sentry; a gofer for each container and the pause;
    // one shim for the pod.
    assert_eq!(c.sentries().len(), 1, "{:#?}", c.leftovers());
    assert_eq!(
        c.gofers().len(),
        3,
        "{:#?}\none: {:?} {}\ntwo: {:?} {}\n{}",
        c.gofers(),
        c.container_status(&one),
        c.log_file(&pod_config, "one"),
        c.container_status(&two),
        c.log_file(&pod_config, "two"),
        c.log()
    );
    assert_eq!(c.shims().len(), 1, "{:#?}", c.shims());

    // UpdateContainerResources reaches `carapace update` through the shim: the
    // container's cgroup (recorded in its state directory) takes the new limit.
    let cgroup = std::fs::read_to_string(c.dir.join("carapace-root").join(&one).join("cgroup"))
        .expect("the container's cgroup record");
    let id = one.clone();
    c.call(|mut cl| async move {
        cl.update_container_resources(k8s_cri::v1::UpdateContainerResourcesRequest {
            container_id: id,
            linux: Some(k8s_cri::v1::LinuxContainerResources {
                memory_limit_in_bytes: 256 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    });
    let limit = Path::new("/sys/fs/cgroup/memory")
        .join(cgroup.trim().trim_start_matches('/'))
        .join("memory.limit_in_bytes");
    // (Checked where the memory controller is a v1 hierarchy, as on these machines.)
    if Path::new("/sys/fs/cgroup/memory").is_dir() {
        let v = std::fs::read_to_string(&limit).expect("read the memory limit");
        assert_eq!(v.trim(), (256u64 << 20).to_string(), "{}", limit.display());
    }

    let (code, out, err) = c.exec_sync(
        &one,
        &["sh", "-c", "echo exec-out; cat /etc/whoami; exit 4"],
    );
    assert_eq!(code, 4, "stdout {out:?} stderr {err:?}\n{}", c.log());
    assert_eq!(out, "exec-out\nbusybox image\n");

    let (code, _, err) = c.exec_sync(&two, &["touch", "/tmp/go"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.wait_exited(&two), 3);
    let (state, _, _) = c.container_status(&one);
    assert_eq!(state, ContainerState::ContainerRunning as i32);

    // The CRI's log files: `TIME STREAM F TEXT`.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let log = c.log_file(&pod_config, "one");
        if log.contains(" stdout F busybox image") {
            assert!(log.contains(" stdout F one-out"), "{log}");
            assert!(log.contains(" stderr F one-err"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "log of one: {log:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = c.log_file(&pod_config, "two");
    assert!(log.contains(" stdout F two-out"), "{log:?}");

    let id = two.clone();
    c.call(|mut cl| async move {
        cl.remove_container(RemoveContainerRequest { container_id: id })
            .await
    });
    c.stop_pod_sandbox_and_check(&pod, &one);
}

impl Cri {
    /// StopPodSandbox stops `running` too; RemovePodSandbox removes everything.
    fn stop_pod_sandbox_and_check(&self, pod: &str, running: &str) {
        self.stop_and_remove_pod(pod);
        let r = self.try_call(|mut cl| {
            let id = running.to_string();
            async move {
                cl.container_status(ContainerStatusRequest {
                    container_id: id,
                    verbose: false,
                })
                .await
            }
        });
        assert!(r.is_err(), "the container outlived its pod: {r:?}");
        self.assert_nothing_running();
    }
}

/// A pod with one long-running app container; `disaster` strikes mid-run; containerd must
/// still report the app container as exited and remove the pod, leaving nothing behind.
fn survives(tag: &str, disaster: impl FnOnce(&Cri, &str, &str)) {
    let Some(c) = setup(tag) else { return };
    let (pod, pod_config) = c.run_pod(tag);
    let app = c.create_container(&pod, &pod_config, "app", &["sleep", "1000"]);
    c.start_container(&app);
    assert_eq!(c.gofers().len(), 2, "{:#?}", c.gofers());
    disaster(&c, &pod, &app);
    c.stop_pod_sandbox_and_check(&pod, &app);
}

#[test]
fn killing_the_sentry_stops_the_pod() {
    survives("sentry", |c, _pod, app| {
        let sentries = c.sentries();
        assert_eq!(sentries.len(), 1, "{:#?}", c.leftovers());
        kill9(sentries[0]);
        // The app container's waiter sees the sentry go: the container has exited.
        assert_eq!(c.wait_exited(app), 137);
    });
}

#[test]
fn killing_the_pods_shim_stops_its_containers() {
    survives("shim", |c, _pod, app| {
        let shims: Vec<i32> = c.shims().into_iter().map(|(pid, _)| pid).collect();
        assert_eq!(shims.len(), 1, "one shim per pod: {:#?}", c.shims());
        kill9(shims[0]);
        // containerd cleans up after the dead shim (its `delete` action per container).
        c.wait_exited(app);
    });
}

#[test]
fn killing_a_gofer_still_lets_the_pod_go() {
    survives("gofer", |c, _pod, app| {
        let gofer: Vec<i32> = c
            .gofers()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(app))
            .map(|(pid, _)| pid)
            .collect();
        assert_eq!(gofer.len(), 1, "{:#?}", c.gofers());
        kill9(gofer[0]);
        // A running `sleep` does not notice its gofer is gone: stopping the container
        // must still work.
        let id = app.to_string();
        c.call(|mut cl| async move {
            cl.stop_container(k8s_cri::v1::StopContainerRequest {
                container_id: id,
                timeout: 10,
            })
            .await
        });
        c.wait_exited(app);
    });
}
