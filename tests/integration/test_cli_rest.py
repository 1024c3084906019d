"""kvcli against an HTTPS server on loopback that speaks the Automation API's
session protocol: thumbprint pinning, login, session reuse, formatters.

The server is a small stand-in written here (vpxd's REST API lands
separately); it answers POST /api/session with HTTP Basic and
GET /api/appliance/system/version with the session header, and records
every request so the tests can check what kvcli sent, and to whom.
"""
import base64
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading

import pytest

from kvctest import binpath

USER, PASSWORD = "administrator@vsphere.local", "s3cret!"
VERSION = {"product": "kvcenter", "version": "0.1.0", "build": "42",
           "type": "vCenter Server", "update": 0, "patch": 3}


def make_cert(d, name):
    key, cert, tmpl = (os.path.join(d, name + s) for s in (".key", ".pem", ".tmpl"))
    with open(tmpl, "w") as f:
        f.write("cn = localhost\nexpiration_days = 2\nip_address = 127.0.0.1\n"
                "tls_www_server\nsigning_key\n")
    subprocess.run(["certtool", "--generate-privkey", "--key-type=ecdsa",
                    "--outfile", key], check=True, capture_output=True)
    subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key,
                    "--template", tmpl, "--outfile", cert], check=True,
                   capture_output=True)
    with open(cert) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    thumb = ":".join("%02X" % b for b in hashlib.sha256(der).digest())
    return key, cert, thumb


class FakeApi(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, kind, msg):
        self.reply(status, {"error_type": kind, "messages": [
            {"args": [], "default_message": msg, "id": "x"}]})

    def do_POST(self):
        srv = self.server
        srv.log.append(("POST", self.path, dict(self.headers)))
        if self.path != "/api/session":
            return self.error(404, "NOT_FOUND", "no such path")
        want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if self.headers.get("Authorization") != want:
            return self.error(401, "UNAUTHENTICATED", "bad credentials")
        srv.n_tokens += 1
        token = "tok-%d" % srv.n_tokens
        srv.tokens.add(token)
        self.reply(201, token)

    def do_GET(self):
        srv = self.server
        srv.log.append(("GET", self.path, dict(self.headers)))
        if self.headers.get("vmware-api-session-id") not in srv.tokens:
            return self.error(401, "UNAUTHENTICATED", "no session")
        if self.path == "/api/appliance/system/version":
            return self.reply(200, VERSION)
        return self.error(404, "NOT_FOUND", "The object was not found")


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as d:
        key, cert, thumb = make_cert(d, "server")
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        httpd.log, httpd.tokens, httpd.n_tokens = [], set(), 0
        httpd.url = "https://127.0.0.1:%d" % httpd.server_address[1]
        httpd.thumb = thumb
        httpd.dir = d
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            yield httpd
        finally:
            httpd.shutdown()
            httpd.server_close()
            t.join(timeout=10)


def kvcli(*args, env=None, home=None):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home or "/nonexistent"}
    e.update(env or {})
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    return subprocess.run([binpath("cli/kvcli")] + list(args), capture_output=True,
                          text=True, timeout=60, env=e, stdin=subprocess.DEVNULL)


def logged_in(server, *args, **kw):
    return kvcli("--server", server.url, "--user", USER, "--password", PASSWORD,
                 "--thumbprint", server.thumb, *args, **kw)


def test_version_get_table(server):
    r = logged_in(server, "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("   Product: kvcenter\n   Version: 0.1.0\n   Build: 42\n"
                        "   Update: 0\n   Patch: 3\n")
    methods = [(m, p) for m, p, _ in server.log]
    assert methods == [("POST", "/api/session"), ("GET", "/api/appliance/system/version")]
    assert server.log[1][2].get("vmware-api-session-id") == "tok-1"
    assert "Authorization" not in server.log[1][2]


@pytest.mark.parametrize("fmt,expected", [
    ("keyvalue", "VersionGet.Product.string=kvcenter\nVersionGet.Version.string=0.1.0\n"
                 "VersionGet.Build.string=42\nVersionGet.Update.string=0\n"
                 "VersionGet.Patch.string=3\n"),
    ("csv", "Build,Patch,Product,Update,Version,\n42,3,kvcenter,0,0.1.0,\n"),
    ("json", '{"Product":"kvcenter","Version":"0.1.0","Build":"42","Update":"0","Patch":"3"}\n'),
], ids=["keyvalue", "csv", "json"])
def test_version_get_formatters(server, fmt, expected):
    r = logged_in(server, "--formatter=" + fmt, "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert r.stdout == expected


def test_version_get_xml(server):
    r = logged_in(server, "--formatter", "xml", "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('<?xml version="1.0" encoding="utf-8"?>\n'
                               '<output xmlns="http://www.vmware.com/Products/ESX/5.0/esxcli/">\n'
                               '<root>\n   <structure typeName="VersionGet">\n')
    assert '<field name="Build">\n         <string>42</string>\n      </field>' in r.stdout


def test_wrong_thumbprint_sends_nothing(server):
    wrong = ":".join(["AB"] * 32)
    r = kvcli("--server", server.url, "--user", USER, "--password", PASSWORD,
              "--thumbprint", wrong, "system", "version", "get")
    assert r.returncode == 1
    assert server.thumb in r.stderr and wrong in r.stderr
    assert "refusing" in r.stderr
    assert server.log == []     # no request, no password sent


def test_unknown_server_shows_thumbprint_then_known_servers(server):
    home = server.dir
    r = kvcli("--server", server.url, "--user", USER, "--password", PASSWORD,
              "system", "version", "get", home=home)
    assert r.returncode == 1
    assert "is not known" in r.stderr
    assert "--thumbprint " + server.thumb in r.stderr
    assert server.log == []
    # Once remembered (what answering 'y' at the prompt writes), it just works.
    os.makedirs(os.path.join(home, ".config", "kvcli"), exist_ok=True)
    with open(os.path.join(home, ".config", "kvcli", "known_servers"), "w") as f:
        f.write("%s %s\n" % (server.url, server.thumb))
    r = kvcli("--server", server.url, "--user", USER, "--password", PASSWORD,
              "system", "version", "get", home=home)
    assert r.returncode == 0, r.stderr
    assert "Product: kvcenter" in r.stdout


def test_bad_password(server):
    r = kvcli("--server", server.url, "--user", USER, "--password", "nope",
              "--thumbprint", server.thumb.lower().replace(":", ""),
              "system", "version", "get")
    assert r.returncode == 1
    assert r.stderr == "Error: Cannot complete login due to an incorrect user name or password.\n"
    assert r.stdout == ""


def test_session_file_reuse_and_relogin(server):
    sf = os.path.join(server.dir, "session")
    r = logged_in(server, "--session-file", sf, "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert open(sf).read() == "tok-1\n"
    assert oct(os.stat(sf).st_mode & 0o777) == "0o600"
    # A second run reuses the token: no login, no password needed.
    n = len(server.log)
    r = kvcli("--server", server.url, "--thumbprint", server.thumb,
              "--session-file", sf, "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert [(m, p) for m, p, _ in server.log[n:]] == [("GET", "/api/appliance/system/version")]
    # A stale token: kvcli logs in again when it has credentials.
    server.tokens.clear()
    r = logged_in(server, "--session-file", sf, "system", "version", "get")
    assert r.returncode == 0, r.stderr
    assert open(sf).read() == "tok-2\n"
    # ... and says so clearly when it has none.
    server.tokens.clear()
    r = kvcli("--server", server.url, "--thumbprint", server.thumb,
              "--session-file", sf, "system", "version", "get")
    assert r.returncode == 1
    assert r.stderr == "Error: no session\n"


def test_argument_errors_need_no_server():
    r = kvcli("--server", "https://127.0.0.1:9", "system", "version", "get", "--bogus")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: Invalid option --bogus\n\nUsage: kvcli system version get")
    r = kvcli("--formatter=yaml", "system", "version", "get")
    assert r.returncode == 1
    assert "Unknown formatter 'yaml'" in r.stderr
    r = kvcli("system", "nope")
    assert r.returncode == 1
    assert r.stderr.startswith("Error: Unknown command or namespace system nope\n")
    r = kvcli("system", "--help")
    assert r.returncode == 0
    assert "Available Namespaces:\n  version" in r.stdout


def test_bash_completion_uses_the_command_table():
    script = os.path.join(os.environ.get("KVC_SRCDIR", "."), "cli", "bash-completion", "kvcli")
    kvcli_dir = os.path.dirname(binpath("cli/kvcli"))

    def complete(*words):
        line = " ".join("'%s'" % w for w in words)
        cmd = ('source "$1"; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
               '_kvcli; printf "%%s\\n" "${COMPREPLY[@]}"' % line)
        r = subprocess.run(["bash", "-c", cmd, "bash", script], capture_output=True,
                           text=True, timeout=30,
                           env={"PATH": kvcli_dir + ":/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("kvcli", "sys") == ["system"]
    assert complete("kvcli", "system", "version", "") == ["get"]
    assert complete("kvcli", "--formatter", "k") == ["keyvalue"]
