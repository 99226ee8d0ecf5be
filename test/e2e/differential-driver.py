#!/usr/bin/python3
# The launcher and the client of one scripted session, for
# test/e2e/differential.test.ts. Reads a case as JSON on stdin, starts the
# front with exactly those argv and environment bytes, descriptors, signal
# dispositions and soft limits, plays the client, and prints what it saw
# as JSON on stdout.
#
# Bytes travel as JSON strings of code points 0-255, one per byte (latin1):
# JSON cannot hold raw bytes, and this keeps the test's literals readable.
#
# The case:
#   front        path of the program to execute
#   argv, env    lists of strings (argv[0] included; env entries as
#                execve(2) takes them: "A-B=1", "=x", a name twice, no "=")
#   input        what the client sends, all at once
#   network      "socket" (default): fds 0 and 1 one end of a socket pair;
#                "pipes": fd 0 a pipe we write, fd 1 a pipe we read
#   stderr       true (default): fd 2 a pipe read here; false: fd 2 closed
#   log          true: fd 5 a pipe read here; false: fd 5 closed
#   ucspiTls     {"answer", "input"}: as sslserver -n, fd 6 a control
#                socket, fds 7 and 8 the pipes of the TLS connection
#                (plaintext here); when "Y" arrives on fd 6: the answer on
#                fd 6, then input on fd 7
#   descriptors  [{"fd": N, "path": P, "mode": "r" | "w" | "wn"}]: files
#                open on those fds ("wn": write, append, O_NONBLOCK)
#   nonblocking  true: the network (fds 0 and 1) in O_NONBLOCK mode
#   limits       {"NOFILE": soft, ...}: soft limits, as softlimit(8) sets
#                them (at most the hard ones, which stay)
#   ignore, block  signal numbers ignored / blocked; all others default
#   cwd          the front's working directory
#   seconds      the most the session may take; then its process group is
#                killed and "timedOut" is true
#
# The answer:
#   pid          the front's
#   wire         what the client read (fd 1); tlsWire: through "TLS" (fd 8)
#   control      what came on fd 6; operator, log: fds 2 and 5 (null: closed)
#   status       {"exit": N} or {"signal": N}
#   timeBefore, timeAfter  Unix seconds around the session
#   names        what readlink in /proc says of the front's fds 0, 1, 2, 5,
#                6, 7, 8: input, output, stderr, log, control, tlsInput,
#                tlsOutput
#   limits       {"Max open files": [soft, hard], ...} as /proc/PID/limits
#                names them: what the front was started with
#
# Python itself ignores SIGPIPE and SIGXFSZ: the child resets every
# disposition, as a launcher such as tcpserver starts its programs.

import ctypes
import fcntl
import json
import os
import resource
import select
import platform
import signal
import socket
import sys
import time

# What setrlimit(2) calls them, and what /proc/PID/limits calls them.
LIMITS = {
    "CPU": (resource.RLIMIT_CPU, "Max cpu time"),
    "FSIZE": (resource.RLIMIT_FSIZE, "Max file size"),
    "DATA": (resource.RLIMIT_DATA, "Max data size"),
    "STACK": (resource.RLIMIT_STACK, "Max stack size"),
    "CORE": (resource.RLIMIT_CORE, "Max core file size"),
    "RSS": (resource.RLIMIT_RSS, "Max resident set"),
    "NPROC": (resource.RLIMIT_NPROC, "Max processes"),
    "NOFILE": (resource.RLIMIT_NOFILE, "Max open files"),
    "MEMLOCK": (resource.RLIMIT_MEMLOCK, "Max locked memory"),
    "AS": (resource.RLIMIT_AS, "Max address space"),
}
MODES = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY | os.O_APPEND,
    "wn": os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK,
}
# Above any descriptor a case names: where sources wait while targets are filled.
PARKING = 200


def text(data):
    return data.decode("latin1")


def raw(string):
    return string.encode("latin1")


def limit_text(value):
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def given_limits(case):
    """
    The soft and hard limits the front starts with: the case's soft ones, at
    most the hard ones, as softlimit(8) sets them; ours otherwise; no core file.
    """
    soft_wanted = dict(case.get("limits", {}))
    soft_wanted.setdefault("CORE", 0)
    given = {}
    for name, (number, _) in LIMITS.items():
        soft, hard = resource.getrlimit(number)
        if name in soft_wanted:
            soft = soft_wanted[name] if hard == resource.RLIM_INFINITY else min(soft_wanted[name], hard)
        given[name] = (soft, hard)
    return given


def c_strings(items):
    array = (ctypes.c_char_p * (len(items) + 1))()
    for i, item in enumerate(items):
        array[i] = item
    array[len(items)] = None
    return array


def start_front(case, sources, limits):
    """In the child: the descriptors (fd: our fd), dispositions and limits of the case, then execve."""
    try:
        os.setpgid(0, 0)
        # Everything prepared before the limits: under RLIMIT_AS 2000000 nothing more may be allocated.
        path = case["front"].encode()
        argv = c_strings([raw(a) for a in case["argv"]])
        envp = c_strings([raw(e) for e in case["env"]])
        libc = ctypes.CDLL(None, use_errno=True)
        execve = libc.execve
        os.chdir(case["cwd"])
        sources = dict(sources)
        for d in case.get("descriptors", []):
            sources[d["fd"]] = os.open(d["path"], MODES[d["mode"]] | os.O_CREAT, 0o644)
        parked = {fd: fcntl.fcntl(source, fcntl.F_DUPFD, PARKING + i) for i, (fd, source) in enumerate(sources.items())}
        for fd, source in parked.items():
            os.dup2(source, fd, inheritable=True)
        low = 0
        for fd in sorted(parked) + [resource.getrlimit(resource.RLIMIT_NOFILE)[1]]:
            if low < fd:  # os.closerange(0, 0) closes everything
                os.closerange(low, fd)
            low = fd + 1
        for fd in (0, 1):
            os.set_blocking(fd, not case.get("nonblocking", False))
        for number in range(1, signal.NSIG):
            try:
                signal.signal(number, signal.SIG_IGN if number in case.get("ignore", []) else signal.SIG_DFL)
            except (OSError, ValueError):
                pass  # SIGKILL, SIGSTOP, and the numbers that are no signal
        # 32 and 33 are the C library's own: signal() refuses them, so whatever
        # ignored them in the test runner would reach the front. The raw call resets them.
        for number in (32, 33):
            default_action(number)
        signal.pthread_sigmask(signal.SIG_SETMASK, case.get("block", []))
        for name, (soft, hard) in limits.items():
            resource.setrlimit(LIMITS[name][0], (soft, hard))
        execve(path, argv, envp)
        os.write(2, b"differential-driver: cannot execute the front: errno %d\n" % ctypes.get_errno())
    except BaseException as problem:
        os.write(2, ("differential-driver: %r\n" % problem).encode())
    finally:
        os._exit(127)


def name_of(fd):
    """What readlink says of /proc/PID/fd/N for this descriptor of ours: socket:[INODE] or pipe:[INODE]."""
    return os.readlink("/proc/self/fd/%d" % fd)


# rt_sigaction(2)'s number per machine; the kernel's struct sigaction is
# handler, flags, restorer, mask: all zero is SIG_DFL with nothing blocked.
RT_SIGACTION = {"x86_64": 13, "aarch64": 134}


def default_action(number):
    action = (ctypes.c_ulong * 4)(0, 0, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(RT_SIGACTION[platform.machine()], number, ctypes.byref(action), None, 8) != 0:
        raise OSError(ctypes.get_errno(), "rt_sigaction %d" % number)


def main():
    case = json.load(sys.stdin)
    limits = given_limits(case)
    # The front's descriptors (fd: ours, closed here once it has them) and what we read (ours: what it is).
    sources = {}
    readers = {}
    if case.get("network", "socket") == "socket":
        client, network = socket.socketpair()
        to_front = from_front = client.detach()
        sources[0] = sources[1] = network.detach()
    else:
        # As under a launcher that hands over two pipes: fd 0 reads ours, fd 1 writes ours.
        network_in, to_front = os.pipe()
        from_front, network_out = os.pipe()
        sources[0], sources[1] = network_in, network_out
    readers[from_front] = "wire"
    names = {"input": name_of(sources[0]), "output": name_of(sources[1])}
    if case.get("stderr", True):
        operator_read, sources[2] = os.pipe()
        readers[operator_read] = "operator"
        names["stderr"] = name_of(sources[2])
    if case["log"]:
        log_read, sources[5] = os.pipe()
        readers[log_read] = "log"
        names["log"] = name_of(sources[5])
    tls = case.get("ucspiTls")
    if tls is not None:
        # As sslserver -n: fd 6 the control socket, fd 7 the decrypted client bytes, fd 8 the bytes to encrypt.
        control, sources[6] = [end.detach() for end in socket.socketpair()]
        sources[7], tls_to_front = os.pipe()
        tls_from_front, sources[8] = os.pipe()
        readers[control] = "control"
        readers[tls_from_front] = "tlsWire"
        names.update(control=name_of(sources[6]), tlsInput=name_of(sources[7]), tlsOutput=name_of(sources[8]))

    time_before = int(time.time())
    pid = os.fork()
    if pid == 0:
        start_front(case, sources, limits)
    for fd in set(sources.values()):
        os.close(fd)

    try:
        os.write(to_front, raw(case["input"]))
    except OSError:
        pass  # the front closed first (usage): what it said is still read below

    received = {"wire": b"", "operator": b"", "log": b"", "control": b"", "tlsWire": b""}
    deadline = time.monotonic() + case["seconds"]
    timed_out = False
    # Until every holder of the network and the pipes has closed them: the
    # front, the runtime, the login program and anything they left behind.
    while readers:
        left = deadline - time.monotonic()
        if left <= 0 and not timed_out:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            continue
        if left <= 0:
            break
        ready, _, _ = select.select(list(readers), [], [], left)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                del readers[fd]
                continue
            received[readers[fd]] += chunk
            if readers[fd] == "control" and chunk == b"Y":
                # The "handshake": sslserver's answer, then the client speaks through it.
                os.write(control, raw(tls["answer"]))
                os.write(tls_to_front, raw(tls["input"]))
    _, status = os.waitpid(pid, 0)
    time_after = int(time.time())

    outcome = {"exit": os.WEXITSTATUS(status)} if os.WIFEXITED(status) else {"signal": os.WTERMSIG(status)}
    json.dump(
        {
            "pid": pid,
            "wire": text(received["wire"]),
            "operator": text(received["operator"]) if case.get("stderr", True) else None,
            "log": text(received["log"]) if case["log"] else None,
            "control": text(received["control"]) if tls is not None else None,
            "tlsWire": text(received["tlsWire"]) if tls is not None else None,
            "status": outcome,
            "timedOut": timed_out,
            "timeBefore": time_before,
            "timeAfter": time_after,
            "names": names,
            "limits": {LIMITS[name][1]: [limit_text(soft), limit_text(hard)] for name, (soft, hard) in limits.items()},
        },
        sys.stdout,
    )


main()
