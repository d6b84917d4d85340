"""Credential families: how to build one value of each, from the documented format.

Vendor families follow the token format the vendor documents (prefix, alphabet, length,
separators, checksum where there is one); generic families are the passwords, secrets, tokens,
API keys and connection strings that developers write next to a name that says what they are.
Every value is random: no value here is, or was copied from, a real or published credential.
"""

from __future__ import annotations

import base64
import random
import string
import zlib
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
BASE32 = string.ascii_uppercase + "234567"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
# Punctuation a password may hold in every syntax of the matrix without quoting rules changing it
# (no quote, backslash, `$`, `#`, `&`, `<`, `@`, `%`, space or separator).
PASSWORD_PUNCT = "!*+-._~^"
WORDS = (
    "harbor", "velvet", "orbit", "maple", "falcon", "copper", "meadow", "tundra", "violet", "summit",
    "granite", "lantern", "pepper", "saffron", "willow", "quartz", "cobalt", "thunder", "marble", "canyon",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Value:
    """What a case writes (`text`) and the part of it that must be found (`secret`)."""

    text: str
    secret: str


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    group: str  # vendor | generic
    words: tuple[str, ...]  # the name a developer gives the value, as words (cased per syntax)
    make: Callable[[random.Random], Value]
    style: str = "token"  # token | password | url: what the value looks like to a syntax


def pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _base62(number: int, width: int) -> str:
    out = ""
    while number:
        number, digit = divmod(number, 62)
        out = BASE62[digit] + out
    return out.rjust(width, "0")


def github_token(prefix: str, random_len: int) -> Callable[[random.Random], Value]:
    """GitHub's prefixed tokens: random base62 characters, then the CRC32 of them in base62 (6)."""

    def make(rng: random.Random) -> Value:
        body = pick(rng, ALNUM, random_len)
        token = f"{prefix}_{body}{_base62(zlib.crc32(body.encode()), 6)}"
        return Value(token, token)

    return make


def shaped(*parts: str | tuple[str, int] | tuple[str, int, int]) -> Callable[[random.Random], Value]:
    """A token from literal parts and (alphabet, length) or (alphabet, min, max) random parts."""

    def make(rng: random.Random) -> Value:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            elif len(part) == 2:
                out.append(pick(rng, part[0], part[1]))
            else:
                out.append(pick(rng, part[0], rng.randint(part[1], part[2])))
        token = "".join(out)
        return Value(token, token)

    return make


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return str(rng.randint(1, 9)) + pick(rng, string.digits, rng.randint(lo, hi) - 1)


def slack_bot(rng: random.Random) -> Value:
    token = f"xoxb-{_digits(rng, 10, 13)}-{_digits(rng, 10, 13)}-{pick(rng, ALNUM, 24)}"
    return Value(token, token)


def slack_user(rng: random.Random) -> Value:
    token = f"xoxp-{_digits(rng, 10, 13)}-{_digits(rng, 10, 13)}-{_digits(rng, 10, 13)}-{pick(rng, HEX, 32)}"
    return Value(token, token)


def slack_app(rng: random.Random) -> Value:
    token = f"xapp-1-A{pick(rng, UPPER_ALNUM, 10)}-{_digits(rng, 13, 13)}-{pick(rng, HEX, 64)}"
    return Value(token, token)


def slack_config(rng: random.Random) -> Value:
    token = f"xoxe.xoxp-1-{pick(rng, ALNUM, 146)}"
    return Value(token, token)


def slack_session(rng: random.Random) -> Value:
    token = f"xoxs-{_digits(rng, 12, 12)}-{_digits(rng, 12, 12)}-{_digits(rng, 12, 12)}-{pick(rng, HEX, 64)}"
    return Value(token, token)


def slack_webhook(rng: random.Random) -> Value:
    url = f"https://hooks.slack.com/services/T{pick(rng, UPPER_ALNUM, 10)}/B{pick(rng, UPPER_ALNUM, 10)}/{pick(rng, ALNUM, 24)}"
    return Value(url, url)


def openai_legacy(rng: random.Random) -> Value:
    token = f"sk-{pick(rng, ALNUM, 20)}T3BlbkFJ{pick(rng, ALNUM, 20)}"
    return Value(token, token)


def openai_project(prefix: str) -> Callable[[random.Random], Value]:
    def make(rng: random.Random) -> Value:
        token = f"{prefix}{pick(rng, URLSAFE, 74)}T3BlbkFJ{pick(rng, URLSAFE, 74)}"
        return Value(token, token)

    return make


def anthropic(kind: str) -> Callable[[random.Random], Value]:
    def make(rng: random.Random) -> Value:
        token = f"sk-ant-{kind}-{pick(rng, URLSAFE, 93)}AA"
        return Value(token, token)

    return make


def aws_secret(rng: random.Random) -> Value:
    key = pick(rng, ALNUM + "+/", 40)
    return Value(key, key)


def azure_storage_key(rng: random.Random) -> Value:
    key = base64.b64encode(rng.randbytes(64)).decode()
    return Value(key, key)


def azure_client_secret(rng: random.Random) -> Value:
    token = f"{pick(rng, ALNUM, 3)}{rng.randint(0, 9)}Q~{pick(rng, ALNUM + '_~.-', 34)}"
    return Value(token, token)


def jwt(rng: random.Random) -> Value:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = part(b'{"alg":"HS256","typ":"JWT"}')
    claims = part(f'{{"sub":"{rng.randint(10**6, 10**7)}","iat":{rng.randint(1_600_000_000, 1_800_000_000)}}}'.encode())
    token = f"{header}.{claims}.{part(rng.randbytes(32))}"
    return Value(token, token)


def pypi(rng: random.Random) -> Value:
    token = "pypi-AgEIcHlwaS5vcmc" + pick(rng, URLSAFE, rng.randint(60, 150))
    return Value(token, token)


def sendgrid(rng: random.Random) -> Value:
    token = f"SG.{pick(rng, URLSAFE, 22)}.{pick(rng, URLSAFE, 43)}"
    return Value(token, token)


def telegram(rng: random.Random) -> Value:
    token = f"{_digits(rng, 9, 10)}:AA{pick(rng, URLSAFE, 33)}"
    return Value(token, token)


def terraform_cloud(rng: random.Random) -> Value:
    token = f"{pick(rng, ALNUM, 14)}.atlasv1.{pick(rng, ALNUM, 67)}"
    return Value(token, token)


def mailchimp(rng: random.Random) -> Value:
    token = f"{pick(rng, HEX, 32)}-us{rng.randint(1, 21)}"
    return Value(token, token)


def discord_bot(rng: random.Random) -> Value:
    user_id = str(rng.randint(10**17, 10**18))
    token = f"{base64.b64encode(user_id.encode()).decode().rstrip('=')}.{pick(rng, URLSAFE, 6)}.{pick(rng, URLSAFE, 38)}"
    return Value(token, token)


def age_key(rng: random.Random) -> Value:
    token = "AGE-SECRET-KEY-1" + pick(rng, BECH32, 58)
    return Value(token, token)


# --- generic ------------------------------------------------------------------------------------


def password(rng: random.Random) -> Value:
    """10-20 characters with upper and lower case, a digit and punctuation, in random order."""
    n = rng.randint(10, 20)
    chars = [rng.choice(string.ascii_uppercase), rng.choice(string.ascii_lowercase), rng.choice(string.digits)]
    chars += [rng.choice(PASSWORD_PUNCT)]
    chars += [rng.choice(ALNUM + PASSWORD_PUNCT) for _ in range(n - 4)]
    rng.shuffle(chars)
    value = rng.choice(string.ascii_letters) + "".join(chars)  # a letter first: no YAML tag or flag
    return Value(value, value)


def wordy_password(rng: random.Random) -> Value:
    """What people choose: two words, digits and a symbol (Harbor42!velvet)."""
    value = f"{rng.choice(WORDS).capitalize()}{rng.randint(10, 9999)}{rng.choice('!*+-.~')}{rng.choice(WORDS)}"
    return Value(value, value)


def url_password(rng: random.Random) -> str:
    return pick(rng, ALNUM, 1) + pick(rng, ALNUM + "-._~", rng.randint(11, 23))


def connection_url(scheme: str, port: int, tail: str = "/app") -> Callable[[random.Random], Value]:
    def make(rng: random.Random) -> Value:
        secret = url_password(rng)
        user = rng.choice(("app", "svc_orders", "admin", "deploy"))
        return Value(f"{scheme}://{user}:{secret}@db{rng.randint(1, 9)}.internal.corp:{port}{tail}", secret)

    return make


def redis_url(rng: random.Random) -> Value:
    secret = url_password(rng)
    return Value(f"redis://:{secret}@cache.internal.corp:6379/0", secret)


def ado_connection(rng: random.Random) -> Value:
    secret = url_password(rng)
    return Value(f"Server=tcp:sql{rng.randint(1, 9)}.internal.corp,1433;Database=orders;User ID=app;Password={secret};", secret)


def jdbc_connection(rng: random.Random) -> Value:
    secret = url_password(rng)
    return Value(f"jdbc:postgresql://db.internal.corp:5432/orders?user=app&password={secret}", secret)


def generic(alphabet: str, lo: int, hi: int) -> Callable[[random.Random], Value]:
    def make(rng: random.Random) -> Value:
        value = rng.choice(string.ascii_letters) + pick(rng, alphabet, rng.randint(lo, hi) - 1)
        return Value(value, value)

    return make


def base64_secret(rng: random.Random) -> Value:
    value = base64.b64encode(rng.randbytes(32)).decode()
    return Value(value, value)


V = "vendor"
G = "generic"

FAMILIES: tuple[Family, ...] = (
    # GitHub: classic PAT, OAuth, App user-to-server, installation, refresh (all checksummed), fine-grained.
    Family("github-pat-classic", V, ("github", "token"), github_token("ghp", 30)),
    Family("github-oauth", V, ("github", "oauth", "token"), github_token("gho", 30)),
    Family("github-app-user", V, ("github", "user", "token"), github_token("ghu", 30)),
    Family("github-app-installation", V, ("github", "app", "token"), github_token("ghs", 30)),
    Family("github-refresh", V, ("github", "refresh", "token"), github_token("ghr", 70)),
    Family("github-fine-grained", V, ("gh", "pat"), shaped("github_pat_", (ALNUM, 22), "_", (ALNUM, 59))),
    # GitLab: personal, deploy, runner authentication, pipeline trigger, CI build, SCIM, feed.
    Family("gitlab-pat", V, ("gitlab", "token"), shaped("glpat-", (URLSAFE, 20))),
    Family("gitlab-deploy", V, ("gitlab", "deploy", "token"), shaped("gldt-", (URLSAFE, 20))),
    Family("gitlab-runner", V, ("runner", "token"), shaped("glrt-", (URLSAFE, 20))),
    Family("gitlab-trigger", V, ("trigger", "token"), shaped("glptt-", (HEX, 40))),
    Family("gitlab-feed", V, ("feed", "token"), shaped("glft-", (URLSAFE, 20))),
    # Slack.
    Family("slack-bot", V, ("slack", "bot", "token"), slack_bot),
    Family("slack-user", V, ("slack", "user", "token"), slack_user),
    Family("slack-app-level", V, ("slack", "app", "token"), slack_app),
    Family("slack-config", V, ("slack", "config", "token"), slack_config),
    Family("slack-webhook", V, ("slack", "webhook", "url"), slack_webhook, "url"),
    # Stripe: secret and restricted keys, live and test; webhook signing secret.
    Family("stripe-secret-live", V, ("stripe", "secret", "key"), shaped("sk_live_", (ALNUM, 24, 99))),
    Family("stripe-secret-test", V, ("stripe", "key"), shaped("sk_test_", (ALNUM, 24, 99))),
    Family("stripe-restricted", V, ("stripe", "restricted", "key"), shaped("rk_live_", (ALNUM, 24, 99))),
    Family("stripe-webhook", V, ("stripe", "webhook", "secret"), shaped("whsec_", (ALNUM, 32))),
    # AWS: access key ids (long-term and temporary) and the secret access key beside them.
    Family("aws-access-key-id", V, ("aws", "access", "key", "id"), shaped("AKIA", (BASE32, 16))),
    Family("aws-temporary-key-id", V, ("aws", "access", "key", "id"), shaped("ASIA", (BASE32, 16))),
    Family("aws-secret-access-key", V, ("aws", "secret", "access", "key"), aws_secret),
    # Google.
    Family("google-api-key", V, ("google", "api", "key"), shaped("AIza", (URLSAFE, 35))),
    Family("google-oauth-client-secret", V, ("google", "client", "secret"), shaped("GOCSPX-", (URLSAFE, 28))),
    Family("google-oauth-access", V, ("google", "access", "token"), shaped("ya29.", (URLSAFE, 100, 160))),
    # OpenAI: legacy user key, project, service account and admin keys.
    Family("openai-legacy", V, ("openai", "api", "key"), openai_legacy),
    Family("openai-project", V, ("openai", "api", "key"), openai_project("sk-proj-")),
    Family("openai-service-account", V, ("openai", "api", "key"), openai_project("sk-svcacct-")),
    Family("openai-admin", V, ("openai", "admin", "key"), openai_project("sk-admin-")),
    # Anthropic: API and admin keys.
    Family("anthropic-api", V, ("anthropic", "api", "key"), anthropic("api03")),
    Family("anthropic-admin", V, ("anthropic", "admin", "key"), anthropic("admin01")),
    # Package registries.
    Family("npm-token", V, ("npm", "token"), shaped("npm_", (ALNUM, 36))),
    Family("pypi-token", V, ("pypi", "token"), pypi),
    # Messaging and SaaS.
    Family("twilio-api-key-sid", V, ("twilio", "api", "key"), shaped("SK", (HEX, 32))),
    Family("sendgrid", V, ("sendgrid", "api", "key"), sendgrid),
    Family("mailchimp", V, ("mailchimp", "api", "key"), mailchimp),
    Family("telegram-bot", V, ("telegram", "bot", "token"), telegram),
    Family("discord-bot", V, ("discord", "bot", "token"), discord_bot),
    Family("huggingface", V, ("hf", "token"), shaped("hf_", (string.ascii_letters, 34))),
    Family("huggingface-org", V, ("hf", "org", "token"), shaped("api_org_", (string.ascii_letters, 34))),
    Family("databricks", V, ("databricks", "token"), shaped("dapi", (HEX, 32))),
    Family("shopify-access", V, ("shopify", "access", "token"), shaped("shpat_", (HEX, 32))),
    Family("shopify-custom-app", V, ("shopify", "token"), shaped("shpca_", (HEX, 32))),
    Family("shopify-shared-secret", V, ("shopify", "shared", "secret"), shaped("shpss_", (HEX, 32))),
    Family("atlassian-api", V, ("jira", "api", "token"), shaped("ATATT3", (URLSAFE, 175), "=", (HEX.upper(), 8))),
    Family("azure-client-secret", V, ("azure", "client", "secret"), azure_client_secret),
    Family("azure-storage-key", V, ("azure", "storage", "key"), azure_storage_key),
    Family("digitalocean", V, ("do", "token"), shaped("dop_v1_", (HEX, 64))),
    Family("vault-service", V, ("vault", "token"), shaped("hvs.", (URLSAFE, 90))),
    Family("doppler", V, ("doppler", "token"), shaped("dp.pt.", (ALNUM, 43))),
    Family("terraform-cloud", V, ("tfe", "token"), terraform_cloud),
    Family("linear", V, ("linear", "api", "key"), shaped("lin_api_", (ALNUM, 40))),
    Family("notion", V, ("notion", "token"), shaped("ntn_", (string.digits, 11), (ALNUM, 35))),
    Family("postman", V, ("postman", "api", "key"), shaped("PMAK-", (HEX, 24), "-", (HEX, 34))),
    Family("sentry-user", V, ("sentry", "auth", "token"), shaped("sntryu_", (HEX, 64))),
    Family("grafana-service-account", V, ("grafana", "token"), shaped("glsa_", (ALNUM, 32), "_", (HEX, 8))),
    Family("newrelic-user", V, ("newrelic", "api", "key"), shaped("NRAK-", (UPPER_ALNUM, 27))),
    Family("pulumi", V, ("pulumi", "access", "token"), shaped("pul-", (HEX, 40))),
    Family("groq", V, ("groq", "api", "key"), shaped("gsk_", (ALNUM, 52))),
    Family("replicate", V, ("replicate", "api", "token"), shaped("r8_", (ALNUM, 37))),
    Family("openrouter", V, ("openrouter", "api", "key"), shaped("sk-or-v1-", (HEX, 64))),
    Family("age-secret-key", V, ("age", "identity"), age_key),
    Family("woocommerce", V, ("woocommerce", "consumer", "secret"), shaped("cs_", (HEX, 40))),
    Family("meta-graph", V, ("fb", "access", "token"), shaped("EAAG", (ALNUM, 150, 220))),
    Family("x-app-bearer", V, ("twitter", "bearer", "token"), shaped("A" * 21, (ALNUM, 4), "A" * 8, (ALNUM + "%", 70, 90))),
    Family("slack-session", V, ("slack", "session", "token"), slack_session),
    Family("linear-oauth", V, ("linear", "oauth", "token"), shaped("lin_oauth_", (HEX, 64))),
    Family("clickup", V, ("clickup", "token"), shaped("pk_", (string.digits, 8), "_", (UPPER_ALNUM, 32))),
    Family("frameio", V, ("frameio", "token"), shaped("fio-u-", (URLSAFE, 64))),
    Family("intercom", V, ("intercom", "token"), shaped("dG9rOj", (ALNUM, 54), "=")),
    Family("mailgun", V, ("mailgun", "api", "key"), shaped("key-", (HEX, 32))),
    Family("asana", V, ("asana", "token"), shaped("2/", (string.digits, 16), "/", (string.digits, 16), ":", (HEX, 32))),
    Family("dbt-cloud", V, ("dbt", "cloud", "token"), shaped("dbtc_", (URLSAFE, 56))),
    Family("elevenlabs", V, ("xi", "api", "key"), shaped("sk_", (HEX, 48))),
    Family("firecrawl", V, ("firecrawl", "api", "key"), shaped("fc-", (HEX, 32))),
    Family("jina", V, ("jina", "api", "key"), shaped("jina_", (URLSAFE, 60))),
    Family("yandex-cloud-api-key", V, ("yc", "api", "key"), shaped("AQVN", (URLSAFE, 36))),
    Family("gcs-hmac-access-id", V, ("gcs", "access", "id"), shaped("GOOG1", (UPPER_ALNUM, 56))),
    Family("azure-storage-identifiable", V, ("azure", "storage", "key"), shaped((B64, 76), "+ASt", (B64, 5), ("AQgw", 1), "==")),
    Family("azure-cosmos-identifiable", V, ("cosmos", "key"), shaped((B64, 76), "ACDb", (B64, 5), ("AQgw", 1), "==")),
    Family("azure-servicebus-identifiable", V, ("servicebus", "key"), shaped((B64, 33), "+ASb", (B64, 5), ("AEIMQUYcgkosw048", 1), "=")),
    Family("azure-functions-identifiable", V, ("function", "key"), shaped((URLSAFE, 44), "AzFu", (URLSAFE, 5), ("AQgw", 1), "==")),
    Family("azure-search-identifiable", V, ("search", "admin", "key"), shaped((ALNUM, 42), "AzSe", ("ABCD", 1), (ALNUM, 5))),
    Family("scalingo", V, ("scalingo", "api", "token"), shaped("tk-us-", (URLSAFE, 48))),
    Family("infracost", V, ("infracost", "api", "key"), shaped("ico-", (ALNUM, 32))),
    Family("jwt", V, ("id", "token"), jwt),
    # Generic: a value whose name says it is a credential.
    Family("password", G, ("db", "password"), password, "password"),
    Family("password-words", G, ("smtp", "password"), wordy_password, "password"),
    Family("passwd", G, ("admin", "passwd"), password, "password"),
    Family("secret", G, ("app", "secret"), generic(URLSAFE, 24, 48)),
    Family("client-secret", G, ("client", "secret"), generic(ALNUM, 24, 40)),
    Family("token", G, ("auth", "token"), generic(ALNUM, 32, 48)),
    Family("api-key", G, ("api", "key"), generic(ALNUM, 24, 40)),
    Family("access-key", G, ("access", "key"), generic(UPPER_ALNUM, 20, 32)),
    Family("signing-secret-hex", G, ("signing", "secret"), generic(HEX, 64, 64)),
    Family("secret-base64", G, ("jwt", "secret"), base64_secret),
    Family("postgres-url", G, ("database", "url"), connection_url("postgresql", 5432), "url"),
    Family("mysql-url", G, ("database", "url"), connection_url("mysql", 3306), "url"),
    Family("mongodb-url", G, ("mongo", "uri"), connection_url("mongodb+srv", 27017, "/orders?retryWrites=true"), "url"),
    Family("redis-url", G, ("redis", "url"), redis_url, "url"),
    Family("amqp-url", G, ("broker", "url"), connection_url("amqps", 5671, "/prod"), "url"),
    Family("ado-connection-string", G, ("connection", "string"), ado_connection, "url"),
    Family("jdbc-connection-string", G, ("jdbc", "url"), jdbc_connection, "url"),
)
