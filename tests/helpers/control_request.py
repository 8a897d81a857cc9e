#!/usr/bin/env python3
"""Send one raw request to a sandbox's control socket, with descriptors, and print what
comes back (the tests use it to send what the carapace CLI never would).

usage: control_request.py SOCKET JSON [FILE...]

Each FILE is opened (read-write if it can be, else read-only) and its descriptor sent
beside the request in SCM_RIGHTS. Prints the raw answer as a Python bytes literal: b''
means the sandbox closed the connection without answering.
"""
import array
import os
import socket
import sys

path, request = sys.argv[1], sys.argv[2]
fds = []
for f in sys.argv[3:]:
    try:
        fds.append(os.open(f, os.O_RDWR))
    except OSError:
        fds.append(os.open(f, os.O_RDONLY))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
s.sendmsg([request.encode() + b"\n"], anc)
s.settimeout(30)
answer = b""
while b"\n" not in answer:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
print(repr(answer))
