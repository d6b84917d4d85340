"""Syntaxes: the ways a named value is written in code, configuration, commands and output.

A syntax renders (name, value) as a snippet of its language; the name comes as words and each
syntax cases it as its language does (db_password, DB_PASSWORD, dbPassword, db-password,
db.password). `styles` says which values a syntax can hold: some forms only ever carry a
password (`IDENTIFIED BY`, .netrc, .pgpass, `mysql -p`), and a URL is not written inside another
URL's query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ALL_STYLES = frozenset({"token", "password", "url"})
PASSWORD_ONLY = frozenset({"password"})
NOT_URL = frozenset({"token", "password"})


@dataclass(frozen=True, slots=True)
class Name:
    words: tuple[str, ...]

    @property
    def snake(self) -> str:
        return "_".join(self.words)

    @property
    def upper(self) -> str:
        return self.snake.upper()

    @property
    def camel(self) -> str:
        return self.words[0] + "".join(w.capitalize() for w in self.words[1:])

    @property
    def pascal(self) -> str:
        return "".join(w.capitalize() for w in self.words)

    @property
    def kebab(self) -> str:
        return "-".join(self.words)

    @property
    def dotted(self) -> str:
        return ".".join(self.words)

    @property
    def header(self) -> str:
        return "-".join(w.capitalize() for w in self.words)


@dataclass(frozen=True, slots=True)
class Syntax:
    name: str
    language: str
    render: Callable[[Name, str], str]
    styles: frozenset[str] = ALL_STYLES


def bare(value: str) -> str:
    """A value as a shell or env file writes it: quoted only when it must be."""
    return f'"{value}"' if any(c in value for c in " ;&|<>()") else value


def xml(value: str) -> str:
    return value.replace("&", "&amp;")


SYNTAXES: tuple[Syntax, ...] = (
    # Python
    Syntax("python-assign", "python", lambda n, v: f'{n.snake} = "{v}"'),
    Syntax("python-constant", "python", lambda n, v: f"{n.upper}: str = '{v}'"),
    Syntax("python-dict", "python", lambda n, v: f'settings = {{"{n.snake}": "{v}", "debug": False}}'),
    Syntax("python-kwarg", "python", lambda n, v: f'client = Client(host="api.internal", {n.snake}="{v}")'),
    Syntax("python-environ", "python", lambda n, v: f'os.environ["{n.upper}"] = "{v}"'),
    Syntax("python-default-arg", "python", lambda n, v: f'def connect(host: str = "db", {n.snake}: str = "{v}") -> None:'),
    # Go
    Syntax("go-short-var", "go", lambda n, v: f'{n.camel} := "{v}"'),
    Syntax("go-typed-var", "go", lambda n, v: f'var {n.camel} string = "{v}"'),
    Syntax("go-const", "go", lambda n, v: f'const {n.pascal} = "{v}"'),
    Syntax("go-struct-field", "go", lambda n, v: f'cfg := Config{{Host: "db", {n.pascal}: "{v}"}}'),
    # Java and Kotlin
    Syntax("java-field", "java", lambda n, v: f'private static final String {n.upper} = "{v}";'),
    Syntax("java-set-property", "java", lambda n, v: f'System.setProperty("{n.dotted}", "{v}");'),
    Syntax("java-map-put", "java", lambda n, v: f'props.put("{n.dotted}", "{v}");'),
    Syntax("kotlin-val", "kotlin", lambda n, v: f'val {n.camel} = "{v}"'),
    # C#
    Syntax("csharp-const", "csharp", lambda n, v: f'public const string {n.pascal} = "{v}";'),
    Syntax("csharp-var", "csharp", lambda n, v: f'var {n.camel} = "{v}";'),
    Syntax("csharp-set-env", "csharp", lambda n, v: f'Environment.SetEnvironmentVariable("{n.upper}", "{v}");'),
    # PHP
    Syntax("php-variable", "php", lambda n, v: f"${n.camel} = '{v}';"),
    Syntax("php-array-assign", "php", lambda n, v: f"$config['{n.snake}'] = '{v}';"),
    Syntax("php-concat-assign", "php", lambda n, v: f"$settings['{n.snake}'] .= '{v}';"),
    Syntax("php-array-arrow", "php", lambda n, v: f"    '{n.snake}' => '{v}',"),
    Syntax("php-define", "php", lambda n, v: f"define('{n.upper}', '{v}');"),
    # JavaScript and TypeScript
    Syntax("js-const", "javascript", lambda n, v: f'const {n.camel} = "{v}";'),
    Syntax("js-object", "javascript", lambda n, v: f"module.exports = {{ port: 8080, {n.camel}: '{v}' }};"),
    Syntax("js-process-env", "javascript", lambda n, v: f'process.env.{n.upper} = "{v}";'),
    Syntax("ts-typed-const", "typescript", lambda n, v: f"export const {n.camel}: string = '{v}';"),
    # Ruby, Rust, C
    Syntax("ruby-assign", "ruby", lambda n, v: f"{n.snake} = '{v}'"),
    Syntax("ruby-hash", "ruby", lambda n, v: f'config = {{ {n.snake}: "{v}" }}'),
    Syntax("ruby-env", "ruby", lambda n, v: f'ENV["{n.upper}"] = "{v}"'),
    Syntax("rust-let", "rust", lambda n, v: f'let {n.snake} = "{v}";'),
    Syntax("c-define", "c", lambda n, v: f'#define {n.upper} "{v}"'),
    # Shell and friends
    Syntax("shell-export", "shell", lambda n, v: f"export {n.upper}={bare(v)}"),
    Syntax("shell-assign-quoted", "shell", lambda n, v: f'{n.upper}="{v}"'),
    Syntax("csh-setenv", "shell", lambda n, v: f'setenv {n.upper} "{v}"'),
    Syntax("powershell-env", "powershell", lambda n, v: f'$env:{n.upper} = "{v}"'),
    Syntax("dotenv", "dotenv", lambda n, v: f"{n.upper}={bare(v)}"),
    Syntax("makefile", "make", lambda n, v: f"{n.upper} ?= {v}"),
    # More assignment operators and languages
    Syntax("makefile-immediate", "make", lambda n, v: f"{n.upper} ::= {v}"),
    Syntax("makefile-posix-immediate", "make", lambda n, v: f"{n.upper} :::= {v}"),
    Syntax("makefile-append", "make", lambda n, v: f"{n.upper} += {v}"),
    Syntax("r-arrow", "r", lambda n, v: f'{n.snake} <- "{v}"'),
    Syntax("perl-my", "perl", lambda n, v: f"my ${n.snake} = '{v}';"),
    Syntax("lua-local", "lua", lambda n, v: f'local {n.snake} = "{v}"'),
    Syntax("swift-let", "swift", lambda n, v: f'let {n.camel} = "{v}"'),
    Syntax("scala-val", "scala", lambda n, v: f'val {n.camel}: String = "{v}"'),
    Syntax("elixir-config", "elixir", lambda n, v: f'config :api, {n.snake}: "{v}"'),
    Syntax("apache-setenv", "apache", lambda n, v: f"SetEnv {n.upper} {bare(v)}"),
    Syntax("batch-set", "batch", lambda n, v: f"set {n.upper}={v}"),
    Syntax("github-actions-env", "yaml", lambda n, v: f"jobs:\n  deploy:\n    env:\n      {n.upper}: {v}"),
    Syntax("http-bearer", "http", lambda n, v: f"Authorization: Bearer {v}", frozenset({"token"})),
    # SQL
    Syntax("sql-insert", "sql", lambda n, v: f"INSERT INTO app_settings (name, value) VALUES ('{n.snake}', '{v}');"),
    Syntax("sql-create-user", "sql", lambda n, v: f"CREATE USER 'app'@'%' IDENTIFIED BY '{v}';", PASSWORD_ONLY),
    Syntax("sql-alter-role", "sql", lambda n, v: f"ALTER ROLE app WITH LOGIN PASSWORD '{v}';", PASSWORD_ONLY),
    # YAML
    Syntax("yaml", "yaml", lambda n, v: f"{n.snake}: {v}"),
    Syntax("yaml-nested", "yaml", lambda n, v: f'production:\n  service:\n    {n.snake}: "{v}"\n    port: 5432'),
    Syntax("yaml-k8s-env", "yaml", lambda n, v: f'env:\n  - name: {n.upper}\n    value: "{v}"'),
    Syntax("yaml-compose-env", "yaml", lambda n, v: f"services:\n  api:\n    environment:\n      - {n.upper}={v}"),
    # JSON
    Syntax("json", "json", lambda n, v: f'{{"{n.camel}": "{v}"}}'),
    Syntax("json-nested", "json", lambda n, v: f'{{\n  "production": {{\n    "port": 5432,\n    "{n.snake}": "{v}"\n  }}\n}}'),
    # XML
    Syntax("xml-element", "xml", lambda n, v: f"<{n.camel}>{xml(v)}</{n.camel}>"),
    Syntax("xml-add-key", "xml", lambda n, v: f'<add key="{n.pascal}" value="{xml(v)}" />'),
    Syntax("xml-property", "xml", lambda n, v: f'<property name="{n.dotted}" value="{xml(v)}"/>'),
    # INI, TOML, properties
    Syntax("ini", "ini", lambda n, v: f"[default]\n{n.snake} = {v}"),
    Syntax("toml", "toml", lambda n, v: f'[service]\n{n.snake} = "{v}"'),
    Syntax("java-properties", "properties", lambda n, v: f"{n.dotted}={v}"),
    # Containers and infrastructure
    Syntax("dockerfile-env", "dockerfile", lambda n, v: f"ENV {n.upper}={bare(v)}"),
    Syntax("dockerfile-arg", "dockerfile", lambda n, v: f"ARG {n.upper}={bare(v)}"),
    Syntax("terraform", "terraform", lambda n, v: f'resource "app_config" "main" {{\n  {n.snake} = "{v}"\n}}'),
    Syntax("helm-set", "shell", lambda n, v: f"helm upgrade api ./chart --set {n.dotted}={bare(v)}"),
    Syntax("kubectl-literal", "shell", lambda n, v: f"kubectl create secret generic api --from-literal={n.snake}={bare(v)}"),
    # Command lines, headers, URLs
    Syntax("cli-flag-equals", "cli", lambda n, v: f"deployctl login --{n.kebab}={bare(v)}"),
    Syntax("cli-flag-space", "cli", lambda n, v: f"deployctl login --{n.kebab} {bare(v)}"),
    Syntax("http-header", "http", lambda n, v: f"X-{n.header}: {v}"),
    Syntax("curl-header", "cli", lambda n, v: f'curl -H "X-{n.header}: {v}" https://api.internal.corp/v1/items', NOT_URL),
    Syntax("url-query", "url", lambda n, v: f"https://api.internal.corp/v1/export?format=csv&{n.snake}={v}", NOT_URL),
    Syntax("mysql-cli", "cli", lambda n, v: f"mysql -u admin -p{v} -h db.internal.corp orders", PASSWORD_ONLY),
    Syntax("curl-user", "cli", lambda n, v: f"curl -u deploy:{v} https://api.internal.corp/v1/items", PASSWORD_ONLY),
    Syntax("netrc", "netrc", lambda n, v: f"machine api.internal.corp login deploy password {v}", PASSWORD_ONLY),
    Syntax("pgpass", "pgpass", lambda n, v: f"db.internal.corp:5432:orders:app:{v}", PASSWORD_ONLY),
    Syntax(
        "powershell-securestring",
        "powershell",
        lambda n, v: f'$pw = ConvertTo-SecureString "{v}" -AsPlainText -Force',
        PASSWORD_ONLY,
    ),
    # Output of commands and logs
    Syntax("env-output", "output", lambda n, v: f"$ env | sort\nHOME=/home/deploy\n{n.upper}={v}\nPATH=/usr/bin"),
    Syntax("docker-inspect-output", "output", lambda n, v: f'"Env": [\n    "PATH=/usr/local/bin",\n    "{n.upper}={v}"\n]'),
    Syntax("log-line", "output", lambda n, v: f"2025-03-01T10:22:31Z DEBUG config loaded {n.snake}={v} source=vault"),
)
