#!/usr/bin/env python3
"""A small Bearer token server for docker-registry's `auth: token` mode.

Usage: token-server.py ADDR PORT KEY.pem CERT.pem ISSUER SERVICE USER PASSWORD

GET /token?service=..&scope=repository:NAME:ACTIONS[&scope=..] with Basic
USER:PASSWORD answers {"token": JWT} granting the requested scopes; without
(or with wrong) credentials it answers 401. The JWT is RS256-signed with
KEY.pem through the openssl CLI (the stdlib has no RSA), and names the key by
its libtrust key ID ("kid"), which is how docker-registry matches it against
the certificate in its rootcertbundle.
"""

import base64
import hashlib
import json
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADDR, PORT, KEY, CERT, ISSUER, SERVICE, USER, PASSWORD = sys.argv[1:9]
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(cert_path: str) -> str:
    """sha256 of the DER public key, first 240 bits, base32, grouped by 4."""
    pub = subprocess.run(
        ["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
        check=True, capture_output=True).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=pub, check=True, capture_output=True).stdout
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


KID = libtrust_key_id(CERT)
ISSUED = 0


def sign(claims: dict) -> str:
    header = {"typ": "JWT", "alg": "RS256", "kid": KID}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY],
                         input=signing_input.encode(), check=True,
                         capture_output=True).stdout
    return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("token-server: " + (fmt % args) + "\n")

    def do_GET(self):
        global ISSUED
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        if self.headers.get("Authorization", "") != EXPECTED:
            body = b'{"details":"bad or missing credentials"}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        q = urllib.parse.parse_qs(url.query)
        access = []
        for scope in q.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) >= 3:
                    access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                                   "actions": parts[-1].split(",")})
        now = int(time.time())
        ISSUED += 1
        token = sign({"iss": ISSUER, "sub": USER, "aud": q.get("service", [SERVICE])[0],
                      "exp": now + 600, "nbf": now - 10, "iat": now,
                      "jti": f"pier-{now}-{ISSUED}", "access": access})
        body = json.dumps({"token": token, "access_token": token, "expires_in": 600,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
                           }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer((ADDR, int(PORT)), Handler).serve_forever()
