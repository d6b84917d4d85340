"""Part (b): generic credentials in syntaxes and under names the matrix does not use.

A family is a kind of credential (what its name says, what its value looks like); each case
draws one of the family's names (any casing, prefixed or suffixed, or in another language) and
a random value of the family's shape. A syntax writes (name, value) the way a file, a command or
a log writes it. Some syntaxes carry no name at all (a connection URI, `IDENTIFIED BY`): they
take password families only.
"""

from __future__ import annotations

import base64
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

from tests.corpus.matrix.families import ALNUM, HEX, pick
from tests.corpus.matrix.syntaxes import Name

SAFE_PUNCT = "!*+-._~^"  # survives every syntax below unquoted
RICH_PUNCT = "!#$%&*+-._~^@"  # only where the value is quoted or escaped as the syntax needs
B64 = ALNUM + "+/"
WORDS = ("Harbor", "Velvet", "Orbit", "Maple", "Falcon", "Copper", "Meadow", "Tundra", "Summit", "Quartz", "Lantern")
LEET = str.maketrans({"o": "0", "e": "3", "a": "4", "i": "1", "s": "5"})


def password(rng: random.Random, punct: str) -> str:
    while True:
        n = rng.randint(10, 18)
        value = pick(rng, ALNUM + punct * 2, n)
        if (
            any(c.isdigit() for c in value)
            and any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and value[0] not in "-+~^"
        ):
            return value


def word_password(rng: random.Random, punct: str) -> str:
    words = rng.sample(WORDS, 2)
    first = words[0].lower().translate(LEET) if rng.random() < 0.5 else words[0]
    return f"{first}{rng.choice(punct[:3])}{words[1]}{rng.randint(10, 9999)}"


def token(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return pick(rng, ALNUM, rng.randint(20, 40))
    if kind == 1:
        return pick(rng, HEX, rng.choice((32, 40, 64)))
    if kind == 2:
        return base64.b64encode(rng.randbytes(rng.choice((24, 32, 33)))).decode()
    return pick(rng, string.ascii_lowercase + string.digits, 8) + "-" + pick(rng, ALNUM, 24)


@dataclass(frozen=True, slots=True)
class GenericFamily:
    name: str
    names: tuple[tuple[str, ...], ...]  # words of the names a developer gives it
    style: str  # password | token

    def value(self, rng: random.Random, rich: bool) -> str:
        punct = RICH_PUNCT if rich else SAFE_PUNCT
        if self.style == "password":
            return password(rng, punct) if rng.random() < 0.7 else word_password(rng, SAFE_PUNCT)
        return token(rng)


def _w(*names: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(n.split()) for n in names)


GENERIC_FAMILIES: tuple[GenericFamily, ...] = (
    GenericFamily(
        "password",
        _w(
            "password",
            "db password",
            "admin pass",
            "smtp pass",
            "user pwd",
            "root password",
            "master passwd",
            "mail password",
            "ldap bind password",
            "keystore password",
            "redis pass",
        ),  # fmt: skip
        "password",
    ),
    GenericFamily(
        "password-non-english",
        _w(
            "passwort",
            "kennwort",
            "contraseña",
            "contrasena",
            "mot de passe",
            "motdepasse",
            "senha",
            "wachtwoord",
            "parola",
            "密码",
            "パスワード",
            "пароль",
            "hasło",
            "lösenord",
            "salasana",
            "db passwort",
        ),  # fmt: skip
        "password",
    ),
    GenericFamily(
        "secret",
        _w(
            "client secret",
            "app secret",
            "secret key",
            "jwt secret",
            "signing secret",
            "webhook secret",
            "session secret",
            "consumer secret",
            "shared secret",
            "hmac secret",
            "secret",
        ),  # fmt: skip
        "token",
    ),
    GenericFamily(
        "token",
        _w(
            "auth token",
            "access token",
            "bearer token",
            "refresh token",
            "api token",
            "private token",
            "bot token",
            "deploy token",
            "service token",
            "token",
        ),  # fmt: skip
        "token",
    ),
    GenericFamily(
        "api-key",
        _w(
            "api key",
            "apikey",
            "x api key",
            "subscription key",
            "service key",
            "license key",
            "app key",
            "master key",
            "ingest key",
        ),  # fmt: skip
        "token",
    ),
    GenericFamily(
        "encryption-key",
        _w(
            "encryption key",
            "private key",
            "signing key",
            "aes key",
            "hmac key",
            "cipher key",
            "crypt key",
            "data key",
            "enc key",
        ),  # fmt: skip
        "token",
    ),
    GenericFamily(
        "credential",
        _w("credentials", "creds", "credential", "auth", "access credential", "svc cred", "basic auth"),
        "token",
    ),
)


@dataclass(frozen=True, slots=True)
class GenericSyntax:
    name: str
    render: Callable[[Name, str], str]
    styles: frozenset[str] = frozenset({"password", "token"})
    rich: bool = False  # the value may hold `#$%&@` (quoted or escaped where the syntax writes it)
    encode: Callable[[str], str] | None = None  # the text holds this encoding of the value


PW = frozenset({"password"})


def b64(v: str) -> str:
    return base64.b64encode(v.encode()).decode()


def basic(v: str) -> str:
    return base64.b64encode(f"deploy:{v}".encode()).decode()


S = GenericSyntax
GENERIC_SYNTAXES: tuple[GenericSyntax, ...] = (
    # SQL
    S("sql-grant", lambda n, v: f"GRANT ALL PRIVILEGES ON orders.* TO 'app'@'%' IDENTIFIED BY '{v}';", PW, True),
    S(
        "sql-alter-user-with",
        lambda n, v: f"ALTER USER 'app'@'localhost' IDENTIFIED WITH caching_sha2_password BY '{v}';",
        PW,
        True,
    ),
    S("sql-create-login", lambda n, v: f"CREATE LOGIN app_login WITH PASSWORD = '{v}', CHECK_POLICY = OFF;", PW, True),
    S(
        "sql-create-role-encrypted",
        lambda n, v: f"CREATE ROLE reporting WITH LOGIN ENCRYPTED PASSWORD '{v}' VALID UNTIL 'infinity';",
        PW,
        True,
    ),
    S("sql-set-password", lambda n, v: f"SET PASSWORD FOR 'app'@'%' = '{v}';", PW, True),
    S("sql-update-column", lambda n, v: f"UPDATE service_accounts SET {n.snake} = '{v}' WHERE id = 7;", rich=True),
    # Command lines
    S(
        "psql-conninfo",
        lambda n, v: f'psql "host=db.internal port=5432 dbname=orders user=app password={v} sslmode=require"',
        PW,
    ),
    S("pgpassword-prefix", lambda n, v: f"PGPASSWORD={v} psql -h db.internal -U app orders", PW),
    S(
        "mysql-long-flag",
        lambda n, v: f"mysqldump --user=backup --password={v} --single-transaction orders > orders.sql",
        PW,
    ),
    S(
        "mongosh-flags",
        lambda n, v: f"mongosh --host db.internal --username app --password {v} --authenticationDatabase admin",
        PW,
    ),
    S("redis-cli-auth", lambda n, v: f"redis-cli -h cache.internal -p 6379 -a {v} INFO", PW),
    S("curl-user-long", lambda n, v: f"curl --user deploy:{v} https://artifacts.internal.corp/api/upload", PW),
    S(
        "wget-http-password",
        lambda n, v: f"wget --http-user=deploy --http-password={v} https://files.internal.corp/dump.tgz",
        PW,
    ),
    S("docker-login", lambda n, v: f"docker login registry.internal.corp -u deploy -p {v}", PW),
    S("docker-run-env", lambda n, v: f"docker run -d -e {n.upper}={v} -p 8080:8080 api:1.4.2"),
    S("sshpass", lambda n, v: f"sshpass -p '{v}' ssh deploy@10.0.4.12", PW, True),
    S(
        "openssl-passout",
        lambda n, v: f"openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{v}",
        PW,
    ),
    S(
        "keytool-storepass",
        lambda n, v: f"keytool -importcert -keystore app.jks -storepass {v} -file ca.pem -noprompt",
        PW,
    ),
    S("jvm-system-property", lambda n, v: f"java -Djavax.net.ssl.keyStorePassword={v} -jar app.jar", PW),
    S("net-use", lambda n, v: f"net use Z: \\\\fileserver\\share /user:CORP\\deploy {v}", PW),
    S("htpasswd-batch", lambda n, v: f"htpasswd -b -c /etc/nginx/.htpasswd admin {v}", PW),
    S("cli-token-flag", lambda n, v: f"gh-release-tool publish --{n.kebab} {v} --draft"),
    # HTTP
    S("authorization-basic", lambda n, v: f"Authorization: Basic {basic(v)}", PW, encode=basic),
    S("go-header-set", lambda n, v: f'req.Header.Set("X-{n.header}", "{v}")', frozenset({"token"})),
    S("java-request-property", lambda n, v: f'conn.setRequestProperty("X-{n.header}", "{v}");', frozenset({"token"})),
    S("fetch-headers", lambda n, v: f"fetch(url, {{ headers: {{ 'X-{n.header}': '{v}' }} }})", frozenset({"token"})),
    S("nginx-header", lambda n, v: f'proxy_set_header Authorization "Bearer {v}";', frozenset({"token"})),
    S("python-requests-auth", lambda n, v: f'r = requests.get(url, auth=("deploy", "{v}"), timeout=10)', PW, True),
    # URIs and connection strings
    S("uri-amqps", lambda n, v: f"BROKER_URL=amqps://worker:{v}@mq.internal.corp:5671/prod", PW),
    S("uri-rediss", lambda n, v: f"cache: rediss://default:{v}@cache.internal.corp:6380/0", PW),
    S(
        "uri-mongodb-srv",
        lambda n, v: f'uri = "mongodb+srv://app:{v}@cluster0.internal.corp/orders?retryWrites=true"',
        PW,
    ),
    S("uri-ldaps", lambda n, v: f"LDAP_URL=ldaps://cn=admin,dc=corp:{v}@ldap.internal.corp:636", PW),
    S("uri-smtp", lambda n, v: f"EMAIL_URL=smtp://mailer:{v}@smtp.internal.corp:587", PW),
    S("uri-ftp", lambda n, v: f"lftp ftp://deploy:{v}@ftp.internal.corp/releases", PW),
    S("uri-sftp", lambda n, v: f'remote = "sftp://deploy:{v}@files.internal.corp:22/in"', PW),
    S("uri-nats", lambda n, v: f"nats://svc:{v}@nats.internal.corp:4222", PW),
    S("uri-mqtt", lambda n, v: f"MQTT_URL=mqtt://sensor:{v}@broker.internal.corp:1883", PW),
    S(
        "jdbc-query-password",
        lambda n, v: f"jdbc:postgresql://db.internal:5432/orders?user=app&password={v}&ssl=true",
        PW,
    ),
    S(
        "jdbc-sqlserver",
        lambda n, v: f"jdbc:sqlserver://db.internal:1433;databaseName=orders;user=app;password={v};encrypt=true",
        PW,
    ),
    S(
        "odbc",
        lambda n, v: f"Driver={{ODBC Driver 18 for SQL Server}};Server=db.internal;Database=orders;Uid=app;Pwd={v};",
        PW,
    ),
    S(
        "kafka-jaas",
        lambda n, v: (
            f'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="svc" password="{v}";'
        ),
        PW,
        True,
    ),
    S("url-query-token", lambda n, v: f"GET /v2/export?format=csv&{n.snake}={v}&page=2 HTTP/1.1", frozenset({"token"})),
    S("pip-index-url", lambda n, v: f"[global]\nindex-url = https://deploy:{v}@pypi.internal.corp/simple", PW),
    S("git-credential-url", lambda n, v: f"https://deploy:{v}@git.internal.corp/platform/infra.git", PW),
    # Containers, orchestration, infrastructure
    S("dockerfile-env-space", lambda n, v: f"FROM python:3.12-slim\nENV {n.upper} {v}"),
    S(
        "compose-env-map",
        lambda n, v: f"services:\n  db:\n    image: postgres:16\n    environment:\n      {n.upper}: {v}",
    ),
    S(
        "k8s-stringdata",
        lambda n, v: f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\nstringData:\n  {n.kebab}: {v}",
    ),
    S(
        "k8s-data-base64",
        lambda n, v: (
            f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app\ntype: Opaque\ndata:\n  {n.kebab}: {b64(v)}"
        ),
        encode=b64,
    ),
    S(
        "k8s-container-args",
        lambda n, v: f"containers:\n  - name: api\n    args:\n      - --{n.kebab}={v}\n      - --port=8080",
    ),
    S("helm-values-nested", lambda n, v: f"postgresql:\n  auth:\n    {n.camel}: {v}\n    database: orders"),
    S("tfvars", lambda n, v: f'region = "eu-west-1"\n{n.snake} = "{v}"', rich=True),
    S(
        "terraform-variable-default",
        lambda n, v: f'variable "{n.snake}" {{\n  type    = string\n  default = "{v}"\n}}',
        rich=True,
    ),
    S("ansible-vars", lambda n, v: f'- hosts: db\n  vars:\n    {n.snake}: "{v}"', rich=True),
    S("systemd-environment", lambda n, v: f'[Service]\nEnvironment="{n.upper}={v}"'),
    S(
        "github-actions-with",
        lambda n, v: f"      - uses: org/deploy-action@v3\n        with:\n          {n.kebab}: {v}",
    ),
    # Package managers and dotfiles
    S("npmrc-authtoken", lambda n, v: f"//npm.internal.corp/:_authToken={v}", frozenset({"token"})),
    S(
        "pypirc",
        lambda n, v: f"[internal]\nrepository = https://pypi.internal.corp\nusername = deploy\npassword = {v}",
        PW,
    ),
    S("netrc-multiline", lambda n, v: f"machine api.internal.corp\n  login deploy\n  password {v}", PW),
    S("gradle-properties", lambda n, v: f"mavenUser=deploy\n{n.camel}={v}"),
    # Code
    S("csharp-network-credential", lambda n, v: f'var cred = new NetworkCredential("deploy", "{v}");', PW, True),
    S("java-get-connection", lambda n, v: f'Connection c = DriverManager.getConnection(url, "app", "{v}");', PW, True),
    S("java-typed-local", lambda n, v: f'        String {n.camel} = "{v}";', rich=True),
    S(
        "go-struct-literal",
        lambda n, v: f'\tcfg := &Config{{\n\t\tUser:     "app",\n\t\t{n.pascal}: "{v}",\n\t}}',
        rich=True,
    ),
    S("rust-const", lambda n, v: f'const {n.upper}: &str = "{v}";', rich=True),
    S("kotlin-const-val", lambda n, v: f'const val {n.upper} = "{v}"', rich=True),
    S("swift-static-let", lambda n, v: f'    static let {n.camel} = "{v}"', rich=True),
    S("php-putenv", lambda n, v: f"putenv('{n.upper}={v}');", rich=True),
    S("ruby-setter", lambda n, v: f"  config.{n.snake} = '{v}'", rich=True),
    S("perl-env", lambda n, v: f"$ENV{{{n.upper}}} = '{v}';", rich=True),
    S("lua-table", lambda n, v: f'local cfg = {{\n  host = "db",\n  {n.snake} = "{v}",\n}}', rich=True),
    S("cpp-const-char", lambda n, v: f'static const char* k{n.pascal} = "{v}";', rich=True),
    S("objc-nsstring", lambda n, v: f'NSString *{n.camel} = @"{v}";', rich=True),
    S("vbnet-dim", lambda n, v: f'Dim {n.camel} As String = "{v}"', rich=True),
    S("dart-final", lambda n, v: f"final {n.camel} = '{v}';", rich=True),
    S("r-sys-setenv", lambda n, v: f'Sys.setenv({n.upper} = "{v}")', rich=True),
    S("groovy-credentials", lambda n, v: f"credentials {{\n    username 'deploy'\n    {n.camel} '{v}'\n}}", rich=True),
    S(
        "powershell-securestring-string",
        lambda n, v: f"$sec = ConvertTo-SecureString -String '{v}' -AsPlainText -Force",
        PW,
        True,
    ),
    S(
        "powershell-pscredential",
        lambda n, v: f"$cred = New-Object PSCredential('deploy', (ConvertTo-SecureString '{v}' -AsPlainText -Force))",
        PW,
        True,
    ),
    # Configuration files
    S("xml-attribute-element", lambda n, v: f'<dataSource url="jdbc:h2:mem" user="app" {n.camel}="{v}" />', rich=True),
    S("spring-yaml", lambda n, v: f"spring:\n  datasource:\n    username: app\n    {n.kebab}: {v}"),
    S("properties-colon", lambda n, v: f"{n.dotted}: {v}"),
    S("properties-spaced", lambda n, v: f"{n.dotted} = {v}"),
    S("ini-colon", lambda n, v: f"[smtp]\nhost: mail.internal\n{n.snake}: {v}"),
    S("toml-inline-table", lambda n, v: f'db = {{ user = "app", {n.snake} = "{v}" }}', rich=True),
    S("env-export-single-quoted", lambda n, v: f"export {n.upper}='{v}'", rich=True),
    S("shell-heredoc", lambda n, v: f"cat > .env <<EOF\nAPP_ENV=prod\n{n.upper}={v}\nEOF"),
    S("makefile-colon-eq", lambda n, v: f"{n.upper} := {v}\ndeploy:\n\t./deploy.sh"),
    S(
        "json-credentials-nested",
        lambda n, v: f'{{"service": "billing", "credentials": {{"user": "svc", "{n.camel}": "{v}"}}}}',
        rich=True,
    ),
    S("yaml-list-of-maps", lambda n, v: f"accounts:\n  - user: svc\n    {n.snake}: '{v}'", rich=True),
    S("csv-row", lambda n, v: f"key,value\nregion,eu-west-1\n{n.snake},{v}"),
    S("markdown-table", lambda n, v: f"| variable | value |\n|---|---|\n| `{n.upper}` | `{v}` |"),
    # Logs and prose
    S("log-kv-spaced", lambda n, v: f"INFO  [auth] login ok user=svc {n.snake}={v} ip=10.2.3.4"),
    S("log-json", lambda n, v: f'{{"level":"debug","msg":"connect","{n.snake}":"{v}","host":"db"}}', rich=True),
    S("log-quoted-phrase", lambda n, v: f"WARN connection refused for user 'svc' with password '{v}'", PW, True),
    S("prose-is", lambda n, v: f"fyi the {' '.join(n.words)} is {v} until we rotate it", rich=True),
    S("comment-colon", lambda n, v: f"# {' '.join(n.words)}: {v}"),
)
