"""Which endpoint carries the calls, and which servers a gateway trusts.

``secure=True`` keeps every call on the SSL endpoint and ``secure=False``
moves the calls after the login to plain TCP, as omero-py does; the
emulator counts calls per endpoint. ``ssl_ca_file`` makes the login verify
the server's certificate, chain and host name, which omero-py never does.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import Ice
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from aiomero.errors import AuthenticationError, PoolTimeout, ServerUnreachableError
from aiomero.gateway import AsyncGateway
from aiomero.pool import AsyncGatewayPool
from aiomero.testing import Emulator
from aiomero.testing._certs import CertificateFiles, make_certificates
from reliability_support import connected, gateway_for

EmulatorFactory = Callable[..., Emulator]


async def _some_calls(gateway: AsyncGateway) -> None:
    await gateway.getUser()
    await gateway.listProjects()
    await gateway.getGroupsMemberOf()
    await gateway.keepAlive()


def _self_signed_certificates() -> CertificateFiles:
    """A server certificate that is its own CA, as OMERO's generated ones are."""
    where = Path(tempfile.mkdtemp(prefix="aiomero-self-signed-"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aiomero"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    files = CertificateFiles(
        directory=where,
        cert_file=where / "server.pem",
        key_file=where / "server.key",
        bundle_file=where / "server-bundle.pem",
        ca_file=where / "server.pem",  # the certificate is its own authority
    )
    files.cert_file.write_bytes(cert_pem)
    files.key_file.write_bytes(key_pem)
    files.bundle_file.write_bytes(cert_pem + key_pem)
    return files


def _other_ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "other-ca.pem"
    other = trustme.CA(
        organization_name="elsewhere",
        organization_unit_name="another CA",
        key_type=trustme.KeyType.RSA,
    )
    other.cert_pem.write_to_path(str(path))
    return path


class TestEndpoints:
    async def test_secure_true_keeps_every_call_on_ssl(
        self, omero_emulator: Emulator
    ) -> None:
        """Login, calls and close all arrive on the SSL endpoint."""
        async with connected(omero_emulator, secure=True) as gateway:
            await _some_calls(gateway)
            assert (await gateway.session_info()).secure
        endpoints = omero_emulator.counters.endpoints
        assert endpoints["ssl"] > 0
        assert endpoints["tcp"] == 0

    async def test_secure_true_is_kept_by_a_sudo_session(
        self, omero_emulator: Emulator
    ) -> None:
        """A gateway made by suConn() from a secure one stays on SSL too."""
        async with connected(omero_emulator, "root", secure=True) as admin:
            child = await admin.suConn("bob")
            try:
                assert (await child.getUser()).omeName == "bob"
                await child.listProjects()
            finally:
                await child.close()
        assert omero_emulator.counters.endpoints["tcp"] == 0

    async def test_secure_false_moves_the_calls_after_login_to_tcp(
        self, omero_emulator: Emulator
    ) -> None:
        """The login is on SSL; every call after it arrives on plain TCP."""
        async with connected(omero_emulator, secure=False) as gateway:
            assert omero_emulator.counters.endpoints["ssl"] > 0  # the login
            omero_emulator.counters.reset()
            await _some_calls(gateway)
            assert not (await gateway.session_info()).secure
            endpoints = omero_emulator.counters.endpoints
        assert endpoints["tcp"] > 0
        assert endpoints["ssl"] == 0


class TestServerCertificate:
    async def test_without_a_ca_file_any_certificate_is_accepted(
        self, omero_emulator: Emulator
    ) -> None:
        """By default, as in omero-py, the server's certificate is not checked."""
        async with connected(omero_emulator, secure=True) as gateway:
            assert (await gateway.getUser()).omeName == "alice"

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_the_emulators_own_ca_is_accepted(
        self, omero_emulator: Emulator, host: str
    ) -> None:
        """The CA that signed the server's certificate verifies it, for the
        server's address and its name alike."""
        assert omero_emulator.ca_file is not None
        gateway = AsyncGateway(
            "alice",
            "alice-pw",
            host=host,
            port=omero_emulator.port,
            secure=True,
            ssl_ca_file=omero_emulator.ca_file,
        )
        await gateway.connect()
        try:
            assert (await gateway.getUser()).omeName == "alice"
        finally:
            await gateway.close()
        assert omero_emulator.counters.logins == 1

    async def test_a_self_signed_certificate_given_as_its_own_ca_is_accepted(
        self, omero_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A server with a self-signed certificate is verified against that
        very certificate."""
        monkeypatch.setattr(
            "aiomero.testing.server.make_certificates", _self_signed_certificates
        )
        emulator = omero_emulator_factory()
        assert emulator.ca_file is not None
        async with connected(
            emulator, secure=True, ssl_ca_file=emulator.ca_file
        ) as gateway:
            assert (await gateway.getUser()).omeName == "alice"

    async def test_a_certificate_of_another_ca_is_refused_before_the_password(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A server whose certificate the given CA did not sign: the login
        fails with ServerUnreachableError, and no login reached the server."""
        gateway = gateway_for(
            omero_emulator, secure=True, ssl_ca_file=_other_ca_file(tmp_path)
        )
        with pytest.raises(ServerUnreachableError, match="certificate") as caught:
            await gateway.connect()
        assert not isinstance(caught.value, AuthenticationError)
        assert isinstance(caught.value.__cause__, Ice.SecurityException)
        assert "createSession" not in omero_emulator.counters.calls
        assert omero_emulator.counters.logins == 0
        assert not gateway.isConnected()

    async def test_a_certificate_for_another_host_is_refused(
        self, omero_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A certificate from the right CA that names another host is refused:
        the chain alone does not make a server the one asked for."""
        monkeypatch.setattr(
            "aiomero.testing.server.make_certificates",
            lambda: make_certificates(hosts=("omero.example.org",)),
        )
        emulator = omero_emulator_factory()
        gateway = gateway_for(emulator, secure=True, ssl_ca_file=emulator.ca_file)
        with pytest.raises(ServerUnreachableError, match="certificate"):
            await gateway.connect()
        assert emulator.counters.logins == 0

    async def test_a_ca_signed_certificate_alone_is_not_a_trust_anchor(
        self, omero_emulator: Emulator
    ) -> None:
        """The file must hold the CA that signed the server's certificate;
        the server's own certificate is enough only when self-signed."""
        assert omero_emulator.ca_file is not None
        leaf = omero_emulator.ca_file.parent / "server.pem"
        gateway = gateway_for(omero_emulator, secure=True, ssl_ca_file=leaf)
        with pytest.raises(ServerUnreachableError, match="certificate"):
            await gateway.connect()
        assert omero_emulator.counters.logins == 0

    async def test_connections_a_pool_joins_check_the_certificate_too(
        self, omero_emulator_factory: EmulatorFactory, tmp_path: Path
    ) -> None:
        """With ``join_sessions=True`` the connections joined to the first
        session verify the server like its login: after a restart under a
        new CA, the pool joins nothing and logs in nowhere."""
        emulator = omero_emulator_factory()
        assert emulator.ca_file is not None
        first_ca = tmp_path / "first-ca.pem"
        shutil.copyfile(emulator.ca_file, first_ca)
        pool = AsyncGatewayPool(
            "alice", "alice-pw", host=emulator.host, port=emulator.port,
            secure=True, ssl_ca_file=first_ca, join_sessions=True,
            min_size=1, max_size=2, timeout=2.0,
        )  # fmt: skip
        async with pool, pool.acquire():
            emulator.restart(keep_sessions=True)
            joins, logins = emulator.counters.joins, emulator.counters.logins
            with pytest.raises(PoolTimeout, match="certificate"):
                async with pool.acquire():
                    pass
            assert emulator.counters.joins == joins
            assert emulator.counters.logins == logins
