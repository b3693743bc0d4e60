"""Test certificates made with the `openssl` command: a private CA and a server it signs.

The server certificate names `together.test` and 127.0.0.1; an unrelated CA trusts nothing
here. Nothing is committed: every run makes its own, valid for two days.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

HAVE_OPENSSL = shutil.which("openssl") is not None


@dataclass(frozen=True)
class Certs:
    ca: Path
    ca_dir: Path
    other_ca: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def _openssl(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return key, cert


def make_certs(directory: Path) -> Certs:
    """A private CA, a server certificate it signs, and an unrelated CA, in `directory`."""
    ca_key, ca = _make_ca(directory, "Test CA")
    _, other_ca = _make_ca(directory, "Other CA")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=DNS:together.test,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=together.test",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", extensions,
        cwd=directory,
    )  # fmt: skip
    ca_dir = directory / "hashed"
    ca_dir.mkdir()
    subject_hash = _openssl("x509", "-hash", "-noout", "-in", ca, cwd=directory).strip()
    shutil.copy(ca, ca_dir / f"{subject_hash}.0")
    return Certs(ca, ca_dir, other_ca, cert, key)


@functools.lru_cache(maxsize=1)
def untrusted_server_context() -> ssl.SSLContext:
    """A server context whose certificate no default trust store accepts (made once)."""
    directory = Path(tempfile.mkdtemp(prefix="together-stream-certs-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return make_certs(directory).server_context()
