#!/usr/bin/python3
# A misbehaving subprogram (checkpassword or post-login program) for the
# hostile suite:  hostile-prog.py MODE [args...]
#
# Every mode first writes "PID\n" to $HOSTILE_RECORD.<TCPREMOTEPORT> (when
# HOSTILE_RECORD is set), so the test can wait on the file, not on time.
#
#   sleep              never reads fd 3, sleeps until killed
#   hold               reads fd 3 to its end, then reads fd 0 until EOF or
#                      error; exits 1 (a checkpassword that says no, late)
#   ready              writes "+OK ready\r\n" to fd 1, then as hold, exit 0
#   close3 STATUS      closes fd 3 unread, exits STATUS
#   stderr STATUS      writes a line to fd 2, exits STATUS
#   exit STATUS        reads fd 3, exits STATUS
#   flood STATUS       reads fd 3, fills the connection (fd 1) until it takes
#                      nothing more for 300 ms (the client does not read;
#                      MSG_DONTWAIT, so fd 1 itself stays blocking), exits STATUS
import os
import socket
import sys
import time


def record():
    path = os.environ.get("HOSTILE_RECORD")
    if path:
        with open("%s.%s" % (path, os.environ.get("TCPREMOTEPORT", "x")), "w") as f:
            f.write("%d\n" % os.getpid())


def drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


def main():
    mode = sys.argv[1]
    status = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if mode == "sleep":
        record()
        while True:
            time.sleep(3600)
    if mode == "close3":
        os.close(3)
        record()
        os._exit(status)
    drain(3)
    if mode == "exit":
        record()
        os._exit(status)
    if mode == "flood":
        connection = socket.socket(fileno=1)
        stuck_since = None
        while stuck_since is None or time.monotonic() - stuck_since < 0.3:
            try:
                connection.send(b"x" * 4096, socket.MSG_DONTWAIT)
                stuck_since = None
            except BlockingIOError:
                try:
                    connection.send(b"x", socket.MSG_DONTWAIT)
                    stuck_since = None
                except BlockingIOError:
                    if stuck_since is None:
                        stuck_since = time.monotonic()
                    time.sleep(0.01)
        connection.detach()
        record()
        os._exit(status)
    if mode == "stderr":
        os.write(2, b"hostile-prog: a word on fd 2\r\n")
        record()
        os._exit(status)
    if mode == "ready":
        os.write(1, b"+OK ready\r\n")
        record()
        drain(0)
        os._exit(0)
    if mode == "hold":
        record()
        drain(0)
        os._exit(1)
    sys.exit("hostile-prog.py: unknown mode " + mode)


if __name__ == "__main__":
    main()
