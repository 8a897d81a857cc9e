#!/usr/bin/env python3
"""Wait for a `--pid-file` pid the way podman's conmon and containerd's shim do.

usage: subreaper_wait.py PIDFILE CMD...

Becomes a child subreaper (PR_SET_CHILD_SUBREAPER), runs CMD (e.g. `carapace exec
--detach --pid-file PIDFILE ...`), which must exit 0 and leave a pid in PIDFILE; that
process, orphaned by CMD and so reparented to us, is then waited for. Prints
`cmd=N pid=P exited=N` or `cmd=N pid=P signaled=N`.
"""
import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl: %s" % os.strerror(ctypes.get_errno()))
pidfile, cmd = sys.argv[1], sys.argv[2:]
rc = subprocess.call(cmd)
pid = int(open(pidfile).read().strip())
_, status = os.waitpid(pid, 0)
if os.WIFEXITED(status):
    print("cmd=%d pid=%d exited=%d" % (rc, pid, os.WEXITSTATUS(status)))
else:
    print("cmd=%d pid=%d signaled=%d" % (rc, pid, os.WTERMSIG(status)))
