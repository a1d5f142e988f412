"""A throw-away certificate authority and server certificate for the simulator's HTTPS."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA certificate (for clients) and the server's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    thumbprint: str  # SHA-1 of the server certificate, colon-separated, as vSphere shows it
    ca_key_file: Path | None = None  # the CA's key, to sign more certificates (issue_certificate)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pytest-vsphere-clone simulator")])


def create_tls_files(directory: Path, hosts: list[str]) -> TlsFiles:
    """Make a CA and a server certificate for ``hosts`` (names or IPs) in ``directory``.

    The CA's key is kept there too (``ca.key``), so :func:`issue_certificate` can sign the
    certificates of the simulated ESXi hosts with the same CA, as VMCA signs a real vCenter's
    hosts' certificates.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("pytest-vsphere-clone simulator CA"))
        .issuer_name(_name("pytest-vsphere-clone simulator CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_key_file = directory / "ca.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key_file, ca_key)
    cert_file, key_file, thumbprint = _leaf(directory, "server", hosts, ca_cert, ca_key)
    return TlsFiles(ca_file, cert_file, key_file, thumbprint, ca_key_file)


def issue_certificate(ca: TlsFiles, directory: Path, stem: str, hosts: list[str]) -> TlsFiles:
    """A server certificate for ``hosts`` signed by the CA of ``ca`` (``<stem>.pem``/``<stem>.key``)."""
    if ca.ca_key_file is None:
        raise ValueError("this CA's key was not kept: it cannot sign more certificates")
    ca_cert = x509.load_pem_x509_certificate(ca.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.ca_key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"unexpected CA key type {type(ca_key).__name__}")
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file, thumbprint = _leaf(directory, stem, hosts, ca_cert, ca_key)
    return TlsFiles(ca.ca_file, cert_file, key_file, thumbprint, ca.ca_key_file)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _leaf(directory: Path, stem: str, hosts: list[str], ca_cert: x509.Certificate,
          ca_key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path, str]:
    """(certificate file, key file, SHA-1 thumbprint) of a new server certificate for ``hosts``."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = directory / f"{stem}.pem"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_file, key)
    digest = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return cert_file, key_file, ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
