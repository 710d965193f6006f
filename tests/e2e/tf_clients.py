"""TLS clients of the tests: Python's ssl module (client_context,
tls_connect, http_get, ...) and openssl s_client."""
import re
import socket
import ssl
import subprocess

from tf_run import TIME_SCALE


def unexpected_eof(e):
    """Is e the TLS error for a TCP close without close_notify? Debian's
    Python 3.11.2 raises a plain SSLError for it, later ones SSLEOFError."""
    return isinstance(e, ssl.SSLEOFError) or (
        isinstance(e, ssl.SSLError) and "UNEXPECTED_EOF" in str(e))


def client_context(alpn=None, verify_ca=None, minv=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Debian's Python 3.11.2 sets OP_IGNORE_UNEXPECTED_EOF (later 3.11s do
    # not): a TCP close without close_notify then reads as a clean end, and
    # tests could not tell a cut stream from a finished one
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    if verify_ca:
        ctx.load_verify_locations(verify_ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def tls_connect(port, sni, ctx=None, timeout=10.0):
    ctx = ctx or client_context()
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * TIME_SCALE)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except Exception:
        raw.close()
        raise


def connect_from(src_ip, port, host="127.0.0.1", timeout=10.0):
    """A TCP connection to host:port from src_ip (any port; IPv6 if src_ip
    has a colon, host must then be IPv6 too), TCP_NODELAY set: each send()
    goes out as its own segment."""
    s = socket.socket(socket.AF_INET6 if ":" in src_ip else socket.AF_INET,
                      socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.bind((src_ip, 0))
        s.connect((host, port))
    except Exception:
        s.close()
        raise
    return s


def recv_all(s):
    """Read a TLS socket to its end (close_notify or EOF); return the bytes."""
    data = bytearray()
    while True:
        try:
            b = s.recv(65536)
        except ssl.SSLZeroReturnError:
            break
        if not b:
            break
        data += b
    return bytes(data)


def http_get(port, sni, path="/", ctx=None, timeout=20.0):
    """GET over TLS with Connection: close; return the body bytes."""
    s = tls_connect(port, sni, ctx, timeout)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                   (path, sni)).encode())
        data = recv_all(s)
    finally:
        s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return body


def s_client(port, servername=None, extra=(), stdin=b"", timeout=20):
    """Run openssl s_client; return (returncode, stdout+stderr text)."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if servername is not None:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    args += list(extra)
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout * TIME_SCALE)
    return r.returncode, (r.stdout + r.stderr).decode("latin-1")


def served_cert_cn(port, servername):
    """The subject of the certificate tlsfront presents for servername."""
    rc, out = s_client(port, servername, ["-brief"], b"")
    m = re.search(r"Peer certificate: (.*)", out)
    return m.group(1) if m else None
