#!/usr/bin/python3
"""server.py: the local HTTP server the fetch tests download from (127.0.0.1 only, stdlib).

usage: server.py DOCROOT PORTFILE LOGFILE [LIFETIME_SECONDS]

Binds an ephemeral port on 127.0.0.1, writes it to PORTFILE, appends one line per request
("GET /path range=...") to LOGFILE, and exits by itself after LIFETIME seconds (default 120).
The first path segment selects a behaviour; the rest names a file in DOCROOT
(/fmnist/NAME: Debian's Fashion-MNIST files):

  ok, fmnist   the file, with Range support (206, 416)
  missing      404
  always503    503, every time
  flaky500     500 on the first request for this path, then the file
  flaky429     429 (Retry-After: 0) on the first request, then the file
  reset        the first request's connection is reset without a response, then the file
  cut          the first request gets the full Content-Length but a third of the body, then
               the connection closes; later requests are served with Range
  norange      always 200 with the whole body, whatever Range says
  badrange     206 with a Content-Range that starts at 0 whatever was asked; 200 without Range
  redirect     302 to /ok/NAME
  tofile       302 to file:///etc/passwd
  bigcl        Content-Length 50 MB of zeros
  bigchunked   chunked zeros, no Content-Length, up to 50 MB
  bigclose     close-delimited zeros, no Content-Length, up to 50 MB
  stall        headers and 100 bytes, then silence for 30 s
  slow         the file in 16 pieces, 50 ms apart (for progress lines)
"""
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCROOT, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
LIFETIME = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
FMNIST = "/usr/share/datasets/fashion-mnist"
BIG = 50 * 1000 * 1000

seen = {}
seen_lock = threading.Lock()
log_lock = threading.Lock()


def first_time(path):
    with seen_lock:
        n = seen.get(path, 0)
        seen[path] = n + 1
        return n == 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_request_line(self):
        with log_lock, open(LOGFILE, "a") as f:
            f.write("GET %s range=%s\n" % (self.path, self.headers.get("Range", "-")))

    def load(self, kind, name):
        if "/" in name or name in ("", ".", ".."):
            return None
        root = FMNIST if kind == "fmnist" else DOCROOT
        try:
            with open(os.path.join(root, name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def send_body(self, body, status=200, extra=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.write_all(body)

    def write_all(self, body):
        try:
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                self.wfile.write(view[i:i + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def serve_range(self, body):
        rng = self.headers.get("Range")
        if not rng or not rng.startswith("bytes="):
            return self.send_body(body)
        start_s, _, end_s = rng[6:].partition("-")
        start = int(start_s)
        end = int(end_s) if end_s else len(body) - 1
        if start >= len(body):
            return self.send_body(b"", 416, [("Content-Range", "bytes */%d" % len(body))])
        end = min(end, len(body) - 1)
        self.send_body(body[start:end + 1], 206,
                       [("Content-Range", "bytes %d-%d/%d" % (start, end, len(body)))])

    def zeros(self, mode):
        self.send_response(200)
        if mode == "bigcl":
            self.send_header("Content-Length", str(BIG))
        elif mode == "bigchunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(BIG // len(chunk)):
                if mode == "bigchunked":
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
            if mode == "bigchunked":
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        self.log_request_line()
        parts = self.path.lstrip("/").split("/", 1)
        kind, name = parts[0], parts[1] if len(parts) > 1 else ""
        if kind == "missing":
            return self.send_body(b"<html>not found</html>", 404)
        if kind == "always503":
            return self.send_body(b"<html>unavailable</html>", 503)
        if kind == "redirect":
            return self.send_body(b"", 302, [("Location", "/ok/" + name)])
        if kind == "tofile":
            return self.send_body(b"", 302, [("Location", "file:///etc/passwd")])
        if kind in ("bigcl", "bigchunked", "bigclose"):
            return self.zeros(kind)
        body = self.load(kind, name)
        if body is None:
            return self.send_body(b"no such file", 404)
        if kind == "flaky500" and first_time(self.path):
            return self.send_body(b"<html>server error</html>", 500)
        if kind == "flaky429" and first_time(self.path):
            return self.send_body(b"slow down", 429, [("Retry-After", "0")])
        if kind == "reset" and first_time(self.path):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return None
        if kind == "cut" and first_time(self.path):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.write_all(body[:len(body) // 3])
            self.close_connection = True
            return None
        if kind == "norange":
            return self.send_body(body)
        if kind == "badrange":
            if self.headers.get("Range"):
                return self.send_body(body, 206, [("Content-Range", "bytes 0-%d/%d" %
                                                   (len(body) - 1, len(body)))])
            return self.send_body(body)
        if kind == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            step = len(body) // 16 + 1
            for i in range(0, len(body), step):
                self.write_all(body[i:i + step])
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if kind == "stall":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.write_all(body[:100])
            try:
                self.wfile.flush()
            except OSError:
                pass
            time.sleep(30)
            self.close_connection = True
            return None
        return self.serve_range(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (on purpose, in these tests) are not news


def main():
    server = Server(("127.0.0.1", 0), Handler)
    # Stop by itself, whatever the test does.
    threading.Timer(LIFETIME, lambda: os._exit(0)).start()
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, PORTFILE)
    server.serve_forever()


if __name__ == "__main__":
    main()
