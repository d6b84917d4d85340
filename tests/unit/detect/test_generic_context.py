"""Generic credentials found by their key in context, across syntaxes (egress/detect/context.py,
rules/generic.toml); hard negatives with no finding of any tier; near-miss vendor tokens;
encoded credentials; the confidence tiers. Cases written for this project."""

from __future__ import annotations

import base64
import json
import string
import zlib
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from egress.core.exchange import Tier
from egress.detect.context import credential_name, credential_value
from egress.detect.scan import TextScanner
from egress.detect.validators import _base62
from tests.support.corpus import bundled_matcher

SCANNER = TextScanner(bundled_matcher(), cache_chars=0)


def secrets_in(text: str) -> list[tuple[str, Tier]]:
    return [(text[f.start : f.end], f.tier) for f in SCANNER.scan_text(text) if f.kind == "secret"]


# Each line holds one credential, in a different syntax; `\\n` stands for a line break.
IN_CONTEXT = [
    "password=Jq7#vL2pXw9z",
    'DB_PASSWORD = "mK3$rT8wQz1v"',
    "export API_TOKEN=f8Kq2LmZ7xR4vT9pW3nB",
    'db_pass := "Wq4!zX8pLm2v"',
    "SECRET_KEY ::= 9fKd2LpQ7xWm4RvT",
    "AUTH_TOKEN :::= Lp3qZ8wX2mK9vR7t",
    "API_KEY ?= Mz8Kq2Lp7xWv4RtB9n",
    'token += "Rk9pL2xQ7mW4vZ8t"',
    "$password .= 'Vb7#nM2kQx9L';",
    "'client_secret' => 'Hn4kL8pQ2xZ7wR9m',",
    'password <- "Tz6!kQ9mLp2X"',
    "apiKey: Yx7Qm2Lp9KvR4tWz",
    'const API_SECRET = "Nc8Vx2Lq7Mp4Kz9W";',
    "let authToken = 'Gt5Rk8Wq2Lm7Xp3Z';",
    'final String dbPassword = "Ps9#Lk2mQx7W";',
    'String password = "Ew3$Rt7yUi9P";',
    'private static final String API_KEY = "Qa2Ws3Ed4Rf5Tg6Yh";',
    'val clientSecret: String = "Fm8Kp3Lq9Xw2Rz7V"',
    '#define DB_PASSWORD "Kj8#Lm3nQp7W"',
    "set PASSWORD=Zx9!Cv8bNm7L",
    "ENV DB_PASSWORD Rt7#Yu8iOp9L",
    "ARG NPM_TOKEN=Np7Qk2Lm9Xw4Rz8V",
    "SetEnv DB_PASS Lk9$Mj8nHb7G",
    'setenv("API_TOKEN", "Qz8Wx7Ec6Rv5Tb4", 1);',
    'os.environ["AWS_SECRET"] = "Po9Iu8Yt7Re6Wq5Lk"',
    'props.put("password", "Mn8#Bv7cXz6L");',
    "ENV['STRIPE_SECRET'] = 'Hg6Fd5Sa4Qw3Er2T'",
    'connect(host="db", password="Ui8#Op9Lk7Jh")',
    'def login(user, password="Az2!Sx3Dc4Fv"):',
    '{"database": {"password": "Qw1!Er2Ty3Ui"}}',
    "db:\\n  credentials:\\n    password: Zx3#Cv4Bn5Mm",
    "[database]\\npassword = Lk4$Jh5Gf6Dd",
    "spring.datasource.password=Pq8#Wx2Lm9Zk",
    "db.password: Mn3$Bv5Cx7Zz",
    "<password>Ty6#Ui7Op8Ll</password>",
    '<connectionStrings><add name="Db" connectionString="Server=db;User Id=sa;Password=Rf4%Tg5Yh6Uj;" /></connectionStrings>',
    '<property name="db.password" value="Kq8$Lm2Wx9Zt"/>',
    '<entry key="apiToken">Vx9Lm2Qk8Pz3Wr7T</entry>',
    "machine api.example.org login deploy password Wq8#Lm3Zx9Kp",
    "db.internal:5432:appdb:appuser:Hs8#Kl2Qw9Zp",
    '{"auths": {"registry.corp.io": {"auth": "ZGVwbG95OlRyMHViNGRvciYzeFE="}}}',
    "ALTER USER app WITH PASSWORD 'Ld9#Ks8Jq7W';",
    "CREATE LOGIN svc WITH PASSWORD = 'Mq8!Lp3Zx7Wk';",
    "CREATE ROLE reporting LOGIN PASSWORD 'Gh7$Jk2Lq9Zm';",
    "mysqldump -uroot -pKq8Lm3Zx9Wp2 appdb",
    "sshpass -p 'Qz9#Lm2Wx8Kp' ssh deploy@host",
    "redis-cli -h cache -a Rk8Lm2Qz9Wx7Pv4T ping",
    "psql --password=Zx8#Kq2Lm9Wp -h db",
    "mytool --api-key Hq8Lm3Zx9Wk2Pr7T run",
    "curl -u admin:Wx9#Lm2Kq8Z https://api.example.org",
    'curl -H "Authorization: Bearer Zx8Kq2Lm9Wp3Rv7TnB4c" https://api',
    'curl -H "X-API-Key: Qm7Lp2Kx9Wz4Rt8V" https://api',
    "X-Auth-Token: Lm8Kq2Zx9Wp3Rt7V",
    "Authorization: token Kx9Lm2Qz8Wp3Rt7VbN4c",
    "https://deploy:Wk8#Lm2Zq9X@git.corp.io/repo.git",
    "https://api.corp.io/v1/items?api_key=Zq8Lm2Kx9Wp3Rt7V&limit=10",
    "jdbc:postgresql://db:5432/app?user=app&password=Lm8#Kq2Zx9Wp",
    "Server=tcp:db.corp.io;Database=app;User ID=svc;Password=Qw9!Lm2Kx8Zp;Encrypt=true",
    "Driver={ODBC Driver 18};Server=db;UID=svc;PWD={Kp8#Lm2Qx9Zw};",
    '$secure = ConvertTo-SecureString "Pw8#Lm2Qz9Xk" -AsPlainText -Force',
    "$pw = ConvertTo-SecureString -String 'Zk9Lm2Qx8Wp3' -AsPlainText -Force",
    "smtpPass = 'Xp8#Lm2Kq9Zw'",
    "x-api-key: Tz8Lm2Kq9Wx3Rp7V",
    "PGPASSWORD=Mz8#Kq2Lp9Wx psql -h db",
    "password: 84729163",
    '"password": "Tr0ub4dor&3xQ",',
    'password = "hunter2b!"',
    "DB_PASSWORD_PROD=Vz9#Lm2Kq8Wx",
    'secretKey = "a9f3c2e1b7d4e6f8a0b2c4d6e8f0a1b3"',
    'private_key = "Kq8Lm2Zx9Wp3Rt7VbN4cXy6"',
    "credentials: Kz8#Lm2Qx9Wp",
]


@pytest.mark.parametrize("line", IN_CONTEXT)
def test_a_credential_in_context_is_found(line):
    text = line.replace("\\n", "\n")
    assert secrets_in(text), text


# Code that only mentions a credential, references, templates, placeholders: no finding of any tier.
HARD_NEGATIVES = [
    "password = getpass()",
    "password: str",
    "if password == confirm:",
    'password = request.form["password"]',
    "token = get_token()",
    'secret = os.environ["SECRET"]',
    "password: ${DB_PASSWORD}",
    'password = "{{ vault_db_password }}"',
    'api_key = os.getenv("API_KEY")',
    "const token = process.env.GITHUB_TOKEN;",
    'password = "%(db_password)s"',
    "DB_PASSWORD=${DB_PASSWORD}",
    "password: <password>",
    'password = "changeme"',
    'api_key = "xxxxxxxxxxxxxxxx"',
    'token: "***"',
    'secret = "your-secret-here"',
    "self.password = password",
    "password = self.password",
    "user.password = hashed_password",
    'password_hash = "a9f3c2e1b7d4e6f8a0b2c4d6e8f0a1b3"',
    'token_url = "https://oauth2.googleapis.com/token"',
    'private_key = "/etc/ssl/private/server1.key"',
    '"nextPageToken": "CAUQAA"',
    '"ClientToken": "5236cffc-ee13-4a32-bb5b-388d9da09d96"',
    "max_tokens: 4096",
    '"max_tokens": 1024,',
    'password_field = "password_input_1"',
    'secret_name = "prod-db-credentials"',
    'token_type = "Bearer"',
    'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")',
    'public_key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"',
    "key = lambda x: x[1]",
    "sorted(items, key=itemgetter(1))",
    'password = input("Password: ")',
    "def check(password: str) -> bool:",
    "func Login(password string) error {",
    "String password = args[0];",
    'var token string = os.Getenv("TOKEN")',
    "password = Password.new(params[:password])",
    "$password = $_POST['password'];",
    "password = hashlib.sha256(password.encode()).hexdigest()",
    'if (password.length < 8) { throw new Error("weak password"); }',
    'auth = ("user", password)',
    'auth: { type: "oauth2" }',
    'authorization: "required"',
    "Authorization: Bearer $TOKEN",
    "Authorization: Bearer <token>",
    'curl -H "Authorization: Bearer ${API_TOKEN}" https://x',
    "--password=$DB_PASSWORD",
    "mysql -u root -p mydb",
    "secrets: inherit",
    "password: !vault |",
    "token: ${{ secrets.GITHUB_TOKEN }}",
    'password = cfg.get("db", "password")',
    'self.auth_token = auth_token or os.environ.get("AUTH_TOKEN")',
    'password=getpass.getpass(prompt="Password: ")',
    "api_key: Optional[str] = None",
    "password: SecretStr = Field(..., min_length=12)",
    "PASSWORD_MIN_LENGTH = 12",
    "token_expiry = 3600",
    "SECRET_KEY_FALLBACKS = []",
    'keyPrefix: "ghp_"',
    "credentials = service_account.Credentials.from_service_account_file(path)",
    "passwordless: true",
    "git checkout feature/password-reset-flow",
    "The password is stored in the vault; the token expires after 1 hour.",
    '"integrity": "sha512-VkNBgniB99W42260AWw3VVYiHb1GnVKiso1Cvv1j3kB6sJFkcDyS7Fp3hifrYkqhXVrtyleTZEBrkq6St6HATQ=="',
    "password = Password1",
    'password = "Password123"',
    'token = "Bearer"',
    "AUTH_TYPE=oauth2",
    "api_key = settings.API_KEY",
    'key = "user:1234:profile"',
    'cache_key = f"user:{user_id}:token"',
    "secret_key = get_random_secret_key()",
    'password := c.PostForm("password")',
    'token := r.Header.Get("Authorization")',
    "$token = $request->input('token');",
    "@password = params[:password]",
    'password = ENV.fetch("DB_PASSWORD")',
    "<password>${db.password}</password>",
    '<add key="SmtpPassword" value="" />',
    '<add key="SmtpPassword" value="%SMTP_PASSWORD%" />',
    "secretKeyRef:",
    "  key: password",
    "password_reset_token_ttl: 86400",
    '"password": null,',
    "setPassword(newPassword);",
    "user.setPassword(passwordEncoder.encode(rawPassword));",
    "password = None",
    "password=",
    "export GITHUB_TOKEN=$(gh auth token)",
    "TOKEN=$(cat /run/secrets/token)",
    "pass: true",
    "bypass_cache = True",
    "compass_heading = 270",
    "secretKeyRef:\n  key: password",
]


@pytest.mark.parametrize("line", HARD_NEGATIVES)
def test_code_that_only_mentions_a_credential_has_no_finding(line):
    assert secrets_in(line) == [], line


ISSUE_MISSED = {
    "db_password = Tr0ub4dor&3xQ": "Tr0ub4dor&3xQ",
    "CREATE USER 'app'@'%' IDENTIFIED BY 'Xk29!mPq0zL';": "Xk29!mPq0zL",
    'var clientSecret string = "Zq8vN2mK4pL7xR1tY6wB3cF9"': "Zq8vN2mK4pL7xR1tY6wB3cF9",
    'System.setProperty("DB_PASSWORD", "Hj7&kPz2Qm9w")': "Hj7&kPz2Qm9w",
    "$settings['secret_key'] .= 'pL9xQ2wE5rT8yU1iO4pA7sD0';": "pL9xQ2wE5rT8yU1iO4pA7sD0",
}
ISSUE_FOUND = {
    'DB_PASS: "k9#Lm2!pQz7w"': "k9#Lm2!pQz7w",
    "mysql -u admin -pS3cr3tPassw0rd -h db.example.com": "S3cr3tPassw0rd",
    '<add key="SmtpPassword" value="Rt5$kLq2wZ9x" />': "Rt5$kLq2wZ9x",
}


@pytest.mark.parametrize(("line", "secret"), {**ISSUE_MISSED, **ISSUE_FOUND}.items())
def test_the_issues_examples_are_found(line, secret):
    assert secret in [value for value, _ in secrets_in(line)]


def test_a_github_token_with_a_bad_checksum_is_likely():
    bad = "ghp_Ab3De5Gh7Jk9Mn1Pq3Rs5Tu7Vw9Xy1Za3Bc5"  # the shape of a classic PAT, checksum wrong
    assert secrets_in(f"token {bad}") == [(bad, Tier.LIKELY)]


def test_an_anthropic_key_a_few_characters_short_is_likely():
    body = "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7" * 3
    exact = "sk-ant-api03-" + body[:93] + "AA"
    short = "sk-ant-api03-" + body[:89] + "AA"
    assert secrets_in(f"key = {exact}") == [(exact, Tier.CERTAIN)]
    assert secrets_in(f"key = {short}") == [(short, Tier.LIKELY)]


def test_generic_credentials_are_likely_and_validated_formats_certain():
    assert secrets_in('password = "Wq8#Lm3Zx9Kp"') == [("Wq8#Lm3Zx9Kp", Tier.LIKELY)]
    random_part = "Ab3De5Gh7Jk9Mn1Pq3Rs5Tu7Vw9Xy1"
    token = "ghp_" + random_part + _base62(zlib.crc32(random_part.encode()), 6)
    assert secrets_in(f"token {token}") == [(token, Tier.CERTAIN)]


@pytest.mark.parametrize(
    "key", ["DB_PASSWORD", "smtpPass", "x-api-key", "clientSecret", "PGPASSWORD", "secret_key", "auth_token_prod"]
)
def test_credential_names(key):
    assert credential_name(key)


@pytest.mark.parametrize(
    "key",
    ["next_page_token", "csrf_token", "public_key", "password_hash", "token_url", "max_tokens", "bypass", "sort_key"],
)
def test_names_that_only_sound_like_credentials(key):
    assert not credential_name(key)


@pytest.mark.parametrize(
    "value", ["getpass()", "self.password", "${DB_PASSWORD}", "{{ token }}", "%(pw)s", "changeme", "str"]
)
def test_values_that_are_not_literals(value):
    assert not credential_value(value)


# --- encoded credentials ------------------------------------------------------------------------

PASSWORDS = st.text(alphabet=string.ascii_letters + string.digits + "#$%&!", min_size=12, max_size=24).filter(
    lambda s: sum(c.isdigit() for c in s) >= 3 and sum(c.isupper() for c in s) >= 3 and sum(c.islower() for c in s) >= 3
)
ENCODINGS = {
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "url": lambda s: quote(s, safe=""),
    "json": lambda s: "".join(f"\\u{ord(c):04x}" for c in s),
}


@settings(max_examples=60, deadline=None)
@given(password=PASSWORDS, encoding=st.sampled_from(sorted(ENCODINGS)))
def test_encoding_a_secret_never_hides_it(password, encoding):
    line = f'DB_PASSWORD="{password}"'
    # Only a secret found in plain text can be hidden by encoding it (a low-entropy value such as
    # 000000AAAaaa is not a finding either way).
    assume(any(f.kind == "secret" for f in SCANNER.scan_text(line)))
    encoded = ENCODINGS[encoding](line)
    text = f"payload: {encoded} end"
    found = SCANNER.scan_text(text)
    at = text.index(encoded)
    assert any(f.start <= at and f.end >= at + len(encoded) - 2 and f.kind == "secret" for f in found), (encoding, text)


def test_a_kubernetes_secrets_data_value_is_decoded():
    config = base64.b64encode(json.dumps({"db": {"password": "Tr0ub4dor&3xQ"}}).encode()).decode()
    text = f"apiVersion: v1\nkind: Secret\ndata:\n  config.json: {config}\n"
    assert secrets_in(text) == [(config, Tier.LIKELY)]


def test_binary_base64_is_not_decoded_into_findings():
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    assert secrets_in(f'<img src="data:image/png;base64,{png}" />') == []
