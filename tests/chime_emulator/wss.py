"""Test support for tidings-chime-local's messaging WebSocket: a throwaway CA
and server certificate made with the openssl command, URLs presigned by
botocore (an independent SigV4 implementation), and a minimal RFC 6455
client (enough to read text and close frames and to tell a close frame from
a dropped connection)."""
import base64
import glob
import json
import os
import socket
import ssl
import struct
import subprocess
import time
import urllib.parse

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def libfaketime():
    """libfaketime's preload library, or None. Tests preload it themselves
    (LD_PRELOAD and FAKETIME) rather than through the `faketime` wrapper:
    the wrapper makes a named semaphore after its pid, which a killed
    wrapper leaves behind, and a later wrapper given the same pid then fails
    ("sem_open: File exists")."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def make_ca(directory):
    """CA + a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    p = lambda name: os.path.join(directory, name)
    # Made as if two days ago (libfaketime, when installed), so a device whose
    # clock is slow by minutes still finds the certificate valid, as it would
    # a real one.
    lib = libfaketime()
    env = dict(os.environ, LD_PRELOAD=lib, FAKETIME="-2d") if lib else None

    def run(*args):
        p = subprocess.run(["openssl", *args], capture_output=True, text=True, env=env)
        if p.returncode != 0:  # say why (a rare failure of `x509 -req` was seen)
            raise RuntimeError(f"openssl {args[0]} failed ({p.returncode}): {p.stderr.strip()}")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out",
        p("ca.pem"), "-days", "4", "-subj", "/CN=tidings throwaway test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("key.pem"), "-out", p("req.csr"),
        "-subj", "/CN=127.0.0.1")
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", p("req.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-out", p("cert.pem"), "-days", "4", "-extfile", p("ext.cnf"))
    return p("ca.pem"), p("cert.pem"), p("key.pem")


def presign(host_port, user_arn, session_id, access, secret, region="us-east-1", expires=10,
            extra=None):
    """wss://host:port/connect?userArn=..&sessionId=..&X-Amz-..., presigned by botocore."""
    query = {"userArn": user_arn, "sessionId": session_id}
    query.update(extra or {})
    url = f"https://{host_port}/connect?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    req = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials(access, secret), "chime", region, expires=expires).add_auth(req)
    return req.url.replace("https://", "wss://", 1)


class Refused(Exception):
    def __init__(self, status, body, head=b""):
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status, self.body, self.head = status, body, head


class Closed(Exception):
    """The server closed: code is the close frame's code, or 1006 if the connection just ended."""

    def __init__(self, code, reason=""):
        super().__init__(f"closed {code} {reason}")
        self.code, self.reason = code, reason


class WebSocket:
    def __init__(self, url, cafile, timeout=10):
        parsed = urllib.parse.urlsplit(url)
        ctx = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection((parsed.hostname, parsed.port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=parsed.hostname)
        key = base64.b64encode(os.urandom(16)).decode()
        target = parsed.path + ("?" + parsed.query if parsed.query else "")
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Refused(0, self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(self.buf) < length:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                self.buf += chunk
            self.sock.close()
            raise Refused(status, self.buf, head)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(1006, "connection ended without a close frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def ping(self, data=b"p"):
        self._send(0x9, data)

    def recv(self, timeout=10):
        """The next text frame as a dict; answers pings; Closed on a close or drop."""
        self.sock.settimeout(timeout)
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                self._send(0xA, payload)
            if opcode == 0xA:
                return {"pong": payload.decode()}

    def events(self, until_quiet=0.3):
        """Every text frame until none arrives for `until_quiet` seconds."""
        out = []
        while True:
            try:
                out.append(self.recv(timeout=until_quiet))
            except (socket.timeout, TimeoutError):
                return out

    def close(self):
        try:
            self._send(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()


def event_type(frame):
    return frame["Headers"]["x-amz-chime-event-type"]


def payload(frame):
    return json.loads(frame["Payload"]) if frame.get("Payload") else None


def wait_for(predicate, timeout=10, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
