//! End-to-end: real programs using Unix-domain sockets under `carapace do`, and the
//! confinement of those sockets (the sandbox reaches no host socket, by path or by
//! abstract name). Each Python script runs natively too, so a script that misbehaves
//! natively shows up as a bad test rather than a sandbox bug.

use std::os::unix::net::UnixListener;
use std::path::Path;

use tests::{run_native, run_sandboxed, Run};

/// The interpreter by path: a `python3` found first on PATH may be pyenv's shim script.
const PYTHON: &str = "/usr/bin/python3";

fn python(sandboxed: bool, script: &str) -> Run {
    let args = ["-c", script];
    let r = if sandboxed {
        run_sandboxed(&[], Path::new(PYTHON), &args)
    } else {
        run_native(Path::new(PYTHON), &args)
    };
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `script` natively and in the sandbox; both must exit 0 and print `expected`.
fn both(script: &str, expected: &str) {
    for sandboxed in [false, true] {
        let run = python(sandboxed, script);
        assert_eq!(run.code(), Some(0), "sandboxed={sandboxed}\n{}", run.dump());
        assert_eq!(
            run.stdout.trim(),
            expected,
            "sandboxed={sandboxed}\n{}",
            run.dump()
        );
    }
}

/// socketpair, passing a descriptor with SCM_RIGHTS, and a forked child talking back.
const PAIR_PY: &str = r#"
import os, socket
a, b = socket.socketpair()
a.sendall(b"over the pair")
got = b.recv(100)
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [w])
os.close(w)
msg, fds, _, _ = socket.recv_fds(b, 10, 4)
os.write(fds[0], b"through a passed fd")
os.close(fds[0])
piped = os.read(r, 100)
pid = os.fork()
if pid == 0:
    b.sendall(b"from the child")
    os._exit(0)
child = a.recv(100)
os.waitpid(pid, 0)
print(got.decode(), msg.decode(), piped.decode(), child.decode(), sep="|")
"#;

#[test]
fn python_socketpair_passes_data_and_descriptors() {
    both(
        PAIR_PY,
        "over the pair|fd|through a passed fd|from the child",
    );
}

/// A server on a path in /tmp and clients from a thread and a forked process.
const SERVER_PY: &str = r#"
import os, socket, stat, threading, tempfile
d = tempfile.mkdtemp()
path = os.path.join(d, "srv.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
assert stat.S_ISSOCK(os.stat(path).st_mode)
def client(tag):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    c.sendall(tag.encode())
    reply = c.recv(100)
    c.close()
    return reply
# The thread starts first: the fork is made from a multithreaded process (which used to
# kill the parent with SIGSEGV now and then; tests/syscalls/fork_threads.c).
out = []
t = threading.Thread(target=lambda: out.append(client("thread")))
t.start()
pid = os.fork()
if pid == 0:
    os._exit(0 if client("child") == b"echo:child" else 1)
for _ in range(2):
    conn, _ = srv.accept()
    conn.sendall(b"echo:" + conn.recv(100))
    conn.close()
t.join()
_, status = os.waitpid(pid, 0)
srv.close()
os.unlink(path)
try:
    socket.socket(socket.AF_UNIX).connect(path)
except FileNotFoundError:
    gone = "gone"
print(out[0].decode(), os.waitstatus_to_exitcode(status), gone)
"#;

#[test]
fn python_unix_server_and_clients_on_a_tmp_path() {
    both(SERVER_PY, "echo:thread 0 gone");
}

/// asyncio: a Unix server and client on one event loop (epoll, nonblocking sockets,
/// and the loop's own socketpair).
const ASYNCIO_PY: &str = r#"
import asyncio, os, tempfile
async def main():
    path = os.path.join(tempfile.mkdtemp(), "a.sock")
    async def handle(r, w):
        data = await r.readline()
        w.write(b"got " + data)
        await w.drain()
        w.close()
    srv = await asyncio.start_unix_server(handle, path)
    r, w = await asyncio.open_unix_connection(path)
    w.write(b"line\n")
    await w.drain()
    print((await r.read()).decode().strip())
    w.close()
    srv.close()
    await srv.wait_closed()
asyncio.run(main())
"#;

#[test]
fn python_asyncio_unix_server_and_client() {
    both(ASYNCIO_PY, "got line");
}

/// A socket bound on the root overlay (writes there stay in the sandbox's memory).
const OVERLAY_PY: &str = r#"
import os, socket, stat, sys
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(p)
s.listen(1)
c = socket.socket(socket.AF_UNIX)
c.connect(p)
a, _ = s.accept()
c.send(b"x")
print(a.recv(1).decode(), stat.S_ISSOCK(os.lstat(p).st_mode), os.path.basename(p) in os.listdir(os.path.dirname(p)))
"#;

#[test]
fn a_socket_bound_on_the_overlay_stays_in_the_sandbox() {
    let path = format!("/var/tmp/carapace-overlay-{}.sock", std::process::id());
    let run = run_sandboxed(&[], Path::new(PYTHON), &["-c", OVERLAY_PY, &path])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert_eq!(run.stdout.trim(), "x True True", "{}", run.dump());
    assert!(
        !Path::new(&path).exists(),
        "the sandbox's socket node reached the host at {path}"
    );
}

/// multiprocessing's Manager: a server process reached over an AF_UNIX socket.
const MANAGER_PY: &str = r#"
import multiprocessing as mp
if __name__ == "__main__":
    with mp.Manager() as m:
        d = m.dict()
        d["k"] = 41
        d["k"] += 1
        print("manager", d["k"], list(m.list(range(3))))
"#;

#[test]
fn python_multiprocessing_manager_works() {
    both(MANAGER_PY, "manager 42 [0, 1, 2]");
}

/// Tries to reach the host's sockets from inside: a path the sandbox can see (the host
/// root is visible read-only) and an abstract name. Both must fail with ECONNREFUSED,
/// because AF_UNIX sockets never leave the sentry.
const REACH_HOST_PY: &str = r#"
import socket, sys
for addr in sys.argv[1:]:
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(addr)
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except OSError as e:
        print("error", e.errno)
"#;

#[test]
fn the_sandbox_cannot_reach_host_unix_sockets() {
    // /tmp is private in the sandbox: put the host socket where the sandbox sees it.
    let host_dir = Path::new("/var/tmp").join(format!("carapace-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&host_dir);
    std::fs::create_dir_all(&host_dir).expect("make a host socket directory");
    let path = host_dir.join("host.sock");
    let _by_path = UnixListener::bind(&path).expect("bind a host socket");
    let name = format!("carapace-host-{}", std::process::id());
    let by_name = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        UnixListener::bind_addr(&addr).expect("bind a host abstract socket")
    };
    let path_arg = path.to_string_lossy().into_owned();
    let name_arg = format!("@{name}");
    let args = ["-c", REACH_HOST_PY, &path_arg, &name_arg];

    // Natively both listeners answer: the script can tell.
    let native = run_native(Path::new(PYTHON), &args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        native.stdout.trim(),
        "connected\nconnected",
        "{}",
        native.dump()
    );
    let inside = run_sandboxed(&[], Path::new(PYTHON), &args).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inside.code(), Some(0), "{}", inside.dump());
    assert_eq!(
        inside.stdout.trim(),
        "refused\nrefused",
        "{}",
        inside.dump()
    );
    drop(by_name);
    let _ = std::fs::remove_dir_all(&host_dir);
}
