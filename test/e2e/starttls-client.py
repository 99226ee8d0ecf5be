#!/usr/bin/python3
"""A POP3 client for byte-exact STLS tests.

starttls-client.py PORT CLEAR SECURE
Reads the greeting, sends CLEAR (JSON string, latin-1) in one write, reads
until `+OK starting TLS negotiation\\r\\n` or the end; then, if it came,
does the TLS handshake (no certificate check), sends SECURE in one write
and reads until the server closes. Prints JSON: {"clear": ..., "tls": ...,
"error": ...}; tls is null where TLS never started.
"""
import json, socket, ssl, sys

STARTED = b"+OK starting TLS negotiation\r\n"


def read_until_closed(sock):
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            return data
        if not chunk:
            return data
        data += chunk


def main():
    port = int(sys.argv[1])
    clear = json.loads(sys.argv[2]).encode("latin-1")
    secure = json.loads(sys.argv[3]).encode("latin-1")
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    received = b""
    while not received.endswith(b"\r\n"):
        chunk = raw.recv(1)
        if not chunk:
            break
        received += chunk
    raw.sendall(clear)
    while STARTED not in received:
        chunk = raw.recv(1)  # a byte at a time: nothing of the TLS handshake is taken
        if not chunk:
            break
        received += chunk
    result = {"clear": received.decode("latin-1"), "tls": None, "error": None}
    if STARTED in received:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            tls = context.wrap_socket(raw, server_hostname="localhost")
            tls.sendall(secure)
            result["tls"] = read_until_closed(tls).decode("latin-1")
        except (OSError, ssl.SSLError) as error:
            result["error"] = str(error)
    else:
        result["clear"] = (received + read_until_closed(raw)).decode("latin-1")
    print(json.dumps(result))


main()
