"""A private certificate authority for TLS tests, made with ``cryptography``.

``CertificateAuthority(dir).issue('m0', ips=['127.0.0.1'])`` writes a
certificate and key signed by the CA, usable both as a server and as a
client certificate (etcd members use one pair for clients and peers).
"""
from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

from freezer_dr.simulator import certs

VALID_FOR = datetime.timedelta(days=30)


@dataclasses.dataclass(frozen=True)
class Issued:
    cert: str       # PEM certificate path
    key: str        # PEM private key path


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'freezer-dr tests'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class CertificateAuthority:
    """A self-signed CA whose files live in ``directory``."""

    def __init__(self, directory: str, name: str = 'ca') -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self._key = certs.new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = certs.ca_certificate(
            self._key, _name(f'freezer-dr test CA {name}'),
            (now - datetime.timedelta(days=1), now + VALID_FOR))
        self.cert = os.path.join(directory, f'{name}.pem')
        certs.write_cert(self.cert, self._cert)

    def issue(self, name: str, ips: list[str] = (),
              dns: list[str] = ()) -> Issued:
        """A certificate for ``name`` (server and client use)."""
        key = certs.new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.SERVER_AUTH,
                ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if alt:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        issued = Issued(os.path.join(self.directory, f'{name}.pem'),
                        os.path.join(self.directory, f'{name}.key'))
        certs.write_cert(issued.cert, cert)
        certs.write_key(issued.key, key)
        return issued
