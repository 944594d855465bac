"""The bench's "site" on the host's loopback: /small answers 2 bytes, /big 100 MiB (generated, not
stored). Prints its port, then serves until killed."""
import http.server
import socketserver
import sys

BIG = 100 << 20
CHUNK = b"x" * (1 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        size = BIG if self.path.endswith("/big") else 2
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        left = size
        while left > 0:
            part = CHUNK[:min(left, len(CHUNK))]
            self.wfile.write(part)
            left -= len(part)

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


s = Server(("127.0.0.1", 0), Handler)
print(s.server_address[1], flush=True)
s.serve_forever()
