#!/usr/bin/env python3
"""A console-socket peer, as podman's conmon or containerd's shim is one (runc's protocol).

usage: console_socket.py SOCKET REPLY -- CREATE... [-- START...]

Listens on the unix socket SOCKET, runs CREATE (a `carapace create/run/exec ...
--console-socket SOCKET` command line), receives the pty master it sends (one message, the
fd in SCM_RIGHTS), then runs START if given. It copies everything read from the master to
its stdout as it comes, and the first time the output contains "hi" it types REPLY and a
carriage return. It stops when the master hangs up (every slave closed) and prints the
exit statuses of CREATE and START on stderr as `create=N start=N`.
"""
import array
import os
import select
import socket
import subprocess
import sys


def main():
    path, reply = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    if not rest or rest[0] != "--":
        sys.exit("usage: console_socket.py SOCKET REPLY -- CREATE... [-- START...]")
    rest = rest[1:]
    start = None
    if "--" in rest:
        i = rest.index("--")
        rest, start = rest[:i], rest[i + 1:]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    create = subprocess.Popen(rest)
    srv.settimeout(60)
    conn, _ = srv.accept()
    msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_LEN(4 * 4))
    fds = array.array("i")
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if len(fds) != 1:
        sys.exit("expected one fd, got %d (data %r)" % (len(fds), msg))
    master = fds[0]
    sys.stderr.write("name=%s\n" % msg.decode(errors="replace"))
    create_status = create.wait() if start is not None else None
    start_status = None
    if start is not None:
        start_status = subprocess.call(start)
    out = b""
    sent = False
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            sys.stderr.write("timed out waiting for output\n")
            break
        try:
            data = os.read(master, 4096)
        except OSError:
            break  # EIO: the sandbox closed its terminal
        if not data:
            break
        out += data
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        if not sent and b"hi" in out:
            os.write(master, reply.encode() + b"\r")
            sent = True
    if create_status is None:
        create_status = create.wait()
    sys.stderr.write("create=%s start=%s\n" % (create_status, start_status))


main()
