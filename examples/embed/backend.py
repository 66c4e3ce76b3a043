"""The SaaS backend of the embed example: serves the host page, mints embed sessions and
hands out access tokens. The management key stays here.

Environment: ROOMGATE_URL (the app's origin on roomgate), ROOMGATE_KEY (mk_...), ROOM,
HOST_ORIGIN (this page's origin, the one allowed to frame the app), APP_PATH (default /),
ROOMGATE_CA (optional CA file for roomgate's certificate).
Usage: python3 backend.py PORT
"""

import json
import os
import ssl
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOMGATE_URL = os.environ["ROOMGATE_URL"].rstrip("/")
KEY = os.environ["ROOMGATE_KEY"]
ROOM = os.environ["ROOM"]
HOST_ORIGIN = os.environ["HOST_ORIGIN"]
APP_PATH = os.environ.get("APP_PATH", "/")
CONTEXT = ssl.create_default_context(cafile=os.environ.get("ROOMGATE_CA"))
PAGE = (Path(__file__).parent / "index.html").read_text().replace("{{ROOMGATE_URL}}", ROOMGATE_URL)

session = {}  # this demo serves one visitor: the current session and its first token


def api(method: str, path: str, body=None) -> dict:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(
        ROOMGATE_URL + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=CONTEXT) as resp:
        return json.load(resp)


class Handler(BaseHTTPRequestHandler):
    def send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/":
            self.send(200, PAGE.encode(), "text/html; charset=utf-8")
        else:
            self.send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        if self.path == "/embed/session":
            minted = api("POST", "/.roomgate/api/v1/embed/sessions", {
                "room": ROOM,
                "domain": ROOMGATE_URL.split("://", 1)[1].split(":")[0],
                "path": APP_PATH,
                "user": "demo-customer",
                "api": {},
                "allowed_origins": [HOST_ORIGIN],
                "ttl": "30m",
            })
            session.clear()
            session.update(minted, handed=False)
            self.send(200, json.dumps({"launch_url": minted["launch_url"]}).encode(), "application/json")
        elif self.path == "/embed/token" and session:
            if not session["handed"]:
                session["handed"] = True
                body = {k: session[k] for k in ("access_token", "token_expires_at")}
            else:
                body = api("POST", f"/.roomgate/api/v1/embed/sessions/{session['session_id']}/tokens")
            self.send(200, json.dumps(body).encode(), "application/json")
        else:
            self.send(404, b"not found", "text/plain")

    def log_message(self, *args) -> None:  # no URLs or tokens in the console
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
