"""Throwaway TLS certificates for the simulated endpoints (Redfish BMCs,
SMTP over TLS) and for tests: a self-signed CA certificate, written as
PEM files with the key readable by its owner only."""
from __future__ import annotations

import datetime
import ipaddress
import os
import typing as t

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ca_certificate(key: ec.EllipticCurvePrivateKey, subject: x509.Name,
                   valid: tuple[datetime.datetime, datetime.datetime],
                   sans: t.Sequence[x509.GeneralName] = (),
                   ) -> x509.Certificate:
    """A self-signed CA certificate for ``key``, valid over ``valid``
    (not before, not after); with ``sans`` it also names a server, so
    its own path works as a ``cafile`` for that server."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0]).not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                       critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True))
    if sans:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = (
            builder.add_extension(x509.SubjectAlternativeName(list(sans)),
                                  critical=False)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier
                           .from_issuer_subject_key_identifier(ski),
                           critical=False))
    return builder.sign(key, hashes.SHA256())


def write_cert(path: str, cert: x509.Certificate) -> None:
    with open(path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    """The key as PKCS#8 PEM, created mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def make_self_signed_cert(directory: str,
                          host: str = '127.0.0.1') -> tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` for ``host`` into ``directory``.

    The certificate is its own CA, so its path works as a ``cafile``.
    Returns (cert path, key path).
    """
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName('localhost')]
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        sans.append(x509.DNSName(host))
    valid = (now - datetime.timedelta(minutes=5),
             now + datetime.timedelta(days=2))
    cert = ca_certificate(
        key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]),
        valid, sans)
    cert_path = os.path.join(directory, 'cert.pem')
    key_path = os.path.join(directory, 'key.pem')
    write_cert(cert_path, cert)
    write_key(key_path, key)
    return cert_path, key_path
