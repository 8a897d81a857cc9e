//! End-to-end: `--network=sandbox` between two network namespaces joined by a veth pair
//! made here (addresses only on that pair, IPv4 and IPv6). The sandbox runs in one
//! namespace and takes its interface over; ordinary programs run in the other. A server in
//! the sandbox is reached from outside and the other way round (HTTP, UDP, ping, over IPv4
//! and over IPv6 with the sandbox's own neighbour discovery); in `--network=none`
//! nothing outside is reachable; and the sentry's host descriptors hold no socket for the
//! application, only the packet endpoint. Each test makes its own pair and removes it
//! (and every process it started) when it ends, failing or not.
//!
//! Needs root and iproute2; skipped with a message otherwise.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tests::{c_build_dir, carapace, compile_c, parse_summary, run, syscalls_dir, Run};

const PYTHON: &str = "/usr/bin/python3";
const TIMEOUT: Duration = Duration::from_secs(120);

/// Two namespaces and the veth pair between them: the sandbox's side `10.N.M.2/24` with a
/// default route through the outside's `10.N.M.1/24`; and over IPv6 `fd00:N:M::2/64` and
/// `fe80::2/64`, with a default route through the outside's link-local `fe80::1`, whose
/// side also has `fd00:N:M::1/64` (on the sandbox's prefix) and `fd01:N:M::1/64` (only
/// reached through that router). The IPv6 addresses are added without duplicate address
/// detection (usable at once) and the kernel makes no link-local addresses of its own.
struct Pair {
    inside: String,
    outside: String,
    in_addr: String,
    out_addr: String,
    in6: String,
    out6: String,
    far6: String,
    /// The outside's end of the pair (the scope of link-local addresses there).
    out_dev: String,
    /// The sandbox's end of the pair.
    inside_dev: String,
    children: Vec<Child>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// `None` (with the reason printed) where these tests cannot run.
fn pair() -> Option<Pair> {
    if !nix_is_root() {
        eprintln!("SKIPPED: needs root for network namespaces");
        return None;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED: iproute2 (`ip`) is not installed");
        return None;
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let tag = format!("{}{n}", pid % 100_000);
    let (vi, vo) = (format!("cvi{tag}"), format!("cvo{tag}"));
    let p = Pair {
        inside: format!("cnsi{tag}"),
        outside: format!("cnso{tag}"),
        in_addr: format!("10.{}.{}.2", 100 + pid % 100, n % 250),
        out_addr: format!("10.{}.{}.1", 100 + pid % 100, n % 250),
        // Written as Linux and Python print them, to compare with what they print.
        in6: v6(&format!("fd00:{:x}:{:x}::2", pid % 65536, n)),
        out6: v6(&format!("fd00:{:x}:{:x}::1", pid % 65536, n)),
        far6: v6(&format!("fd01:{:x}:{:x}::1", pid % 65536, n)),
        out_dev: vo.clone(),
        inside_dev: vi.clone(),
        children: Vec::new(),
    };
    // From here on, Drop removes whatever was made.
    let setup = || -> Result<(), String> {
        ip(&["netns", "add", &p.inside])?;
        ip(&["netns", "add", &p.outside])?;
        ip(&[
            "link", "add", &vi, "netns", &p.inside, "type", "veth", "peer", "name", &vo, "netns",
            &p.outside,
        ])?;
        let sides = [
            (&p.inside, &vi, &p.in_addr, vec![p.in6.as_str(), "fe80::2"]),
            (
                &p.outside,
                &vo,
                &p.out_addr,
                vec![p.out6.as_str(), p.far6.as_str(), "fe80::1"],
            ),
        ];
        for (ns, dev, addr, addrs6) in sides {
            ip(&["-n", ns, "link", "set", dev, "addrgenmode", "none"])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            for a in addrs6 {
                let a = format!("{a}/64");
                ip(&["-n", ns, "-6", "addr", "add", &a, "dev", dev, "nodad"])?;
            }
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            &p.inside,
            "route",
            "add",
            "default",
            "via",
            &p.out_addr,
        ])?;
        ip(&[
            "-n", &p.inside, "-6", "route", "add", "default", "via", "fe80::1", "dev", &vi,
        ])
    };
    if let Err(e) = setup() {
        panic!("setting up the namespaces: {e}");
    }
    Some(p)
}

/// An IPv6 address in its canonical text form (RFC 5952).
fn v6(a: &str) -> String {
    a.parse::<std::net::Ipv6Addr>()
        .unwrap_or_else(|e| panic!("{a}: {e}"))
        .to_string()
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Drop for Pair {
    fn drop(&mut self) {
        for c in &mut self.children {
            // Each was started in a process group of its own: end all of it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        let _ = ip(&["netns", "del", &self.inside]);
        let _ = ip(&["netns", "del", &self.outside]);
    }
}

impl Pair {
    /// `ip netns exec NS program args…`, run to the end.
    fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program])
            .args(args)
            .current_dir("/");
        run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `carapace do --network=MODE program args…` in the inside namespace.
    fn sandboxed(&self, mode: &str, program: &str, args: &[&str]) -> Run {
        let bin = carapace().unwrap_or_else(|e| panic!("{e}"));
        let bin = bin.to_string_lossy().into_owned();
        let network = format!("--network={mode}");
        let mut all = vec!["do", network.as_str(), program];
        all.extend_from_slice(args);
        self.exec(&self.inside, &bin, &all)
    }

    /// Start a long-running program in `ns` and return the first line it prints (its
    /// "ready" line); it is killed when the pair is dropped.
    fn start(&mut self, ns: &str, program: &str, args: &[&str]) -> (u32, String) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program])
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
        let stdout = child.stdout.take();
        let pid = child.id();
        self.children.push(child);
        let mut line = String::new();
        if let Some(out) = stdout {
            let mut r = BufReader::new(out);
            let _ = r.read_line(&mut line);
            // Keep draining so the program never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
        }
        (pid, line.trim().to_string())
    }

    /// The same program in the sandbox (`carapace do --network=MODE`).
    fn start_sandboxed(&mut self, mode: &str, program: &str, args: &[&str]) -> (u32, String) {
        let bin = carapace().unwrap_or_else(|e| panic!("{e}"));
        let bin = bin.to_string_lossy().into_owned();
        let network = format!("--network={mode}");
        let mut all = vec!["do", network.as_str(), program];
        all.extend_from_slice(args);
        let inside = self.inside.clone();
        self.start(&inside, &bin, &all)
    }

    /// `HTTP_SERVER_PY` bound to `bind`, outside; its port.
    fn http_server_outside(&mut self, bind: &str) -> String {
        let outside = self.outside.clone();
        let args = ["-c", HTTP_SERVER_PY, bind, "/usr/lib/python3.11"];
        port_of(&self.start(&outside, PYTHON, &args).1)
    }

    /// `HTTP_SERVER_PY` bound to `bind`, in a `--network=sandbox` sandbox; its port.
    fn http_server_sandboxed(&mut self, bind: &str) -> String {
        let args = ["-c", HTTP_SERVER_PY, bind, "/usr/lib/python3.11"];
        port_of(&self.start_sandboxed("sandbox", PYTHON, &args).1)
    }
}

fn ok(r: &Run) -> &str {
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    r.stdout.trim()
}

/// An HTTP client that retries until the server answers, then compares the body with a
/// file.
const FETCH_PY: &str = r#"
import sys, time, urllib.request
url, want = sys.argv[1], sys.argv[2]
for _ in range(300):
    try:
        body = urllib.request.urlopen(url, timeout=10).read()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("never answered")
print(len(body), body == open(want, "rb").read())
"#;

/// A quiet HTTP server on `argv[1]` (IPv6 if it has a colon) serving `argv[2]`; prints
/// "ready PORT".
const HTTP_SERVER_PY: &str = r#"
import http.server, functools, socket, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
handler = functools.partial(Quiet, directory=sys.argv[2])
srv = Server((sys.argv[1], 0), handler)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever()
"#;

const FILE: &str = "/usr/lib/python3.11/http/server.py";

fn have_python() -> bool {
    if Path::new(FILE).exists() && Path::new(PYTHON).exists() {
        return true;
    }
    eprintln!("SKIPPED: python3.11 is not installed (scripts/deps.sh installs it)");
    false
}

fn port_of(ready: &str) -> String {
    ready
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("not a ready line: {ready:?}"))
        .to_string()
}

#[test]
fn http_server_in_the_sandbox_is_reached_from_outside() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let port = p.http_server_sandboxed("0.0.0.0");
    let url = format!("http://{}:{port}/http/server.py", p.in_addr);
    let outside = p.outside.clone();
    let r = p.exec(&outside, PYTHON, &["-c", FETCH_PY, &url, FILE]);
    let size = std::fs::metadata(FILE).map(|m| m.len()).unwrap_or(0);
    assert_eq!(ok(&r), format!("{size} True"), "{}", r.dump());
    // curl too, when it is there.
    if Path::new("/usr/bin/curl").exists() {
        let r = p.exec(
            &outside,
            "curl",
            &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
        );
        assert_eq!(ok(&r), "200");
    }
}

#[test]
fn urllib_in_the_sandbox_fetches_from_outside() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let out_addr = p.out_addr.clone();
    let port = p.http_server_outside(&out_addr);
    let url = format!("http://{out_addr}:{port}/http/server.py");
    let r = p.sandboxed("sandbox", PYTHON, &["-c", FETCH_PY, &url, FILE]);
    let size = std::fs::metadata(FILE).map(|m| m.len()).unwrap_or(0);
    assert_eq!(ok(&r), format!("{size} True"));
    // The interface got its addresses back when the sandbox ended.
    let r = p.exec(&p.inside, "ip", &["-4", "addr"]);
    assert!(ok(&r).contains(&p.in_addr), "{}", r.dump());
}

#[test]
fn http_server_in_the_sandbox_is_reached_over_ipv6() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let port = p.http_server_sandboxed("::");
    let outside = p.outside.clone();
    let size = std::fs::metadata(FILE).map(|m| m.len()).unwrap_or(0);
    // At its global address, and at its link-local one (the outside kernel resolves
    // both with neighbour solicitations the sandbox answers).
    for host in [p.in6.clone(), format!("fe80::2%{}", p.out_dev)] {
        let url = format!("http://[{host}]:{port}/http/server.py");
        let r = p.exec(&outside, PYTHON, &["-c", FETCH_PY, &url, FILE]);
        assert_eq!(ok(&r), format!("{size} True"), "{url}: {}", r.dump());
    }
    if Path::new("/usr/bin/curl").exists() {
        let url = format!("http://[{}]:{port}/http/server.py", p.in6);
        let r = p.exec(
            &outside,
            "curl",
            &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
        );
        assert_eq!(ok(&r), "200", "{}", r.dump());
    }
    // The outside learnt the sandbox's link-layer address from its advertisements.
    let r = p.exec(&outside, "ip", &["-6", "neigh", "show", &p.in6]);
    assert!(ok(&r).contains("lladdr"), "{}", r.dump());
    // smoltcp answers echo requests to the sandbox's IPv6 addresses.
    if Path::new("/bin/busybox").exists() {
        let r = p.exec(&outside, "/bin/busybox", &["ping6", "-c1", "-W5", &p.in6]);
        assert!(ok(&r).contains("1 packets received"), "{}", r.dump());
    }
}

#[test]
fn clients_in_the_sandbox_fetch_over_ipv6() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let port = p.http_server_outside("::");
    let size = std::fs::metadata(FILE).map(|m| m.len()).unwrap_or(0);
    // On the sandbox's prefix (the neighbour resolved directly), and beyond it (through
    // the default route's link-local router).
    for host in [p.out6.clone(), p.far6.clone()] {
        let url = format!("http://[{host}]:{port}/http/server.py");
        let r = p.sandboxed("sandbox", PYTHON, &["-c", FETCH_PY, &url, FILE]);
        assert_eq!(ok(&r), format!("{size} True"), "{url}: {}", r.dump());
    }
    if Path::new("/usr/bin/curl").exists() {
        let url = format!("http://[{}]:{port}/http/server.py", p.far6);
        let r = p.sandboxed(
            "sandbox",
            "/usr/bin/curl",
            &["-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
        );
        assert_eq!(ok(&r), "200", "{}", r.dump());
    }
    // The interface got its IPv6 addresses and its default route back.
    let inside = p.inside.clone();
    let r = p.exec(&inside, "ip", &["-6", "addr"]);
    let addrs = ok(&r);
    assert!(addrs.contains(&format!("inet6 {}/64", p.in6)), "{addrs}");
    assert!(addrs.contains("inet6 fe80::2/64"), "{addrs}");
    let r = p.exec(&inside, "ip", &["-6", "route"]);
    assert!(ok(&r).contains("default via fe80::1"), "{}", r.dump());
}

#[test]
fn ipv6_addresses_and_routes_inside() {
    let Some(p) = pair() else { return };
    let Some(ip_bin) = ["/usr/sbin/ip", "/sbin/ip", "/bin/ip"]
        .into_iter()
        .find(|b| Path::new(b).exists())
    else {
        eprintln!("SKIPPED: iproute2's ip is not at a known path");
        return;
    };
    // iproute2's own `ip` in the sandbox, over netlink (RTM_GETADDR/RTM_GETROUTE for
    // AF_INET6).
    let r = p.sandboxed("sandbox", ip_bin, &["-6", "addr"]);
    let addrs = ok(&r);
    assert!(
        addrs.contains(&format!("inet6 {}/64 scope global", p.in6)),
        "{addrs}"
    );
    assert!(addrs.contains("inet6 fe80::2/64 scope link"), "{addrs}");
    assert!(addrs.contains("inet6 ::1/128 scope host"), "{addrs}");
    let r = p.sandboxed("sandbox", ip_bin, &["-6", "route"]);
    let routes = ok(&r);
    assert!(routes.contains("default via fe80::1"), "{routes}");
    let mut net = p.in6.parse::<std::net::Ipv6Addr>().unwrap().octets();
    net[8..].fill(0);
    let prefix = format!("{}/64", std::net::Ipv6Addr::from(net));
    assert!(routes.contains(&prefix), "{prefix}: {routes}");
    // /proc/net/if_inet6: the global address of scope 00, the link-local of scope 20.
    let r = p.sandboxed("sandbox", "/bin/cat", &["/proc/net/if_inet6"]);
    let table = ok(&r);
    let hex = |a: &str| -> String {
        a.parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let row = |a: &str| table.lines().find(|l| l.starts_with(&hex(a))).unwrap_or("");
    assert!(row(&p.in6).contains(" 02 40 00 80 "), "{table}");
    assert!(row("fe80::2").contains(" 02 40 20 80 "), "{table}");
    // /proc/net/ipv6_route: the default route through the link-local router.
    let r = p.sandboxed("sandbox", "/bin/cat", &["/proc/net/ipv6_route"]);
    let table = ok(&r);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&format!("{} 00 ", hex("::")))
                && l.contains(&hex("fe80::1"))
                && l.ends_with(&format!(" {}", p.inside_dev))),
        "{table}"
    );
}

/// A UDP echo server on `argv[1]` (IPv6 if it has a colon): "ready PORT", then each
/// datagram goes back upper-cased.
const UDP_ECHO_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
print("ready", s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d.upper(), a)
"#;

const UDP_CLIENT_PY: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for i in range(60):
    s.sendto(b"hello %d" % i, (sys.argv[1], int(sys.argv[2])))
    try:
        d, a = s.recvfrom(2048)
        print(d.decode().split()[0], a[0] == sys.argv[1])
        break
    except socket.timeout:
        pass
"#;

#[test]
fn udp_both_ways() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let (outside, out_addr, in_addr) = (p.outside.clone(), p.out_addr.clone(), p.in_addr.clone());
    // Outside server, sandboxed client.
    let (_, ready) = p.start(&outside, PYTHON, &["-c", UDP_ECHO_PY, &out_addr]);
    let r = p.sandboxed(
        "sandbox",
        PYTHON,
        &["-c", UDP_CLIENT_PY, &out_addr, &port_of(&ready)],
    );
    assert_eq!(ok(&r), "HELLO True");
    // Sandboxed server, outside client.
    let (_, ready) = p.start_sandboxed("sandbox", PYTHON, &["-c", UDP_ECHO_PY, "0.0.0.0"]);
    let r = p.exec(
        &outside,
        PYTHON,
        &["-c", UDP_CLIENT_PY, &in_addr, &port_of(&ready)],
    );
    assert_eq!(ok(&r), "HELLO True");
}

#[test]
fn udp_both_ways_over_ipv6() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let (outside, out6, in6) = (p.outside.clone(), p.out6.clone(), p.in6.clone());
    // Outside server on the sandbox's prefix, sandboxed client.
    let (_, ready) = p.start(&outside, PYTHON, &["-c", UDP_ECHO_PY, "::"]);
    let r = p.sandboxed(
        "sandbox",
        PYTHON,
        &["-c", UDP_CLIENT_PY, &out6, &port_of(&ready)],
    );
    assert_eq!(ok(&r), "HELLO True", "{}", r.dump());
    // Sandboxed server, outside client: the reply comes from the address asked.
    let (_, ready) = p.start_sandboxed("sandbox", PYTHON, &["-c", UDP_ECHO_PY, "::"]);
    let r = p.exec(
        &outside,
        PYTHON,
        &["-c", UDP_CLIENT_PY, &in6, &port_of(&ready)],
    );
    assert_eq!(ok(&r), "HELLO True", "{}", r.dump());
}

#[test]
fn ping_from_inside_and_interfaces_inside() {
    let Some(p) = pair() else { return };
    if !Path::new("/bin/busybox").exists() {
        eprintln!("SKIPPED: busybox is not installed");
        return;
    }
    let r = p.sandboxed("sandbox", "/bin/busybox", &["ping", "-c1", &p.out_addr]);
    assert!(ok(&r).contains("1 packets received"), "{}", r.dump());
    // What the application sees of its network: the interface, its address and the
    // routes, through netlink.
    let r = p.sandboxed("sandbox", "/bin/busybox", &["ip", "addr"]);
    assert!(
        ok(&r).contains(&format!("inet {}/24", p.in_addr)),
        "{}",
        r.dump()
    );
    let r = p.sandboxed("sandbox", "/bin/busybox", &["ip", "route"]);
    assert!(
        ok(&r).contains(&format!("default via {}", p.out_addr)),
        "{}",
        r.dump()
    );
    // /proc/net/route, as busybox's netstat reads it.
    let r = p.sandboxed("sandbox", "/bin/busybox", &["netstat", "-rn"]);
    let route = ok(&r);
    assert!(
        route
            .lines()
            .any(|l| l.starts_with("0.0.0.0") && l.contains(&p.out_addr)),
        "{route}"
    );
    // And from outside, the sandbox answers for its address itself.
    let r = p.sandboxed("sandbox", "/bin/busybox", &["ip", "-4", "addr"]);
    assert!(ok(&r).contains(&p.in_addr));
}

#[test]
fn none_mode_reaches_nothing_outside() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let out_addr = p.out_addr.clone();
    let port = p.http_server_outside(&out_addr);
    // The same namespace, the same server: reachable natively, not from a `none` sandbox.
    let script = r#"
import socket, sys, errno
for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        if kind == socket.SOCK_DGRAM:
            s.send(b"x")
        print("connected")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#;
    let inside = p.inside.clone();
    let r = p.exec(&inside, PYTHON, &["-c", script, &out_addr, &port]);
    assert_eq!(ok(&r), "connected\nconnected");
    let r = p.sandboxed("none", PYTHON, &["-c", script, &out_addr, &port]);
    assert_eq!(ok(&r), "ENETUNREACH\nENETUNREACH");
    let r = p.sandboxed("none", "/bin/busybox", &["ping", "-c1", "-W1", &out_addr]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
}

/// Socket inodes listed in `/proc/PID/net/NAME`, in column `col`.
fn inodes(pid: u32, name: &str, col: usize) -> Vec<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/net/{name}"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect()
}

/// `pid` and its descendants.
fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(c) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{c}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(p) && !out.contains(&c) {
                out.push(c);
            }
        }
        i += 1;
    }
    out
}

#[test]
fn the_application_gets_no_host_socket() {
    let Some(mut p) = pair() else { return };
    if !have_python() {
        return;
    }
    let (out_addr, out6) = (p.out_addr.clone(), p.out6.clone());
    // Dual-stack: IPv4 and IPv6 clients reach it.
    let port = p.http_server_outside("::");
    // Sockets of every kind the stack has, open at once, two of them connected outside
    // (over IPv4 and over IPv6).
    let script = r#"
import socket, sys, time
keep = []
l = socket.socket(); l.bind(("0.0.0.0", 0)); l.listen(); keep.append(l)
c = socket.create_connection((sys.argv[1], int(sys.argv[3]))); keep.append(c)
c6 = socket.create_connection((sys.argv[2], int(sys.argv[3]))); keep.append(c6)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 0)); keep.append(u)
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); keep.append(u6)
keep.append(socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
open("/proc/sys/net/ipv4/ping_group_range", "w").write("0 2147483647")
keep.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP))
keep.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
print("ready", len(keep), flush=True)
time.sleep(600)
"#;
    let (pid, ready) =
        p.start_sandboxed("sandbox", PYTHON, &["-c", script, &out_addr, &out6, &port]);
    assert_eq!(ready, "ready 8");
    // `ip netns exec` became `carapace do`; the sentry and the gofer are its children,
    // and the application's stubs the sentry's.
    let procs = family(pid);
    let mut sockets = Vec::new();
    for p in &procs {
        for e in std::fs::read_dir(format!("/proc/{p}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                sockets.push((*p, ino.parse::<u64>().unwrap_or(0)));
            }
        }
    }
    assert!(
        !sockets.is_empty(),
        "no process found under {pid}: {procs:?}"
    );
    // The tables of every namespace these processes are in (the sentry has one of its own).
    let (mut unix, mut packet, mut inet) = (Vec::new(), Vec::new(), Vec::new());
    for p in &procs {
        unix.extend(inodes(*p, "unix", 6));
        packet.extend(inodes(*p, "packet", 8));
        for t in ["tcp", "tcp6", "udp", "udp6", "raw", "raw6", "icmp", "icmp6"] {
            inet.extend(inodes(*p, t, 9));
        }
    }
    let mut packets = std::collections::BTreeSet::new();
    for (p, ino) in &sockets {
        assert!(
            !inet.contains(ino),
            "process {p} holds an inet socket {ino}"
        );
        if packet.contains(ino) {
            packets.insert(*ino);
        } else {
            assert!(
                unix.contains(ino),
                "process {p}: socket {ino} is neither a unix socket nor the packet endpoint"
            );
        }
    }
    assert_eq!(packets.len(), 1, "sockets: {sockets:?}");
}

#[test]
fn icmp_syscall_program_in_sandbox_mode() {
    let Some(p) = pair() else { return };
    // The syscall suite's ICMP program (run natively and in `none` mode by
    // tests/syscalls.rs), here over the sandbox's stack with the link attached.
    let out = c_build_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("icmp-netsandbox");
    compile_c(&syscalls_dir().join("icmp.c"), &out).unwrap_or_else(|e| panic!("{e}"));
    let r = p.sandboxed("sandbox", &out.to_string_lossy(), &[]);
    let summary = parse_summary(&r.stdout);
    assert!(matches!(summary, Some((n, 0)) if n > 0), "{}", r.dump());
}

/// A busybox bundle under the system's temp directory whose process runs `script`
/// and whose spec joins the network namespace `netns` (by its `ip netns` path).
struct Bundle(std::path::PathBuf);

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn busybox_bundle(tag: &str, netns: &str, script: &str) -> Bundle {
    let dir = std::env::temp_dir().join(format!("carapace-netoci-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let b = Bundle(dir.clone());
    let rootfs = dir.join("bundle/rootfs");
    for d in ["bin", "etc", "tmp", "proc", "dev", "sys"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "wget", "ip", "wc", "ping"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    let bin = carapace().unwrap_or_else(|e| panic!("{e}"));
    let bundle = dir.join("bundle");
    let st = Command::new(&bin)
        .args(["spec", "--bundle"])
        .arg(&bundle)
        .status()
        .expect("carapace spec");
    assert!(st.success());
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("config.json")).expect("json");
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    spec["linux"]["namespaces"] = serde_json::json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "network", "path": format!("/var/run/netns/{netns}")},
    ]);
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write");
    b
}

fn oci_run(b: &Bundle, global: &[&str], id: &str) -> Run {
    let bin = carapace().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(bin);
    cmd.arg("--root")
        .arg(b.0.join("root"))
        .args(global)
        .args(["run", "--bundle"])
        .arg(b.0.join("bundle"))
        .arg(id)
        .current_dir("/");
    run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn oci_joins_the_spec_network_namespace() {
    let Some(mut p) = pair() else { return };
    if !have_python() || !Path::new("/bin/busybox").exists() {
        return;
    }
    let out_addr = p.out_addr.clone();
    let port = p.http_server_outside(&out_addr);
    let url = format!("http://{out_addr}:{port}/http/server.py");
    let script = format!("ip -4 addr; wget -q -O - {url} | wc -c");
    let size = std::fs::metadata(FILE).map(|m| m.len()).unwrap_or(0);
    // --network none: loopback only, the namespace's interface is not the container's.
    let b = busybox_bundle("none", &p.inside, &script);
    let r = oci_run(&b, &["--network", "none"], "netnone");
    assert!(!r.stdout.contains(&p.in_addr), "{}", r.dump());
    assert!(!r.stdout.contains(&size.to_string()), "{}", r.dump());
    // The default with a namespace that has an interface: sandbox.
    let b = busybox_bundle("default", &p.inside, &script);
    let r = oci_run(&b, &[], "netdefault");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(
        r.stdout.contains(&format!("inet {}/24", p.in_addr)),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout.trim_end().ends_with(&size.to_string()),
        "{}",
        r.dump()
    );
}
