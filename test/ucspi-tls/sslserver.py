#!/usr/bin/python3
"""Minimal stand-in for fehcom's ucspi-ssl `sslserver`, for end-to-end tests.

Usage: sslserver.py [-n] [-e] -c CERT -k KEY [-p PORTFILE] HOST PORT prog [args...]

  -n  UCSPI-TLS (delayed TLS, like `sslserver -n`): prog gets the raw TCP
      socket as fd 0 and 1 plus SSLCTLFD (socketpair), SSLREADFD (pipe of
      decrypted client bytes) and SSLWRITEFD (pipe of bytes to encrypt).
      Writing `Y` (answer: NAME=value\\0...\\0) or `y` (no answer) to
      SSLCTLFD starts the TLS server handshake.
      Without -n: implicit TLS; handshake on accept, prog's fd 0/1 are pipes
      of decrypted/to-be-encrypted bytes and SSL_* variables are in its
      environment.
  -e  accepted and ignored (TCP* variables are always set).
  -p  once listening, write the port number and a newline to PORTFILE
      (atomically, via rename).

PORT 0 picks a free port.  One forked relay process per connection; the
listener runs until SIGTERM/SIGINT.  Standard library only.
"""

import errno
import fcntl
import getopt
import os
import select
import signal
import socket
import ssl
import sys
import time
import traceback

PROGNAME = 'sslserver.py'
FD_CTL, FD_READ, FD_WRITE = 6, 7, 8
CHUNK = 16384
HIGH_WATER = 65536
HANDSHAKE_TIMEOUT = 60.0   # seconds for the client to complete the handshake
LINGER_TIMEOUT = 5.0       # seconds to drain the client after our FIN
VERSION_INTERFACE = 'sslserver-test'


def warn(msg):
    try:
        os.write(2, ('%s: %s\n' % (PROGNAME, msg)).encode('utf-8', 'replace'))
    except OSError:
        pass


def die_usage(msg=None):
    if msg:
        warn(msg)
    warn('usage: sslserver.py [-n] [-e] -c CERT -k KEY [-p PORTFILE] '
         'HOST PORT prog [args...]')
    sys.exit(100)


# ---------------------------------------------------------------- helpers

def close_fd(fd):
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def monotonic():
    return time.monotonic()


def poll_one(fd, events, timeout):
    """Wait for events on fd; timeout in seconds (None = forever)."""
    p = select.poll()
    p.register(fd, events)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    return p.poll(ms)


def reap(pid, grace=None):
    """Wait for pid.  With grace: wait that many seconds, then SIGKILL."""
    if pid is None:
        return
    if grace is None:
        while True:
            try:
                os.waitpid(pid, 0)
                return
            except ChildProcessError:
                return
            except InterruptedError:
                continue
    deadline = monotonic() + grace
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = None
    try:
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                return
            left = deadline - monotonic()
            if left <= 0:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                reap(pid)
                return
            if pidfd is not None:
                poll_one(pidfd, select.POLLIN, left)
            else:
                time.sleep(min(left, 0.05))
    finally:
        close_fd(pidfd)


def _open_at_start(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# Descriptors our parent gave us besides 0-2 (fd 5, the log): passed on to
# prog, as the real sslserver leaves inherited descriptors alone.
INHERITED = {fd for fd in range(3, 10) if _open_at_start(fd)}


def spawn(argv, env, fdmap):
    """fork+exec argv with exactly fds {target: source} plus fd 2."""
    pid = os.fork()
    if pid:
        return pid
    try:
        for sig in (signal.SIGPIPE, signal.SIGTERM, signal.SIGINT,
                    signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        # Move every source out of the way first, so dup2 cannot clobber.
        tmp = {t: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 100)
               for t, src in fdmap.items()}
        for target, src in tmp.items():
            os.dup2(src, target, inheritable=True)
            os.set_blocking(target, True)
        keep = set(fdmap) | {2} | INHERITED
        for name in os.listdir('/proc/self/fd'):
            fd = int(name)
            if fd not in keep:
                close_fd(fd)
        os.execvpe(argv[0], argv, env)
    except BaseException as e:  # noqa: BLE001 - we are in a forked child
        warn('unable to run %s: %s' % (argv[0], e))
    finally:
        os._exit(111)


# ---------------------------------------------------------------- network

class NetDead(Exception):
    """The client connection is unusable (reset, broken, timed out)."""


def net_send_all(sock, data, deadline):
    """Send all of data on sock (blocking fd, so MSG_DONTWAIT + poll)."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view, socket.MSG_DONTWAIT)
            view = view[n:]
            continue
        except BlockingIOError:
            pass
        except OSError as e:
            raise NetDead(str(e))
        left = None if deadline is None else deadline - monotonic()
        if left is not None and left <= 0:
            raise NetDead('timeout')
        poll_one(sock.fileno(), select.POLLOUT, left)


def net_recv(sock):
    """Non-blocking recv; None if nothing available, b'' on EOF."""
    try:
        return sock.recv(CHUNK, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except OSError as e:
        raise NetDead(str(e))


def tls_handshake(ctx, sock):
    """Server handshake over memory BIOs.  Returns (tls, inbio, outbio)
    or None on failure.  The socket's file status flags are never touched
    (it may be shared with prog), all I/O uses MSG_DONTWAIT + poll."""
    inbio, outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inbio, outbio, server_side=True)
    deadline = monotonic() + HANDSHAKE_TIMEOUT
    try:
        while True:
            try:
                tls.do_handshake()
                net_send_all(sock, outbio.read(), deadline)
                return tls, inbio, outbio
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, ValueError) as e:
                # send the alert, if any, then give up
                try:
                    net_send_all(sock, outbio.read(), monotonic() + 1)
                except NetDead:
                    pass
                warn('TLS handshake failed: %s' % e)
                return None
            net_send_all(sock, outbio.read(), deadline)
            while True:
                data = net_recv(sock)
                if data is not None:
                    break
                left = deadline - monotonic()
                if left <= 0:
                    raise NetDead('handshake timeout')
                poll_one(sock.fileno(), select.POLLIN, left)
            if data:
                inbio.write(data)
            else:
                inbio.write_eof()
    except NetDead as e:
        warn('TLS handshake failed: %s' % e)
        return None


def tls_env(tls):
    name, proto, bits = tls.cipher()
    pairs = [
        ('SSL_PROTOCOL', tls.version() or proto),
        ('SSL_CIPHER', name),
        ('SSL_CIPHER_USEKEYSIZE', str(bits)),
        ('SSL_CIPHER_ALGKEYSIZE', str(bits)),
        ('SSL_VERSION_INTERFACE', VERSION_INTERFACE),
        ('SSL_VERSION_LIBRARY', ssl.OPENSSL_VERSION),
    ]
    # Test knobs: what a client certificate can put in the answer, where
    # sslserver exports it: a DN of raw (non-UTF-8) bytes, a very long one.
    dn = os.environ.get('SSLSERVER_TEST_CLIENT_DN_HEX')
    if dn:
        pairs.append(('SSL_CLIENT_S_DN', bytes.fromhex(dn)))
    pad = os.environ.get('SSLSERVER_TEST_CLIENT_CERT_BYTES')
    if pad:
        pairs.append(('SSL_CLIENT_CERT', b'A' * int(pad)))
    return pairs


def linger_close(sock):
    """FIN, then drain what the client still sends (so close() does not
    turn into a RST that could destroy our last bytes), then close."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = monotonic() + LINGER_TIMEOUT
        while True:
            data = net_recv(sock)
            if data == b'':
                break
            if data is None:
                left = deadline - monotonic()
                if left <= 0:
                    break
                poll_one(sock.fileno(), select.POLLIN, left)
    except (OSError, NetDead):
        pass
    sock.close()


def relay(sock, tls, inbio, outbio, to_prog_fd, from_prog_fd):
    """Relay decrypted client bytes -> to_prog_fd, from_prog_fd -> encrypted
    to the client.  Both fds are ours alone and non-blocking; the socket
    may be shared, so it is used with MSG_DONTWAIT only.  Closes the fds
    and the socket before returning."""
    wfd, rfd = to_prog_fd, from_prog_fd
    to_prog = bytearray()
    to_net = bytearray()
    client_eof = False      # nothing more will come from the client
    discard_client = False  # prog closed its reading side
    prog_eof = False        # all writers of from_prog_fd are gone
    shutdown_sent = False
    clean = False

    def pull_plaintext():
        nonlocal client_eof
        while True:
            try:
                chunk = tls.read(CHUNK)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLZeroReturnError:
                client_eof = True
                return
            except ssl.SSLError:   # includes SSLEOFError (no close_notify)
                client_eof = True
                return
            if not chunk:
                client_eof = True
                return
            if not discard_client:
                to_prog.extend(chunk)

    try:
        # The handshake may have left application data (sent by the client
        # together with its Finished) in inbio already: decrypt it now.
        pull_plaintext()
        while True:
            to_net.extend(outbio.read())
            if client_eof and not to_prog and wfd is not None:
                close_fd(wfd)
                wfd = None
            if prog_eof and not shutdown_sent:
                try:
                    tls.unwrap()
                except (ssl.SSLError, ValueError):
                    pass
                shutdown_sent = True
                to_net.extend(outbio.read())
            if shutdown_sent and not to_net:
                clean = True
                break

            p = select.poll()
            sock_ev = 0
            if not client_eof and len(to_prog) < HIGH_WATER:
                sock_ev |= select.POLLIN
            if to_net:
                sock_ev |= select.POLLOUT
            if sock_ev:
                p.register(sock.fileno(), sock_ev)
            if rfd is not None and len(to_net) < HIGH_WATER:
                p.register(rfd, select.POLLIN)
            if wfd is not None and to_prog:
                p.register(wfd, select.POLLOUT)
            if not sock_ev and rfd is None and not (wfd is not None and to_prog):
                break  # nothing can happen any more
            events = p.poll()

            for fd, ev in events:
                if fd == sock.fileno():
                    if ev & (select.POLLOUT | select.POLLERR | select.POLLHUP) and to_net:
                        try:
                            n = sock.send(to_net, socket.MSG_DONTWAIT)
                            del to_net[:n]
                        except BlockingIOError:
                            pass
                        except OSError as e:
                            raise NetDead(str(e))
                    if ev & (select.POLLIN | select.POLLERR | select.POLLHUP) \
                            and not client_eof:
                        data = net_recv(sock)
                        if data == b'':
                            inbio.write_eof()
                            pull_plaintext()
                            client_eof = True
                        elif data:
                            inbio.write(data)
                            pull_plaintext()
                elif fd == rfd:
                    try:
                        data = os.read(rfd, CHUNK)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b''
                    if data:
                        try:
                            tls.write(data)
                        except ssl.SSLError as e:
                            raise NetDead(str(e))
                    else:
                        prog_eof = True
                        close_fd(rfd)
                        rfd = None
                elif fd == wfd:
                    try:
                        n = os.write(wfd, to_prog)
                        del to_prog[:n]
                    except BlockingIOError:
                        pass
                    except OSError:   # EPIPE: prog no longer reads
                        discard_client = True
                        to_prog.clear()
                        close_fd(wfd)
                        wfd = None
    except NetDead:
        pass
    finally:
        close_fd(wfd)
        close_fd(rfd)
        if clean:
            linger_close(sock)
        else:
            sock.close()


# ---------------------------------------------------------------- per connection

def base_env(conn, peer):
    env = dict(os.environ)
    local = conn.getsockname()
    rip, rport = peer[0], str(peer[1])
    lip, lport = local[0], str(local[1])
    env.update({
        'PROTO': 'SSL',
        'SSLREMOTEIP': rip, 'SSLREMOTEPORT': rport,
        'SSLLOCALIP': lip, 'SSLLOCALPORT': lport,
        'TCPREMOTEIP': rip, 'TCPREMOTEPORT': rport,
        'TCPLOCALIP': lip, 'TCPLOCALPORT': lport,
    })
    return env


def serve_ucspi_tls(ctx, conn, peer, argv):
    """sslserver -n: prog talks plaintext on the socket until it asks for
    TLS through SSLCTLFD."""
    env = base_env(conn, peer)
    env.update({'SSLCTLFD': str(FD_CTL), 'SSLREADFD': str(FD_READ),
                'SSLWRITEFD': str(FD_WRITE)})
    ctl, ctl_prog = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    read_r, read_w = os.pipe()     # relay -> prog (decrypted client bytes)
    write_r, write_w = os.pipe()   # prog -> relay (to be encrypted)
    pid = spawn(argv, env, {0: conn.fileno(), 1: conn.fileno(),
                            FD_CTL: ctl_prog.fileno(), FD_READ: read_r,
                            FD_WRITE: write_w})
    ctl_prog.close()
    close_fd(read_r)
    close_fd(write_w)

    # Until the control byte arrives the socket is prog's alone.
    cmd = None
    while True:
        try:
            b = ctl.recv(1)
        except OSError:
            b = b''
        if not b:
            break               # prog (and heirs) gone without STLS
        if b in (b'Y', b'y'):
            cmd = b
            break
    if cmd is None:
        ctl.close()
        close_fd(read_w)
        close_fd(write_r)
        conn.close()
        reap(pid)
        return

    result = tls_handshake(ctx, conn)
    if result is None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        ctl.close()
        close_fd(read_w)
        close_fd(write_r)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()
        reap(pid, grace=5.0)
        return
    tls, inbio, outbio = result
    if cmd == b'Y':
        answer = b''.join(name.encode() + b'=' + (value if isinstance(value, bytes) else value.encode()) + b'\0'
                          for name, value in tls_env(tls)) + b'\0'
        try:
            ctl.sendall(answer)
        except OSError:
            pass
    ctl.close()
    os.set_blocking(read_w, False)
    os.set_blocking(write_r, False)
    relay(conn, tls, inbio, outbio, read_w, write_r)
    reap(pid)


def serve_implicit(ctx, conn, peer, argv):
    """plain sslserver: TLS from the first byte, prog sees plaintext pipes."""
    env = base_env(conn, peer)
    result = tls_handshake(ctx, conn)
    if result is None:
        conn.close()
        return
    tls, inbio, outbio = result
    env.update(dict(tls_env(tls)))
    read_r, read_w = os.pipe()
    write_r, write_w = os.pipe()
    pid = spawn(argv, env, {0: read_r, 1: write_w})
    close_fd(read_r)
    close_fd(write_w)
    os.set_blocking(read_w, False)
    os.set_blocking(write_r, False)
    relay(conn, tls, inbio, outbio, read_w, write_r)
    reap(pid)


# ---------------------------------------------------------------- listener

class Stop(Exception):
    pass


def reap_any():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def main(args):
    try:
        opts, rest = getopt.getopt(args, 'nec:k:p:')
    except getopt.GetoptError as e:
        die_usage(str(e))
    delayed = False
    cert = key = portfile = None
    for o, a in opts:
        if o == '-n':
            delayed = True
        elif o == '-e':
            pass
        elif o == '-c':
            cert = a
        elif o == '-k':
            key = a
        elif o == '-p':
            portfile = a
    if not cert or not key or len(rest) < 3:
        die_usage()
    host, port, argv = rest[0], rest[1], rest[2:]
    try:
        port = int(port)
    except ValueError:
        die_usage('bad port: %s' % port)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        warn('unable to load certificate/key: %s' % e)
        sys.exit(111)

    try:
        family, stype, proto, _, addr = socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
        lsock = socket.socket(family, stype, proto)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(addr)
        lsock.listen(128)
    except OSError as e:
        warn('unable to listen on %s:%s: %s' % (host, port, e))
        sys.exit(111)

    def on_stop(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGCHLD, lambda s, f: reap_any())

    if portfile:
        tmp = '%s.tmp.%d' % (portfile, os.getpid())
        with open(tmp, 'w') as f:
            f.write('%d\n' % lsock.getsockname()[1])
        os.replace(tmp, portfile)
    # Like tcpserver -v's status line: tests wait for it instead of sleeping.
    warn('listening on %d' % lsock.getsockname()[1])

    serve = serve_ucspi_tls if delayed else serve_implicit
    try:
        while True:
            try:
                conn, peer = lsock.accept()
            except OSError as e:
                if e.errno in (errno.ECONNABORTED, errno.EMFILE, errno.ENFILE,
                               errno.ENOBUFS, errno.ENOMEM):
                    warn('accept: %s' % e)
                    time.sleep(0.1)
                    continue
                raise
            try:
                pid = os.fork()
            except OSError as e:
                warn('fork: %s' % e)
                conn.close()
                continue
            if pid == 0:
                status = 0
                try:
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                        signal.signal(sig, signal.SIG_DFL)
                    lsock.close()
                    serve(ctx, conn, peer, argv)
                except BaseException:  # noqa: BLE001
                    traceback.print_exc()
                    status = 111
                finally:
                    os._exit(status)
            conn.close()
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        lsock.close()
        reap_any()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
