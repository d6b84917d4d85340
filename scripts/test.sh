#!/usr/bin/env bash
# Install everything the test suite needs and run all of it: lint, import contracts, tests.
# This is the README's test command, and CI's (.ci/run calls it).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The 'selfhosted' extra brings the real self-hosted model server (tests/support/selfhosted.py).
# llama-cpp-python is a source package: pip compiles llama.cpp (7-11 minutes on 2 cores), once per
# machine: later runs find it installed. The flags build only what the server loads: a portable
# CPU library (AVX2, not -march=native) without the multimodal library (140 compile steps, not
# 193); tests, tools, examples and OpenSSL are off already in this build, and stay off.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  .venv/bin/python -m pip install -q -e '.[test,selfhosted]'

# The real coding agents, pinned, for the end-to-end tests (tests/integration/test_agents*.py).
mkdir -p .tools/npm
cp tools/agents/package.json tools/agents/package-lock.json .tools/npm/
# `npm install` with the committed lock, not `npm ci`: npm 11's `ci` refuses a lock that lists no
# entry for another platform's optional binary package (cline's and opencode's per-platform
# builds), while `install` takes exactly the locked versions and skips the other platforms.
npm install --prefix .tools/npm --no-audit --no-fund --loglevel=error
# The Python agents, each in a venv of its own (.tools/aider, .tools/vibe: their dependencies never
# mix with egress's), pinned in tools/agents/<name>.txt. The venvs live in a per-machine cache
# (one per pinned version, built once, under a lock) and .tools/<name> links to it, so a fresh
# clone on the same machine installs nothing.
AGENTS_CACHE=${EGRESS_AGENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/egress/agents}
python_agent() {  # venv name, interpreter
  local pin dir; pin=$(grep -v '^#' "tools/agents/$1.txt" | head -n1); dir="$AGENTS_CACHE/$1-${pin#*==}"
  mkdir -p "$AGENTS_CACHE"
  (
    flock 9
    if ! [ -f "$dir/.installed" ]; then  # written last: a half-built venv is built again
      rm -rf "$dir" && "$2" -m venv "$dir" && "$dir/bin/python" -m pip install -q "$pin" && touch "$dir/.installed"
    fi
  ) 9>"$AGENTS_CACHE/.lock"
  [ -L ".tools/$1" ] || rm -rf ".tools/$1"
  ln -sfn "$dir" ".tools/$1"
}
# Mistral Vibe needs Python 3.12 or newer: the first found on PATH or among pyenv's versions.
vibe_python() {
  local p
  for p in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python; do
    if command -v "$p" >/dev/null && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  echo "no Python 3.12 or newer found (Mistral Vibe needs one): install one, e.g. pyenv install 3.12" >&2
  return 1
}
python_agent aider "$PYTHON"
VIBE_PYTHON=$(vibe_python)
python_agent vibe "$VIBE_PYTHON"
# Continue's own packages that build its autocomplete request from a config.yaml
# (tests/integration/test_autocomplete.py): the cn CLI has no autocomplete command.
mkdir -p .tools/continue
cp tools/continue/package.json tools/continue/package-lock.json .tools/continue/
npm install --prefix .tools/continue --no-audit --no-fund --loglevel=error

# PostgreSQL runs on this kind of machine; start it if it is not up (the store tests use it).
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# Redis runs on this kind of machine on its standard loopback port (egress/shared's tests and
# tests/integration/test_replicas.py use it; they fail, never skip, without it): start it if it is
# not up, installing Debian's redis-server first if needed.
if ! command -v redis-server >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

# Debian's chromium for the console's browser test (tests/integration/test_console_browser.py);
# Playwright drives it (executable_path), so no browser download of Playwright's own is needed.
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium
fi

# WeasyPrint's libraries (pango, harfbuzz) for `egress report --format pdf`, and poppler-utils
# (pdftoppm, pdftotext) with which tests/unit/report checks the PDF.
if ! command -v pdftotext >/dev/null || ! command -v pdftoppm >/dev/null || ! ldconfig -p | grep -q libpango-1.0; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b
fi

# xmlsec1 for the console's SAML sign-in (pysaml2 runs it to sign and verify; egress/identity/saml.py,
# tests/integration/test_console_saml*.py).
if ! command -v xmlsec1 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq xmlsec1
fi

# nftables and iproute2 for the lock-down's network-namespace test
# (tests/integration/test_lockdown_nftables.py, which needs root and fails without them).
if ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nftables iproute2
fi
# checkov scans the lock-down's Terraform (tests/integration/test_lockdown_export.py); it pins many
# libraries of its own, so it lives in its own venv, never egress's.
CHECKOV_PIN=checkov==3.3.30
if ! .tools/checkov/bin/python -c "import importlib.metadata as m; assert m.version('checkov') == '${CHECKOV_PIN#*==}'" 2>/dev/null; then
  "$PYTHON" -m venv .tools/checkov && .tools/checkov/bin/python -m pip install -q "$CHECKOV_PIN"
fi

.venv/bin/ruff check egress tests bench
.venv/bin/lint-imports
# Types: strict on egress/core, egress/wire and egress/mask, normal elsewhere ([tool.mypy]).
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"
