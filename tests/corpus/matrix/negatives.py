"""Hard negatives: lines that name a credential and hold none.

References to a value kept elsewhere (environment, vault, templating), type names and
declarations without a value, placeholders written in place of a value, and code that only
handles a credential (reads, compares, hashes, validates it). Each template is written once per
credential name below, so a detector that keys on the name is tested on every one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tests.corpus.matrix.syntaxes import Name

NAMES = (
    Name(("db", "password")),
    Name(("api", "key")),
    Name(("client", "secret")),
    Name(("auth", "token")),
    Name(("aws", "secret", "access", "key")),
)


@dataclass(frozen=True, slots=True)
class Negative:
    kind: str  # reference | templating | placeholder | declaration | mention
    language: str
    render: Callable[[Name], str]


N = Negative
TEMPLATES: tuple[Negative, ...] = (
    # References: the value lives elsewhere.
    N("reference", "python", lambda n: f'{n.snake} = os.environ["{n.upper}"]'),
    N("reference", "python", lambda n: f'{n.snake} = os.getenv("{n.upper}", "")'),
    N("reference", "python", lambda n: f"{n.snake} = settings.{n.upper}"),
    N("reference", "python", lambda n: f'{n.snake} = vault.read("secret/data/app")["data"]["{n.snake}"]'),
    N("reference", "go", lambda n: f'{n.camel} := os.Getenv("{n.upper}")'),
    N("reference", "java", lambda n: f'String {n.camel} = System.getenv("{n.upper}");'),
    N("reference", "java", lambda n: f'@Value("${{{n.dotted}}}") private String {n.camel};'),
    N("reference", "csharp", lambda n: f'var {n.camel} = Environment.GetEnvironmentVariable("{n.upper}");'),
    N("reference", "csharp", lambda n: f'var {n.camel} = Configuration["{n.pascal}"];'),
    N("reference", "php", lambda n: f"${n.camel} = getenv('{n.upper}');"),
    N("reference", "php", lambda n: f"'{n.snake}' => env('{n.upper}'),"),
    N("reference", "javascript", lambda n: f"const {n.camel} = process.env.{n.upper};"),
    N("reference", "ruby", lambda n: f'{n.snake} = ENV.fetch("{n.upper}")'),
    N("reference", "shell", lambda n: f'export {n.upper}="${{{n.upper}}}"'),
    N("reference", "shell", lambda n: f"{n.upper}=$(vault kv get -field={n.snake} secret/app)"),
    N("reference", "shell", lambda n: f'deployctl login --{n.kebab}="${n.upper}"'),
    N("reference", "powershell", lambda n: f"$env:{n.upper} = $secrets.{n.pascal}"),
    N("reference", "dockerfile", lambda n: f"ARG {n.upper}"),
    N("reference", "dockerfile", lambda n: f"ENV {n.upper}=${{{n.upper}}}"),
    N("reference", "terraform", lambda n: f"  {n.snake} = var.{n.snake}"),
    N("reference", "terraform", lambda n: f"  {n.snake} = data.aws_secretsmanager_secret_version.app.secret_string"),
    N("reference", "yaml", lambda n: f"{n.snake}: ${{{n.upper}}}"),
    N("reference", "yaml", lambda n: f"env:\n  - name: {n.upper}\n    valueFrom:\n      secretKeyRef:\n        name: app\n        key: {n.kebab}"),
    N("reference", "yaml", lambda n: f"{n.snake}: ${{{{ secrets.{n.upper} }}}}"),
    N("reference", "properties", lambda n: f"{n.dotted}=${{{n.upper}}}"),
    N("reference", "xml", lambda n: f"<{n.camel}>${{{n.upper}}}</{n.camel}>"),
    N("reference", "json", lambda n: f'{{"{n.camel}": "${{{n.upper}}}"}}'),
    N("reference", "sql", lambda n: f"ALTER USER app IDENTIFIED BY :new_{n.snake};"),
    N("reference", "url", lambda n: f"postgresql://app:${{{n.upper}}}@db.internal.corp:5432/orders"),
    # Templating.
    N("templating", "yaml", lambda n: f'{n.snake}: "{{{{ .Values.{n.camel} }}}}"'),
    N("templating", "yaml", lambda n: f'{n.snake}: "{{{{ vault_{n.snake} }}}}"'),
    N("templating", "python", lambda n: f'dsn = "host=db {n.snake}=%({n.snake})s" % params'),
    N("templating", "ini", lambda n: f"{n.snake} = %({n.snake})s"),
    N("templating", "javascript", lambda n: f"const url = `https://api.internal.corp/?{n.snake}=${{{n.camel}}}`;"),
    N("templating", "erb", lambda n: f"{n.snake}: <%= ENV['{n.upper}'] %>"),
    N("templating", "jinja", lambda n: f"{n.snake} = {{{{ {n.snake} | quote }}}}"),
    N("templating", "batch", lambda n: f"set {n.upper}=%{n.upper}%"),
    # Placeholders.
    N("placeholder", "python", lambda n: f'{n.snake} = "<your-{n.kebab}>"'),
    N("placeholder", "yaml", lambda n: f"{n.snake}: changeme"),
    N("placeholder", "dotenv", lambda n: f"{n.upper}=********"),
    N("placeholder", "dotenv", lambda n: f"{n.upper}=xxxxxxxxxxxxxxxxxxxx"),
    N("placeholder", "json", lambda n: f'{{"{n.camel}": "REPLACE_ME"}}'),
    N("placeholder", "shell", lambda n: f"export {n.upper}=your-{n.kebab}-here"),
    N("placeholder", "ini", lambda n: f"{n.snake} = <{n.snake}>"),
    N("placeholder", "dotenv", lambda n: f"{n.upper}="),
    N("placeholder", "json", lambda n: f'{{"{n.camel}": ""}}'),
    N("placeholder", "json", lambda n: f'{{"{n.camel}": null}}'),
    N("placeholder", "markdown", lambda n: f"Set `{n.upper}` to the value from the dashboard before you run the tests."),
    # Declarations and type names.
    N("declaration", "python", lambda n: f"{n.snake}: str"),
    N("declaration", "python", lambda n: f"{n.snake}: Optional[SecretStr] = None"),
    N("declaration", "python", lambda n: f"{n.snake} = None"),
    N("declaration", "go", lambda n: f"var {n.camel} string"),
    N("declaration", "go", lambda n: f'\t{n.pascal} string `json:"{n.snake}"`'),
    N("declaration", "java", lambda n: f"private String {n.camel};"),
    N("declaration", "typescript", lambda n: f"  {n.camel}: string;"),
    N("declaration", "typescript", lambda n: f"  {n.camel}?: string | undefined;"),
    N("declaration", "csharp", lambda n: f"public string {n.pascal} {{ get; set; }}"),
    N("declaration", "sql", lambda n: f"  {n.snake} VARCHAR(255) NOT NULL,"),
    N("declaration", "python", lambda n: f"{n.snake}_min_length = 12"),
    N("declaration", "yaml", lambda n: f"{n.snake}_file: /run/secrets/{n.snake}"),
    N("declaration", "yaml", lambda n: f"{n.snake}_rotation_days: 90"),
    # Code that only mentions a credential.
    N("mention", "python", lambda n: f'{n.snake} = getpass.getpass("{n.pascal}: ")'),
    N("mention", "python", lambda n: f"if {n.snake} == confirm_{n.snake}:"),
    N("mention", "python", lambda n: f"self.{n.snake} = {n.snake}"),
    N("mention", "python", lambda n: f'{n.snake} = request.form["{n.snake}"]'),
    N("mention", "python", lambda n: f"hashed = bcrypt.hashpw({n.snake}.encode(), bcrypt.gensalt())"),
    N("mention", "python", lambda n: f"{n.snake} = secrets.token_urlsafe(32)"),
    N("mention", "python", lambda n: f'raise ValueError("{n.snake} must be at least 12 characters")'),
    N("mention", "python", lambda n: f'log.info("rotating {n.snake} for tenant %s", tenant_id)'),
    N("mention", "go", lambda n: f"if {n.camel} == \"\" {{ return errors.New(\"missing {n.snake}\") }}"),
    N("mention", "javascript", lambda n: f"const {n.camel} = await prompt('Enter {n.snake}: ');"),
    N("mention", "javascript", lambda n: f"if (!{n.camel}) throw new Error('{n.upper} is not set');"),
    N("mention", "java", lambda n: f"String {n.camel} = readPassword(console);"),
    N("mention", "shell", lambda n: f'read -rs -p "{n.pascal}: " {n.upper}'),
    N("mention", "shell", lambda n: "mysql -u admin -p -h db.internal.corp orders"),
    N("mention", "shell", lambda n: f'echo "${n.upper}" | docker login --username deploy --password-stdin'),
    N("mention", "shell", lambda n: f'curl -H "Authorization: Bearer ${n.upper}" https://api.internal.corp/v1'),
    N("mention", "php", lambda n: f"if (password_verify(${n.camel}, $hash)) {{"),
    N("mention", "sql", lambda n: f"SELECT id FROM users WHERE {n.snake} IS NULL;"),
)


def negatives() -> list[tuple[str, str, str]]:
    """(kind, language, text) for every template and name, in a fixed order."""
    return [(t.kind, t.language, t.render(n)) for t in TEMPLATES for n in NAMES]
