"""Which SAML library the console's sign-in uses: pysaml2 and python3-saml side by side, each
verifying the same signed Responses (RSA-2048, SHA-256, made by a pysaml2 IdP with a key made
here), interleaved, with CPU time counted for this process AND its children (pysaml2 runs the
xmlsec1 program per signature; python3-saml calls libxmlsec1 in-process).

Not part of the project's dependencies: python3-saml lives in a venv of its own, e.g.
    python3 -m venv /tmp/samlcmp && /tmp/samlcmp/bin/pip install pysaml2==7.5.5 python3-saml==1.16.0
    /tmp/samlcmp/bin/python bench/saml_libraries.py
(apt: xmlsec1 for pysaml2; libxmlsec1-dev to build python3-saml's xmlsec binding if no wheel fits).
Sign-in happens once per console session, never on the request path: the numbers decide the
library only if they differ by orders of magnitude.
"""

from __future__ import annotations

import base64
import datetime
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server


def key_pair(folder: Path) -> tuple[str, str]:
    """An RSA-2048 key and a self-signed certificate (PEM files)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-idp")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / "idp.key", folder / "idp.crt"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


ROUNDS = int(os.environ.get("ROUNDS", "40"))
SHA256 = ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256")
IDP, SP, ACS = "http://127.0.0.1:1/idp", "http://127.0.0.1:2/admin/saml/metadata", "http://127.0.0.1:2/admin/saml/acs"


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    key_file, cert_file = key_pair(folder)
    idp_raw = {
        "entityid": IDP,
        "key_file": key_file,
        "cert_file": cert_file,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(IDP + "/sso", BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}}},
            }
        },
    }
    idp_conf = IdPConfig()
    idp_conf.load(dict(idp_raw))
    idp_metadata = str(entity_descriptor(idp_conf))
    sp_conf = SPConfig()
    sp_conf.load(
        {
            "entityid": SP,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": [idp_metadata]},
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]},
                    "want_assertions_or_response_signed": True,
                    "allow_unsolicited": False,
                }
            },
        }
    )
    sp = Saml2Client(sp_conf)
    idp_conf = IdPConfig()
    idp_conf.load({**idp_raw, "metadata": {"inline": [str(entity_descriptor(sp_conf))]}})
    idp = Server(config=idp_conf)
    cert = "".join(Path(cert_file).read_text().splitlines()[1:-1])
    onelogin = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {"entityId": SP, "assertionConsumerService": {"url": ACS, "binding": BINDING_HTTP_POST}},
            "idp": {"entityId": IDP, "singleSignOnService": {"url": IDP + "/sso"}, "x509cert": cert},
            "security": {"wantAssertionsSigned": False, "wantMessagesSigned": False},
        }
    )
    request_data = {"https": "off", "http_host": "127.0.0.1", "server_port": "2", "script_name": "/admin/saml/acs"}

    samples: dict[str, list[float]] = {"pysaml2": [], "python3-saml": []}
    walls: dict[str, list[float]] = {"pysaml2": [], "python3-saml": []}
    for i in range(ROUNDS):
        request_id = f"id-bench-{i:04d}"
        made = idp.create_authn_response(
            identity={"mail": ["dana@example.org"]},
            in_response_to=request_id,
            destination=ACS,
            sp_entity_id=SP,
            name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text="dana"),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=True,
            sign_assertion=False,
            sign_alg=SHA256[0],
            digest_alg=SHA256[1],
        )
        posted = base64.b64encode(str(made).encode()).decode()
        order = ["pysaml2", "python3-saml"] if i % 2 == 0 else ["python3-saml", "pysaml2"]
        for name in order:
            start, wall = cpu(), time.perf_counter()
            if name == "pysaml2":
                ok = (
                    sp.parse_authn_request_response(posted, BINDING_HTTP_POST, outstanding={request_id: "/"})
                    is not None
                )
            else:
                response = OneLogin_Saml2_Response(onelogin, posted)
                ok = response.is_valid(request_data, request_id, raise_exceptions=True)
            samples[name].append(cpu() - start)
            walls[name].append(time.perf_counter() - wall)
            assert ok, name
    for name, values in samples.items():
        ms = sorted(v * 1000 for v in values)
        wall_ms = sorted(v * 1000 for v in walls[name])
        print(
            f"{name:13s} per verified response: CPU (self + children) p50 {statistics.median(ms):.2f} ms, "
            f"p90 {ms[int(len(ms) * 0.9)]:.2f} ms; wall p50 {statistics.median(wall_ms):.2f} ms; n={len(ms)}"
        )


if __name__ == "__main__":
    main()
