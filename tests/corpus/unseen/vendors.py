"""Part (a): vendor token formats that no bundled rule was written for when this set was made.

Each format is the shape its vendor documents (prefix, alphabet, length, separators); every
value is random. The set is held apart: rules are written from the vendors' documentation, never
from these generators, and the build holds only that recall does not fall.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass

from tests.corpus.matrix.families import ALNUM, HEX, LOWER_ALNUM, UPPER_ALNUM, URLSAFE, Value, pick

UPPER_HEX = "0123456789ABCDEF"
LOWER_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@dataclass(frozen=True, slots=True)
class VendorFormat:
    name: str
    env: str  # the name a developer would give it (FOO_API_KEY)
    make: Callable[[random.Random], Value]


def shape(*parts: str | tuple[str, int]) -> Callable[[random.Random], Value]:
    def make(rng: random.Random) -> Value:
        token = "".join(p if isinstance(p, str) else pick(rng, p[0], p[1]) for p in parts)
        return Value(token, token)

    return make


def either(*makers: Callable[[random.Random], Value]) -> Callable[[random.Random], Value]:
    return lambda rng: rng.choice(makers)(rng)


def cloudinary(rng: random.Random) -> Value:
    secret = pick(rng, URLSAFE, 27)
    return Value(f"cloudinary://{pick(rng, '123456789', 15)}:{secret}@{pick(rng, 'abcdefghkmnp', 8)}", secret)


def minisign(rng: random.Random) -> Value:
    # Ed25519 + scrypt + BLAKE2b header ("EdScB2"), then salt, ops/mem limits and the encrypted key.
    body = base64.b64encode(b"EdScB2" + rng.randbytes(152)).decode()
    return Value(f"untrusted comment: minisign encrypted secret key\n{body}", body)


VENDORS: tuple[VendorFormat, ...] = (
    VendorFormat("brevo-api-key", "BREVO_API_KEY", shape("xkeysib-", (HEX, 64), "-", (ALNUM, 16))),
    VendorFormat("brevo-smtp-key", "SMTP_KEY", shape("xsmtpsib-", (HEX, 64), "-", (ALNUM, 16))),
    VendorFormat(
        "shippo-token", "SHIPPO_TOKEN", either(shape("shippo_live_", (HEX, 40)), shape("shippo_test_", (HEX, 40)))
    ),
    VendorFormat("easypost-key", "EASYPOST_API_KEY", either(shape("EZAK", (ALNUM, 54)), shape("EZTK", (ALNUM, 54)))),
    VendorFormat(
        "duffel-token",
        "DUFFEL_ACCESS_TOKEN",
        either(shape("duffel_live_", (URLSAFE, 43)), shape("duffel_test_", (URLSAFE, 43))),
    ),
    VendorFormat("readme-api-key", "README_API_KEY", shape("rdme_", (LOWER_ALNUM, 70))),
    VendorFormat("prefect-api-key", "PREFECT_API_KEY", either(shape("pnu_", (ALNUM, 36)), shape("pnb_", (ALNUM, 36)))),
    VendorFormat("clojars-token", "CLOJARS_PASSWORD", shape("CLOJARS_", (LOWER_ALNUM, 60))),
    VendorFormat("adafruit-io-key", "ADAFRUIT_IO_KEY", shape("aio_", (ALNUM, 28))),
    VendorFormat("telnyx-api-key", "TELNYX_API_KEY", shape("KEY", (UPPER_HEX, 32), "_", (ALNUM, 22))),
    VendorFormat("cloudinary-url", "CLOUDINARY_URL", cloudinary),
    VendorFormat("postman-collection-token", "POSTMAN_ACCESS_KEY", shape("PMAT-", (UPPER_ALNUM, 26))),
    VendorFormat("minisign-secret-key", "MINISIGN_KEY", minisign),
    VendorFormat(
        "docker-swarm-join-token", "SWARM_TOKEN", shape("SWMTKN-1-", (LOWER_ALNUM, 50), "-", (LOWER_ALNUM, 25))
    ),
    VendorFormat("k3s-node-token", "K3S_TOKEN", shape("K10", (HEX, 64), "::server:", (HEX, 32))),
    VendorFormat("volcengine-access-key", "VOLC_ACCESSKEY", shape("AKLT", (ALNUM, 43))),
    VendorFormat("jdcloud-access-key", "JDC_ACCESS_KEY", shape("JDC_", (UPPER_HEX, 28))),
    VendorFormat("digitalocean-spaces-key", "SPACES_ACCESS_KEY_ID", shape("DO00", (UPPER_ALNUM, 16))),
    VendorFormat(
        "onesignal-rest-key",
        "ONESIGNAL_REST_API_KEY",
        either(shape("os_v2_app_", (LOWER_BASE32, 113)), shape("os_v2_org_", (LOWER_BASE32, 113))),
    ),
    VendorFormat("resend-api-key", "RESEND_API_KEY", shape("re_", (ALNUM, 8), "_", (ALNUM, 24))),
    VendorFormat(
        "stytch-secret",
        "STYTCH_SECRET",
        either(shape("secret-live-", (URLSAFE, 36)), shape("secret-test-", (URLSAFE, 36))),
    ),
    VendorFormat("browserbase-key", "BROWSERBASE_API_KEY", shape("bb_live_", (URLSAFE, 27))),
    VendorFormat("e2b-api-key", "E2B_API_KEY", shape("e2b_", (HEX, 40))),
    VendorFormat("voyage-api-key", "VOYAGE_API_KEY", shape("pa-", (URLSAFE, 43))),
    VendorFormat("brave-search-key", "BRAVE_API_KEY", shape("BSA", (ALNUM, 27))),
    VendorFormat("honeybadger-token", "HONEYBADGER_PERSONAL_AUTH_TOKEN", shape("hbp_", (ALNUM, 36))),
    VendorFormat("rootly-api-key", "ROOTLY_API_TOKEN", shape("rootly_", (HEX, 64))),
)


@dataclass(frozen=True, slots=True)
class VendorSyntax:
    name: str
    render: Callable[[str, str], str]  # (env name, value) -> text


def _camel(env: str) -> str:
    words = env.lower().split("_")
    return words[0] + "".join(w.capitalize() for w in words[1:])


VENDOR_SYNTAXES: tuple[VendorSyntax, ...] = (
    VendorSyntax("dotenv", lambda n, v: f"{n}={v}"),
    VendorSyntax("python-kwarg", lambda n, v: f'client = Client(api_key="{v}", timeout=30)'),
    VendorSyntax("js-object", lambda n, v: f"const client = new Client({{ {_camel(n)}: '{v}' }});"),
    VendorSyntax("yaml-nested", lambda n, v: f"integrations:\n  vendor:\n    {n.lower()}: {v}"),
    VendorSyntax("json-neutral", lambda n, v: f'{{"name": "ci", "value": "{v}"}}'),
    VendorSyntax("prose", lambda n, v: f"I rotated it yesterday, the new one is {v} -- can you update the runner?"),
    VendorSyntax("cli-flag", lambda n, v: f"vendorctl --region eu-west-1 --key {v} sync"),
    VendorSyntax("log-json", lambda n, v: f'{{"ts":"2025-05-02T08:11:09Z","level":"debug","cfg":"{v}"}}'),
)
