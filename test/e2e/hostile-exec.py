#!/usr/bin/python3
# Puts qmail-popup in a hostile environment, then execs it (same pid, so
# tcpserver's "ok PID"/"end PID" lines are qmail-popup's):
#
#   hostile-exec.py [options] -- program [args...]
#
#   --fd5=closed     fd 5 closed
#   --fd5=broken     fd 5 a pipe whose reader is gone (a write gets EPIPE)
#   --fdN=full:FIFO  the same for fd N, one digit (2: the launcher's log;
#                    8: the test sslserver's SSLWRITEFD)
#   --fd5=full:FIFO  fd 5 the FIFO (whose reader, the test, holds it open
#                    and never reads), filled to the brim
#   --nonblock       O_NONBLOCK set on fds 0 and 1 (the connection)
#
# Python ignores SIGPIPE and SIGXFSZ at startup and SIG_IGN survives exec:
# they are put back to the default a real tcpserver gives, so that a write
# to a dead peer is tested as it happens in production.
import fcntl
import re
import os
import signal
import sys


def fill(fd):
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except BlockingIOError:
        pass
    # A single byte may still fit after a page-sized write failed.
    try:
        while True:
            os.write(fd, b"x")
    except BlockingIOError:
        pass
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def main():
    args = sys.argv[1:]
    split = args.index("--")
    options, program = args[:split], args[split + 1:]
    for option in options:
        if option == "--fd5=closed":
            try:
                os.close(5)
            except OSError:
                pass
        elif option == "--fd5=broken":
            read_end, write_end = os.pipe()
            os.close(read_end)
            os.dup2(write_end, 5)
            os.close(write_end)
        elif re.match(r"--fd[0-9]=full:", option):
            target = int(option[len("--fd")])
            fd = os.open(option[len("--fd5=full:"):], os.O_WRONLY | os.O_NONBLOCK)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            os.dup2(fd, target)
            os.close(fd)
            fill(target)
        elif option == "--nonblock":
            for fd in (0, 1):
                flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        else:
            sys.exit("hostile-exec.py: unknown option " + option)
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    os.execv(program[0], program)


if __name__ == "__main__":
    main()
