"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, for the download tests."""

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Routes:
    """path -> list of behaviours, one used per request (the last one repeats)."""

    def __init__(self):
        self.routes = {}
        self.hits = {}
        self.headers = []  # the request headers, one dict per request

    def add(self, path, *behaviours):
        self.routes[path] = list(behaviours)

    def next(self, path):
        self.hits[path] = self.hits.get(path, 0) + 1
        queue = self.routes.get(path)
        if not queue:
            return ("status", 404)
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(routes):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            routes.headers.append(dict(self.headers))
            kind, *args = routes.next(self.path)
            if kind == "status":
                self.send_response(args[0])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif kind == "body":
                body, ctype = args[0], (args[1] if len(args) > 1 else "application/octet-stream")
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif kind == "reset":  # headers promise the whole body, then the connection is reset
                body, cut = args
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
            elif kind == "short":  # no Content-Length, the body simply ends early
                body, cut = args
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[:cut])
                self.close_connection = True
            elif kind == "stall":  # headers, then nothing for longer than the client waits
                body, seconds = args
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:10])
                self.wfile.flush()
                threading.Event().wait(seconds)
                self.close_connection = True

    return Handler


class MisbehavingServer:
    """tls=(certfile, keyfile) serves HTTPS; client_ca also asks for a client certificate signed
    by that CA."""

    def __init__(self, tls=None, client_ca=None):
        self.routes = Routes()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.routes))
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            if client_ca:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(client_ca)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
