"""Checks that turn a pattern match into a finding: checksums, entropy, placeholder filters."""

from __future__ import annotations

import ipaddress
import math
import re
import zlib
from collections import Counter
from collections.abc import Callable

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum.es import dni as es_dni
from stdnum.fr import nir as fr_nir
from stdnum.gb import nhs as gb_nhs
from stdnum.it import codicefiscale as it_cf
from stdnum.nl import bsn as nl_bsn
from stdnum.us import ssn as us_ssn

from egress.detect.context import credential_value, vendor_near_miss

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def shannon_entropy(value: str) -> float:
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = _BASE62[digit] + out
    return out.rjust(width, "0")


def github_checksum(secret: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    """GitHub's prefixed tokens (ghp_, gho_, ghu_, ghs_, ghr_; also Vercel's vcp_) end in a
    6-character base62 CRC32 (zlib) of the random characters between the `_` and the checksum;
    a random look-alike passes about 1 time in 56 billion."""
    _prefix, sep, body = secret.partition("_")
    if not sep or len(body) < 7:
        return True  # not a shape this check knows: leave the decision to the rule
    random_part, check = body[:-6], body[-6:]
    return _base62(zlib.crc32(random_part.encode("ascii", "replace")), 6) == check


def _luhn_ok(digits: str) -> bool:
    digits = re.sub(r"\D", "", digits)
    if not 12 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- personal data, code-aware ----------------------------------------------------------------
# Each check sees the candidate value and where it sits, so it can reject what code makes look
# like personal data: version strings, hashes, UUIDs, integrity strings, base64 blobs.

_CARD_IIN = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9])|35|30[0-5]|36|38|62)")
_EXAMPLE_DOMAINS = re.compile(
    r"(?i)@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|test|invalid|localhost|local|email\.com|domain\.com|"
    r"users\.noreply\.github\.com|sentry\.io)$"
)
_ASSET_SUFFIX = re.compile(r"(?i)@\d+x\.(?:png|jpg|jpeg|gif|webp|svg)$|\.(?:png|jpg|jpeg|gif|svg|js|css|py|ts)$")


def _before(text: str, start: int, n: int = 24) -> str:
    return text[max(0, start - n) : start]


def _after(text: str, end: int, n: int = 2) -> str:
    return text[end : end + n]


def _inside_blob(text: str, start: int, end: int) -> bool:
    """A run of base64/hex characters much longer than the candidate: an image, hash or key."""
    lo, hi = start, end
    while lo > 0 and (text[lo - 1].isalnum() or text[lo - 1] in "+/=_-") and start - lo < 200:
        lo -= 1
    while hi < len(text) and (text[hi].isalnum() or text[hi] in "+/=_-") and hi - end < 200:
        hi += 1
    return (hi - lo) > (end - start) + 16


def luhn(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    digits = re.sub(r"\D", "", value)
    if not _luhn_ok(digits) or not _CARD_IIN.match(digits) or len(set(digits)) < 4:
        return False
    if text and (_inside_blob(text, start, end) or re.search(r"[.\d]$", _before(text, start, 1))):
        return False
    return True


# Role and machine mailboxes name no person: they are not personal data. Claude Code's system
# prompt carries `noreply@anthropic.com` in every request; a policy must not see PII there.
_ROLE_MAILBOX = re.compile(
    r"(?i)^(?:no-?reply|do-?not-?reply|notifications?|mailer-daemon|postmaster|hostmaster|webmaster|abuse|"
    r"security|privacy|support|help|info|contact|hello|sales|billing|admin|root|noc|dmarc|bounces?)$"
)


def email(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    if _EXAMPLE_DOMAINS.search(value) or _ASSET_SUFFIX.search(value):
        return False
    local, _, domain = value.rpartition("@")
    if _ROLE_MAILBOX.match(local):
        return False
    if not local or "." not in domain or domain.split(".")[-1].isdigit():
        return False  # npm-style name@1.2.3, git refs
    if text and (_before(text, start, 1) in ("/", ":") or _after(text, end, 1) == ":"):
        return False  # scp-style remotes (git@github.com:org/repo.git), URLs with a user part
    return True


def phone(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    if text and (re.search(r"[\w.\-/]$", _before(text, start, 1)) or re.match(r"\w|[.\-]\d", _after(text, end, 2))):
        return False  # part of a longer token: an id, a version, a path
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def iban(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    return stdnum_iban.is_valid(value)


_VERSION_CONTEXT = re.compile(r"(?i)(?:version|ver|v|release|tag)\w*[\"']?\s*[:=]?\s*[\"']?$|(?:==|>=|<=|~=|\^|~)\s*$")


def ipv4(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified or address.is_multicast or address.is_reserved:
        return False
    if address.is_link_local or str(address).startswith("255."):
        return False
    if text:
        if _VERSION_CONTEXT.search(_before(text, start)) or re.match(r"\.\d", _after(text, end)):
            return False  # a version string (1.2.3.4, v1.2.3.4, 1.2.3.4.5)
        if re.search(r"[\w.]$", _before(text, start, 1)) or re.match(r"[\w]", _after(text, end, 1)):
            return False
    return True


def ipv6(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    if value.count(":") < 3:
        return False
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified or address.is_link_local or address.is_multicast:
        return False
    # Timestamps, C++ scopes and MAC-like strings are not addresses: require hex groups with letters
    # or a compressed form with enough groups.
    return "::" in value or sum(1 for g in value.split(":") if g) >= 6


# Claude Code's Read tool prefixes each line with its number and an arrow ("     1→").
_ENV_LINE = re.compile(r"(?m)^(?:[ \t]*\d{1,6}(?:\u2192|\t))?(?:export )?[A-Z][A-Z0-9_]{1,60}=")


def dotenv_context(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    """The credential line sits among other VAR=value lines: the content of an env file."""
    lo = max(0, start - 2000)
    return len(_ENV_LINE.findall(text, lo, min(len(text), end + 2000))) >= 3


def _stdnum(module: object) -> Callable[..., bool]:
    def check(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
        return bool(module.is_valid(value))  # type: ignore[attr-defined]

    return check


VALIDATORS: dict[str, Callable[..., bool]] = {
    "github_checksum": github_checksum,
    "credential_value": credential_value,
    "vendor_near_miss": vendor_near_miss,
    "luhn": luhn,
    "email": email,
    "phone": phone,
    "iban": iban,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "us_ssn": _stdnum(us_ssn),
    "fr_nir": _stdnum(fr_nir),
    "es_dni": _stdnum(es_dni),
    "it_codicefiscale": _stdnum(it_cf),
    "nl_bsn": _stdnum(nl_bsn),
    "gb_nhs": _stdnum(gb_nhs),
    "dotenv_context": dotenv_context,
}
# Checks of a vendor format's structure (a checksum): a value that fails one is a near miss, a
# `likely` finding, not nothing.
NEAR_MISS_VALIDATORS = frozenset({"github_checksum"})

# Values that documentation, templates and tests use in place of a real secret. Each pattern must
# be rare in uniformly random secrets (under 1e-6 of a rule's random secrets; docs/detection.md):
# `xxxx`, a leading `abcd`/`1234`, a bare `{{` or any `<…>`/`[…]` each dropped 1e-5 to 3e-3 of
# some rule's real keys (oracle-oci-auth-token's class holds `{}<>[]`).
_PLACEHOLDER = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|_+|#+|0+|123456.*|abcdef.*|1234abcd.*|abcd1234.*|(.)\1{5,}|"
    r"<[A-Za-z _-]*>|\[[A-Za-z _-]*\]|\{\{.*\}\}|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|%\([^)]*\)s|%[A-Z_]+%)$"
)
_PLACEHOLDER_WORDS = re.compile(
    r"(?i)x{6,}|\*{4,}|example|placeholder|changeme|change_me|change-me|your[_-]?(?:api[_-]?)?"
    r"(?:key|token|secret|password)|redacted|dummy|sample|insert[_-]|replace[_-]?me|not[_-]?a[_-]?real|"
    r"fake[_-]?(?:key|token|secret|password)|<your|\$\{|\{\{[\w.\s-]*\}\}"
)
_REPEATED_TAIL = re.compile(r"(.{1,4}?)\1{2,}$", re.DOTALL)
# Published example credentials (AWS documentation, Stripe docs, …): matching them is noise.
KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ASIAIOSFODNN7EXAMPLE",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_test_TYooMQauvdEDq54NiTphI7jx",
    }
)


def is_placeholder(value: str) -> bool:
    """True for template values, documentation keys and obviously fake secrets."""
    if value in KNOWN_EXAMPLES:
        return True
    if _PLACEHOLDER.match(value) or _PLACEHOLDER_WORDS.search(value):
        return True
    # A long value made of very few distinct characters is filler (aaaa…, 0000…, abab…).
    if len(value) >= 8 and len(set(value)) <= 2:
        return True
    # A short unit repeated to the end over half the value is filler after a vendor prefix
    # (LTAIabcdabcdabcd): calibrated entropy thresholds are low enough to let some through.
    tail = _REPEATED_TAIL.search(value)
    return len(value) >= 12 and tail is not None and 2 * len(tail.group(0)) >= len(value)
