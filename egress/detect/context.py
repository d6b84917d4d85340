"""Key-in-context credentials: a value is a generic credential when its key names one and the
value has the shape of one.

The patterns (egress/detect/rules/generic.toml) find `key <operator> value` in every syntax:
assignments, declarations, setter calls, structured files, command lines, headers, URLs. They
are deliberately loose; the two judgements here decide:

  * `credential_name(key)`: the key's last credential word (password, passwd, pwd, pass, secret,
    token, api key, access key, private key, credential, auth, …) ends the name, up to
    qualifiers that keep the meaning (DB_PASSWORD_PROD, smtpPass, x-api-key), and no word before
    it turns it into something else (next_page_token, csrf_token, public_key).
  * `credential_value(value)`: the value is a literal with a secret's shape (length, character
    classes, entropy, words), not a reference, call, template, type name or placeholder.

Both are pure functions of their text, so they cost nothing on text the patterns do not match.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# --- the key ------------------------------------------------------------------------------------

# Words that name a credential by themselves (also as the end of one lower-case run: PGPASSWORD,
# dbpass, mysqlpwd, authtoken).
_STEMS = (
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "passwort",
    "passe",  # mot_de_passe, motdepasse
    "pass",
    "pwd",
    "pw",
    "secret",
    "secrets",
    "token",
    "tokens",
    "apikey",
    "credential",
    "credentials",
    "creds",
    "cred",
    "auth",
    "authorization",
    "accesskey",
    "secretkey",
    "privatekey",
    "clientsecret",
    "connectionstring",
    "connstr",
)
# `key` names a credential only after one of these (api_key, access-key, SigningKey, …).
_KEY_QUALIFIERS = frozenset(
    {
        "api", "access", "private", "secret", "signing", "sign", "encryption", "encrypt", "crypt",
        "crypto", "master", "auth", "app", "application", "client", "account", "shared", "subscription",
        "consumer", "session", "service", "admin", "license", "licence", "hmac", "jwt", "cipher", "aes",
        "storage", "sas", "webhook", "write", "read", "deploy", "root", "ssh", "gpg", "pgp", "mac",
        "token", "bearer", "user", "developer", "dev", "server", "partner", "merchant", "integration",
        "project", "org", "organization", "management", "primary", "secondary", "rest", "live",
        "enc", "ingest", "data", "decrypt", "decryption", "kms", "unseal", "recovery", "seed", "otp",
        "totp", "wrap", "wrapping",
    }
)  # fmt: skip
# `string` after `connection` (connection_string, ConnectionString).
_PAIRS = {("connection", "string"), ("conn", "string"), ("conn", "str"), ("db", "url"), ("database", "url")}
# Words that may follow the credential word without changing what the name means.
_TRAILING = frozenset(
    {
        "value", "val", "str", "string", "plain", "plaintext", "raw", "b64", "base64", "hex", "enc",
        "encoded", "encrypted", "env", "prod", "production", "dev", "development", "staging", "stage",
        "stg", "test", "testing", "qa", "uat", "local", "live", "sandbox", "primary", "secondary",
        "old", "new", "current", "next", "prev", "previous", "backup", "default", "override", "data",
        "key", "secret", "text", "v1", "v2", "v3", "var",
    }
)  # fmt: skip
# Words before the credential word that make the name mean something that is not a secret.
_NOT_SECRET = frozenset(
    {
        "page", "next", "continuation", "csrf", "xsrf", "sync", "cursor", "pagination", "max", "min",
        "num", "eos", "bos", "pad", "unk", "sep", "cls", "mask", "change", "request", "purchase",
        "update", "idempotency", "resume", "lock", "cancel", "cancellation", "registration", "invite",
        "unsubscribe", "sequence", "forward", "backward", "lifecycle", "creation", "import", "export",
        "copy", "public", "publishable", "by", "bypass", "compass", "surpass", "trespass", "overpass",
        "underpass", "encompass", "first", "boarding", "free", "no", "has", "is", "use", "show", "hide",
        "enable", "disable", "require", "requires", "required", "check", "verify", "validate", "reset",
        "forgot", "forgotten", "confirm", "confirmation", "repeat", "retype", "expected", "last",
        "special", "start", "end", "stop", "eof", "bad", "invalid", "missing", "empty", "total",
        "count", "input", "output", "prompt", "completion", "cached", "reasoning", "context", "sso",
    }
)  # fmt: skip

# Pairs whose meaning is not a secret: AWS's ClientToken is an idempotency key.
_NOT_SECRET_PAIRS = frozenset({("client", "token"), ("client", "tokens")})

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# "Password" in other languages (German, Spanish, Portuguese, Dutch, Italian, Finnish, Swedish,
# Polish, Russian, Chinese, Japanese, Danish, Hungarian, Turkish): a key that ends with one, up to
# the qualifiers that keep the meaning, names a credential. French (mot de passe) ends with `passe`.
_FOREIGN = re.compile(
    r"(kennwort|contrase[ñn]a|senha|wachtwoord|parola|salasana|l[öo]senord|has[łl]o|пароль|密码|パスワード|"
    r"adgangskode|jelsz[óo]|[şs]ifre)([\w.-]{0,12})$"
)


def _words(key: str) -> list[str]:
    """The key's words, lower-cased: DB_PASSWORD, dbPassword and db-password give db, password."""
    return [w.lower() for w in _WORDS.findall(key)]


def _stem_at_end(word: str) -> str | None:
    """The credential stem `word` ends with, with what comes before it (PGPASSWORD: pg)."""
    for stem in _STEMS:
        if word.endswith(stem):
            return word[: -len(stem)]
    return None


def credential_name(key: str) -> bool:
    """Whether the key (a variable, field, header, flag or setting name) names a credential."""
    if "::" in key:
        return False  # a type or resource path (AWS::ApiGateway::ApiKey, Config::Secret)
    last = key.rpartition(":")[2]
    foreign = _FOREIGN.search(last.lower())
    if foreign and all(w in _TRAILING or w.isdigit() for w in _words(foreign.group(2))):
        return True
    words = _words(last)
    while words and (words[-1] in _TRAILING or words[-1].isdigit()) and len(words) > 1:
        if _names_credential(words):
            return True
        words = words[:-1]
    return _names_credential(words)


def _names_credential(words: list[str]) -> bool:
    if not words:
        return False
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if (before, last) in _PAIRS:
        return True
    if (before, last) in _NOT_SECRET_PAIRS:
        return False
    if last in ("key", "keys"):
        return before in _KEY_QUALIFIERS and before not in _NOT_SECRET
    if last in ("string", "str") and before in ("connection", "conn"):
        return True
    prefix = _stem_at_end(last)
    if prefix is None:
        return False
    if prefix and (prefix in _NOT_SECRET or (prefix + last[len(prefix) :]) in _NOT_SECRET):
        return False
    if last in _NOT_SECRET:
        return False
    if last in ("pw", "pass", "auth") and prefix == "" and before in ("no", "by", "sso"):
        return False
    return before not in _NOT_SECRET


# --- the value ----------------------------------------------------------------------------------

# References, calls and templating: never a literal secret.
_REFERENCE = re.compile(
    r"""^(?:\$\{|\$\(|\$[A-Za-z_]|%\(|%[A-Za-z_]+%|\{\{|\{%|\{[A-Za-z_][\w.]*\}|<%|#\{|@\{|\[\[|
         (?:process\.env|os\.environ|os\.getenv|getenv|env|ENV|System\.getenv|Environment\.)[.\[(:]|
         (?:secrets|vars|env|inputs|steps|needs|matrix)\.[A-Za-z_]|
         !(?:Ref|Sub|GetAtt|ImportValue)\b|ref\+|vault:|arn:|file:|env:|ssm:|secretsmanager:|
         (?:https?|file)://)""",
    re.VERBOSE,
)
_TEMPLATE_INSIDE = re.compile(r"\$\{|\{\{|%\([\w.]+\)[sd]|\$\([\w.]+\)|#\{|<%|\}\}")
# A call or an attribute path: getpass(), self.password, config.db.password, obj->token.
_CODE = re.compile(r"^[A-Za-z_$][\w]*(?:(?:\.|->|::)[A-Za-z_][\w]*)*(?:\(.*\)?|\[.*\]?)?;?$")
# Values that stand in for a credential in templates, documentation and tests.
_PLACEHOLDERS = frozenset(
    {
        "password", "passwd", "secret", "token", "apikey", "changeme", "changeit", "default", "none",
        "null", "nil", "undefined", "true", "false", "yes", "no", "empty", "required", "optional",
        "hidden", "redacted", "masked", "unset", "notset", "todo", "tbd", "fixme", "test", "testing",
        "example", "sample", "dummy", "fake", "string", "str", "bytes", "text", "int", "bool",
        "boolean", "object", "any", "unknown", "secretstr", "optional[str]", "env", "value", "admin",
        "root", "user", "username", "guest", "demo", "letmein", "qwerty", "abc123", "password1",
        "password123", "secret123", "private", "public", "bearer", "basic", "digest", "oauth",
    }
)  # fmt: skip
_FILLER = re.compile(r"(?i)^(?:x{3,}|\*{3,}|\.{3,}|-{3,}|_{3,}|#{3,}|\?{3,}|0{4,}|<[^<>]*>|\[[^\[\]]*\]|\(.*\))$")
_FILLER_INSIDE = re.compile(
    r"(?i)x{5,}|\*{3,}|your[_-]?|my[_-]?(?:secret|pass|token|key)|example|placeholder|change[_-]?me|"
    r"redacted|dummy|sample|insert[_-]|replace[_-]?me|not[_-]?a[_-]?real|fake[_-]?|<[a-z_ -]+>|\.\.\."
)
# Paths, file names, URLs without credentials, host names, dotted identifiers, MIME types.
_NOT_A_VALUE = re.compile(
    r"""^(?:/|\./|\.\./|~/|[A-Za-z]:[\\/]|[a-zA-Z][a-zA-Z0-9+.-]{1,20}://)|
        (?i:\.(?:pem|key|crt|cer|der|p12|pfx|jks|keystore|json|ya?ml|txt|ini|conf|cfg|toml|env|gpg|asc|ppk|
        pub|py|js|ts|rb|go|sh|php|java|xml|html?|csv|log|lock|db|sqlite))$|
        ^[a-z0-9-]+(?:\.[a-z0-9-]+)+\.(?:com|org|net|io|dev|local|internal|cloud|app)$|
        ^[a-z]+/[a-z0-9.+-]+$""",
    re.VERBOSE,
)
_CAMEL_WORDS = re.compile(r"^(?:[A-Z]?[a-z]{2,}|[A-Z]{2,})+$")
_SLUG = re.compile(r"^[a-z]{2,}(?:[-_.][a-z]{2,})*[-_.]?[0-9]{0,4}$|^[A-Z]{2,}(?:_[A-Z]{2,})*[0-9]{0,4}$")
_WORD_THEN_DIGITS = re.compile(r"^[A-Za-z]+[-_.]?[0-9]{1,4}[!.?]?$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def credential_value(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    """Whether a value assigned to a credential name has a credential's shape."""
    quoted = bool(text) and start > 0 and text[start - 1] in "\"'`"
    if not 6 <= len(value) <= 512:
        return len(value) >= 4 and quoted and _classes(value) >= 3 and not _FILLER_INSIDE.search(value)
    lowered = value.lower()
    if lowered in _PLACEHOLDERS or lowered.strip("_-.!") in _PLACEHOLDERS:
        return False
    if _REFERENCE.match(value) or _TEMPLATE_INSIDE.search(value) or _FILLER.match(value):
        return False
    if _FILLER_INSIDE.search(value) or _NOT_A_VALUE.search(value):
        return False
    if len(set(value)) <= 3 or _ASSIGNMENT.match(value):
        return False  # aaaa…, 0000…, abab…; Token=None
    classes = _classes(value)
    if not quoted and _CODE.match(value) and not _random_identifier(value):
        return False  # getpass(), self.password, user_password, cfg.db.password
    if _SLUG.match(value) or _WORD_THEN_DIGITS.match(value) and classes <= 2 or _wordy(value):
        return False  # secret-name, my_app_key2, Password1, symbol2label, s3_session_auth
    if value.isdigit():
        return len(value) >= 6 and len(set(value)) >= 5 and not _sequence(value)
    if value.isalpha():
        # Letters only: a word or CamelCase identifier unless the case changes like random text.
        return not _CAMEL_WORDS.match(value) and len(value) >= 10 and entropy(value) >= 3.2
    if _HEX.match(value):
        return len(value) >= 16 and entropy(value) >= 3.0
    if classes >= 3:
        return entropy(value) >= 2.5
    return entropy(value) >= (3.0 if len(value) < 16 else 3.3)


def _random_identifier(value: str) -> bool:
    """An identifier-shaped value that is random rather than a name: S3cr3tPassw0rd, Zq8vN2mK."""
    if any(c in value for c in ".()[]-:>"):
        return False
    digits = sum(c.isdigit() for c in value)
    inner_digit = any(c.isdigit() for c in value.rstrip("0123456789"))
    return inner_digit and digits >= 1 and _classes(value) >= 2 and entropy(value) >= 2.8


# Letter runs as names have them: lower-case or Capitalised words, acronyms of up to five.
_LETTER_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_ACRONYM = 5
# A word has a vowel and no more than three consonants in a row (Wfbq, Hjk are random runs).
_PRONOUNCEABLE = re.compile(r"^(?=.*[aeiouyAEIOUY])(?!.*[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]{4})")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z_.]*=[A-Za-z_][A-Za-z_.]*$")
_UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def _wordy(value: str) -> bool:
    """Made of words, as names are: every letter run but one is 3+ letters, at most two digits,
    no symbol but _ - . (UPPER_SNAKE constants always)."""
    if _UPPER_SNAKE.match(value):
        return True
    if any(not c.isalnum() and c not in "_-." for c in value) or sum(c.isdigit() for c in value) > 2:
        return False
    runs = _LETTER_RUNS.findall(value)
    if any(r.isupper() and len(r) > _ACRONYM for r in runs):
        return False  # a long upper-case run is random, not a word (MFKSVSSGW9CGQGEE)
    short = [r for r in runs if len(r) < 3]
    return len(runs) >= 2 and len(short) <= 1 and all(_PRONOUNCEABLE.search(r) for r in runs if len(r) >= 3)


def _sequence(digits: str) -> bool:
    steps = {int(b) - int(a) for a, b in zip(digits, digits[1:], strict=False)}
    return len(steps) == 1


# --- vendor prefixes ----------------------------------------------------------------------------

_RANDOM_RUN = re.compile(r"[A-Za-z0-9]{12,}")


def vendor_near_miss(value: str, text: str = "", start: int = 0, end: int = 0) -> bool:
    """A vendor's prefix followed by what looks like its random part: a run of at least 12
    letters and digits holding both, random enough, and no filler (sk-ant-api03-your-key-here)."""
    if _FILLER_INSIDE.search(value) or len(set(value)) <= 6:
        return False
    body = max(_RANDOM_RUN.findall(value), key=len, default="")
    if len(body) < 12 or not any(c.isdigit() for c in body) or not any(c.isalpha() for c in body):
        return False
    return entropy(body) >= 3.3 and not _CAMEL_WORDS.match(body.rstrip("0123456789"))
