"""A "remote" MongoDB for benchmarks: the local test server behind TLS, SCRAM auth and added latency.

:func:`remote_mongodb` starts a local test server that serves TLS only, with a certificate signed by
a throwaway CA generated for the run (``cryptography``; nothing is written outside a temporary
directory, removed afterwards), requires SCRAM authentication, and is reached through
:class:`~benchmarks._latency_proxy.LatencyProxy` with the given round-trip time. The URI it yields
authenticates, verifies the server certificate against the throwaway CA, and goes through the proxy.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from pymongo import MongoClient

from mongodb_session_manager.testing import LocalMongoServer

from ._common import Context
from ._latency_proxy import LatencyProxy

USER = "bench"


@dataclass
class RemoteMongoDB:
    """Where to connect (``uri``: TLS, auth, through the proxy) and what runs behind it."""

    uri: str
    rtt_ms: float
    #: Median round trip of a ``ping`` through a warm client, as measured (the proxy's delay plus the rest).
    measured_rtt_ms: float
    server_pid: int | None
    proxy_pid: int | None


def write_throwaway_ca(directory: Path) -> tuple[str, str, str]:
    """Write a CA and a server certificate for 127.0.0.1/localhost; returns (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "benchmark throwaway CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return str(ca_path), str(cert_path), str(key_path)


def measure_rtt(uri: str, samples: int = 30) -> float:
    """Median milliseconds of a ``ping`` through a warm client."""
    with MongoClient(uri) as client:
        client.admin.command("ping")
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            client.admin.command("ping")
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


@contextlib.contextmanager
def remote_mongodb(ctx: Context, rtt_ms: float, *, tls: bool = True, auth: bool = True) -> Iterator[RemoteMongoDB]:
    """A fresh local test server behind TLS, SCRAM and ``rtt_ms`` of added round-trip latency."""
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as directory:
        options: dict[str, Any] = {}
        if tls:
            ca, cert, key = write_throwaway_ca(Path(directory))
            options = {"tls_cert_file": cert, "tls_key_file": key, "tls_ca_file": ca}
        server = LocalMongoServer(auth=auth, users={USER: password} if auth else None, **options)
        ctx.servers.append(server)
        try:
            server.start()
            with LatencyProxy(server.port, rtt_ms) as proxy:
                credentials = f"{USER}:{quote_plus(password)}@" if auth else ""
                # The server reports itself as a replica-set member at its own port: a direct connection keeps
                # the driver on the proxy instead of discovering the member behind it.
                query = "directConnection=true" + ("&authSource=admin" if auth else "")
                if tls:
                    query += f"&tls=true&tlsCAFile={quote_plus(options['tls_ca_file'])}"
                uri = f"mongodb://{credentials}127.0.0.1:{proxy.port}/?{query}"
                if server.pid is not None:
                    ctx.server_pids[uri] = server.pid
                try:
                    yield RemoteMongoDB(uri, rtt_ms, measure_rtt(uri), server.pid, proxy.pid)
                finally:
                    ctx.server_pids.pop(uri, None)
        finally:
            server.stop()
            ctx.servers.remove(server)
