"""A throwaway certificate authority and server certificate for the SSL port.

omero-py's client does not verify the server's certificate
(``IceSSL.VerifyPeer=0``), so any certificate will do; one made fresh for
each emulator keeps private keys out of the package and the repository.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["CertificateFiles", "make_certificates"]


@dataclass(frozen=True)
class CertificateFiles:
    """PEM files of a server certificate, its key and the CA that signed it.

    ``bundle_file`` holds the certificate followed by its key, the form
    Ice 3.6's IceSSL reads from ``IceSSL.CertFile`` alone.
    """

    directory: Path
    cert_file: Path
    key_file: Path
    bundle_file: Path
    ca_file: Path


def make_certificates(
    directory: Path | None = None, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> CertificateFiles:
    """Write a new CA and a server certificate for ``hosts`` into ``directory``.

    Without a directory, a new temporary one is made; the caller removes it.
    RSA keys, because every OpenSSL build Ice links against accepts them.
    """
    where = Path(directory or tempfile.mkdtemp(prefix="aiomero-emulator-"))
    # Plain names: trustme's default ones hold a '#', which the RFC 2253
    # parser of Ice 3.6's IceSSL rejects on the client side.
    ca = trustme.CA(
        organization_name="aiomero",
        organization_unit_name="emulator CA",
        key_type=trustme.KeyType.RSA,
    )
    leaf = ca.issue_cert(
        *hosts,
        common_name="aiomero emulator",
        organization_name="aiomero",
        organization_unit_name="emulator",
        key_type=trustme.KeyType.RSA,
    )

    files = CertificateFiles(
        directory=where,
        cert_file=where / "server.pem",
        key_file=where / "server.key",
        bundle_file=where / "server-bundle.pem",
        ca_file=where / "ca.pem",
    )
    leaf.cert_chain_pems[0].write_to_path(str(files.cert_file))
    leaf.private_key_pem.write_to_path(str(files.key_file))
    files.bundle_file.write_bytes(
        leaf.cert_chain_pems[0].bytes() + leaf.private_key_pem.bytes()
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.key_file.chmod(0o600)
    files.bundle_file.chmod(0o600)
    return files
