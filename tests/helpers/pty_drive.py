#!/usr/bin/env python3
"""Run a command on a new host pty, as a user at a terminal would (for `podman run -it`).

usage: pty_drive.py REPLY CMD...

Copies what CMD writes to the terminal to stdout; the first time the output contains "hi"
it types REPLY and a carriage return. Prints `status=N` (the shell's view: 128+N for a
signal) once CMD has exited.
"""
import os
import pty
import select
import sys

reply, cmd = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
sent = False
while True:
    r, _, _ = select.select([fd], [], [], 60)
    if not r:
        sys.stderr.write("timed out waiting for output\n")
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break  # EIO: the command and its children closed the terminal
    if not data:
        break
    out += data
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    if not sent and b"hi" in out:
        os.write(fd, reply.encode() + b"\r")
        sent = True
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
print("status=%d" % code)
