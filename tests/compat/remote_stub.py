#!/usr/bin/env python3
"""Loopback stand-ins for remote sources that misbehave, for tests/compat/remote_sources.sh.

  remote_stub.py s3 DIR PORTFILE ACCESS SECRET REGION
      A tiny S3 (path-style GET/HEAD with Range) over the files in DIR that checks every
      request's AWS Signature Version 4, written here from AWS's documentation (s3rver 3.7.1
      accepts any SigV4 signature: its authentication middleware says it is unimplemented).
      A wrong signature is answered 403 SignatureDoesNotMatch, as S3 does.
  remote_stub.py truncate DIR PORTFILE
      An HTTP source whose GETs announce the whole range and break off half-way.
  remote_stub.py stall PORTFILE
      Accepts connections and never answers.

Each writes the port it listens on (127.0.0.1, chosen by the system) to PORTFILE.
"""
import hashlib
import hmac
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def listen_report(server_or_sock, portfile):
    port = server_or_sock.getsockname()[1] if isinstance(server_or_sock, socket.socket) \
        else server_or_sock.server_address[1]
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, portfile)


def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_ok(handler, secret, region):
    """True when the request carries a valid SigV4 header signature for secret."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    try:
        _, date, reg, service, term = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        given = fields["Signature"]
    except (KeyError, ValueError):
        return False
    if reg != region or service != "s3" or term != "aws4_request":
        return False
    stamp = handler.headers.get("x-amz-date", "")
    payload = handler.headers.get("x-amz-content-sha256")
    if not stamp.startswith(date) or payload is None:
        return False
    path, _, query = handler.path.partition("?")
    canon_query = "&".join(sorted(q for q in query.split("&") if q))
    canon_headers = "".join(
        "%s:%s\n" % (h, " ".join((handler.headers.get(h) or "").split())) for h in signed)
    canonical = "\n".join([handler.command, path, canon_query, canon_headers,
                           ";".join(signed), payload])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = sign(("AWS4" + secret).encode(), date)
    k = sign(k, region)
    k = sign(k, "s3")
    k = sign(k, "aws4_request")
    want = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, given)


def make_handler(root, check=None, truncate=False):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def serve(self):
            if check and not check(self):
                return self.answer(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
            name = urllib.parse.unquote(self.path.partition("?")[0]).lstrip("/")
            path = os.path.realpath(os.path.join(root, name))
            if not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
                return self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
            with open(path, "rb") as f:
                data = f.read()
            st = os.stat(path)
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            common = [("ETag", etag), ("Accept-Ranges", "bytes"),
                      ("Last-Modified", self.date_time_string(int(st.st_mtime)))]
            rng = self.headers.get("Range", "")
            if self.command == "GET" and rng.startswith("bytes="):
                a, _, b = rng[6:].partition("-")
                a, b = int(a), min(int(b), len(data) - 1)
                part = data[a:b + 1]
                if truncate:
                    # Promise the whole range, send half of it, and hang up.
                    self.send_response(206)
                    for k, v in common:
                        self.send_header(k, v)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))
                    self.send_header("Content-Length", str(len(part)))
                    self.end_headers()
                    self.wfile.write(part[:len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                return self.answer(206, part, common + [
                    ("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))])
            if self.command == "HEAD":
                self.send_response(200)
                for k, v in common:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return
            return self.answer(200, data, common)

        do_GET = serve
        do_HEAD = serve

    return Handler


def stall(portfile):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    listen_report(s, portfile)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # kept open, never read from nor written to


def main():
    mode = sys.argv[1]
    if mode == "stall":
        return stall(sys.argv[2])
    root, portfile = sys.argv[2], sys.argv[3]
    check = None
    if mode == "s3":
        access, secret, region = sys.argv[4], sys.argv[5], sys.argv[6]

        def check(h):
            cred = h.headers.get("Authorization", "")
            return ("Credential=%s/" % access) in cred and sigv4_ok(h, secret, region)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(root, check, mode == "truncate"))
    server.daemon_threads = True
    listen_report(server, portfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
