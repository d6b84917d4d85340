"""The deployment artifacts: deploy/kubernetes validates against the Kubernetes schemas (one pinned
version) and is what it claims (2+ replicas sharing PostgreSQL, a PodDisruptionBudget, config and
keys wired from a ConfigMap and a Secret, the lock-down policies generated from the same config),
and deploy/Dockerfile's steps work when run outside a container builder.

No image is built here: podman installs on this machine and builds, but no container registry is
reachable, so the base image cannot be pulled (README, "Lock it down"). Instead the Dockerfile's
steps are replayed: its package installed into a clean venv from a wheel of the tracked files, and
`egress serve` started the way the image starts it — its ENV, as user 10001, in a mount namespace
where the root filesystem is read-only and only the data and cache folders are writable — until
the image's own HEALTHCHECK command passes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from egress.config import default_cache_dir, load_config
from egress.lockdown.export import export
from egress.lockdown.hosts import build_plan
from tests.support.gateway import free_port
from tests.support.repo import copy_tracked, git, new_user_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES_VERSION = "1.34.0"


def manifests() -> list[dict]:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / resource).read_text()) if d]
    return docs


def find(kind: str, name: str | None = None) -> dict:
    return next(d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name))


def deploy_config(tmp_path: Path) -> Path:
    path = tmp_path / "egress.yaml"
    path.write_text(find("ConfigMap", "egress-config")["data"]["egress.yaml"])
    return path


def test_every_manifest_validates_against_the_kubernetes_schemas():
    docs = manifests()
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_deployment_runs_replicas_that_share_the_store_with_the_same_keys(tmp_path):
    deployment = find("Deployment")["spec"]
    assert deployment["replicas"] >= 2
    pod = deployment["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    labels = deployment["template"]["metadata"]["labels"]
    assert find("Service")["spec"]["selector"].items() <= labels.items()
    assert find("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert find("PodDisruptionBudget")["spec"]["minAvailable"] < deployment["replicas"]

    config = load_config(deploy_config(tmp_path), env={}, require_env=False)
    assert (
        config.store_url.startswith("postgresql://")
        and ":" not in config.store_url.split("@")[0][len("postgresql://") :]
    )
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["keys"]["secret"]["secretName"] == "egress-keys"
    for key_file in (config.masking_key_file, config.audit_signing_key_file, config.recording_key_file):
        assert key_file.parent == Path(mounts["keys"]), key_file  # every replica reads the same keys
    assert str(config.resolved_data_dir) == mounts["data"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "egress-postgres"
    assert Path(env["EGRESS_CONFIG"]["value"]) == Path(mounts["config"])


def test_lockdown_policies_in_the_kustomization_are_generated_from_its_config(tmp_path):
    config = load_config(deploy_config(tmp_path), env={}, require_env=False)
    plan = build_plan(config.providers, config.provider_catalog, config.lockdown)
    fresh = [d for d in yaml.safe_load_all(export(plan, "kubernetes")[0].text) if d]
    committed = [d for d in manifests() if d["kind"] == "NetworkPolicy"]
    assert committed == fresh, "regenerate deploy/kubernetes/lockdown (kustomization.yaml says how)"
    gateway_labels = find("Deployment")["spec"]["template"]["metadata"]["labels"]
    for policy in committed:
        if policy["metadata"]["namespace"] == "egress":
            assert policy["spec"]["podSelector"]["matchLabels"].items() <= gateway_labels.items()


# --- the Dockerfile, replayed ------------------------------------------------------------------


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")


def instruction(name: str, text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def image_env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in instruction("ENV", text):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_dockerfile_is_slim_non_root_and_checks_readyz():
    text = dockerfile()
    assert all(base.split()[0].endswith("-slim-bookworm") for base in instruction("FROM", text))
    assert instruction("USER", text) == ["10001:10001"]
    (healthcheck,) = instruction("HEALTHCHECK", text)
    assert "/readyz" in healthcheck and "CMD" in healthcheck
    assert instruction("ENTRYPOINT", text) == ['["egress"]']


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A folder every user may read (pytest's own temporary folders are private to root). The
    image's data and cache folders are made on the host as mount points (tmpfs is mounted on them
    inside the test's mount namespace only) and removed again if they were not there before."""
    root = Path(tempfile.mkdtemp(prefix="egress-image-", dir="/tmp"))
    root.chmod(0o755)
    env = image_env(dockerfile())
    mount_points = [Path(env["EGRESS_DATA_DIR"]), Path(env["XDG_CACHE_HOME"]) / "egress"]
    made = [p for p in mount_points if not p.exists()]
    for path in made:
        path.mkdir(parents=True)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for path in made:
            path.rmdir()


def test_dockerfile_steps_serve_read_only_as_a_non_root_user(image_root):
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.fail("this test needs root, unshare and setpriv (util-linux) to replay the image's read-only start")
    text = dockerfile()
    # Build stage: a wheel of the tracked files, installed into a clean venv. Its dependencies
    # come from egress's own venv (a .pth file): the test downloads nothing.
    source = copy_tracked(image_root / "src")
    # Files being written in this working tree and not yet tracked (others' work in progress that
    # tracked files already import) go in too: the wheel is of the tree as it will be committed.
    for rel in git("ls-files", "--others", "--exclude-standard", "-z", "--", "egress").split("\0"):
        if rel and (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, source / rel)
    dist = image_root / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--wheel-dir", str(dist), str(source)],
        env=new_user_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    venv = image_root / "opt" / "egress"
    wheel = next(dist.glob("egress-*.whl"))
    # The interpreter egress's venv was made from, bind-mounted where user 10001 can reach it (it
    # may live under root's home); the clean venv is made from it inside the mount namespace.
    python_home = image_root / "python"
    python_home.mkdir()
    python = python_home / "bin" / Path(sys._base_executable).name
    # egress's own site-packages, bind-mounted where user 10001 can reach it too: CI's clone (and
    # so its venv) lies in a private 0700 temporary folder.
    deps = image_root / "deps"
    deps.mkdir()
    build = [
        f"mount --bind {shlex.quote(sys.base_prefix)} {python_home}",
        f"{python} -m venv --without-pip {venv}",
        f"echo {shlex.quote(str(deps))} > {venv}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages/deps.pth",
        f"{shlex.quote(sys.executable)} -m pip --python {venv}/bin/python install -q --no-deps {wheel}",
        f"chmod -R a+rX {image_root}",
        f"mount --bind {shlex.quote(sysconfig.get_paths()['purelib'])} {deps}",
    ]
    # Run stage: the image's ENV, user and read-only root; the data and cache folders are tmpfs.
    port = free_port()
    env = image_env(text)
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    config = image_root / "egress.yaml"
    config.write_text(
        yaml.safe_dump({"server": {"port": port}, "data_dir": env["EGRESS_DATA_DIR"], "providers": _providers()})
    )
    cache = default_cache_dir(os.environ)
    # The image's `useradd`: user 10001 has a passwd entry (inside the namespace only).
    passwd = image_root / "passwd"
    passwd.write_text(Path("/etc/passwd").read_text() + "egress:x:10001:10001::/var/lib/egress:/usr/sbin/nologin\n")
    script = " && ".join(
        [
            "set -x; mount --make-rprivate /",
            *build,
            f"mount --bind {passwd} /etc/passwd",
            f"mount -t tmpfs -o mode=0700 tmpfs {env['EGRESS_DATA_DIR']}",
            f"mount -t tmpfs -o mode=0700 tmpfs {env['XDG_CACHE_HOME']}/egress",
            # A warm detection cache, as a long-running pod keeps in its emptyDir (compiling takes seconds).
            f"cp -r {shlex.quote(str(cache))}/. {env['XDG_CACHE_HOME']}/egress/ 2>/dev/null || true",
            f"chown -R 10001:10001 {env['EGRESS_DATA_DIR']} {env['XDG_CACHE_HOME']}/egress",
            "mount -o remount,bind,ro /",
            # Its libpython, by the bind-mounted path (the binary's own run path is under root's home).
            f"export LD_LIBRARY_PATH={python_home}/lib",
            f"exec setpriv --reuid 10001 --regid 10001 --clear-groups {venv / 'bin' / 'egress'} serve --config {config} --host 127.0.0.1",
        ]
    )
    serve = subprocess.Popen(
        ["unshare", "--mount", "sh", "-c", script],
        env={**env, "EGRESS_CONFIG": str(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        (healthcheck,) = instruction("HEALTHCHECK", text)
        probe = yaml.safe_load(healthcheck.split("CMD", 1)[1].strip())  # the exec-form JSON array
        # Run from outside the namespace: the same standard-library command the image runs.
        probe = [sys.executable, *[a.replace("8080", str(port)) for a in probe[1:]]]
        deadline = time.monotonic() + 120
        while subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode != 0:
            if serve.poll() is not None or time.monotonic() > deadline:
                serve.kill()
                raise AssertionError(
                    f"the image's healthcheck never passed (exit {serve.returncode}):\n"
                    f"{serve.stdout.read() if serve.stdout else ''}"
                )
            time.sleep(0.5)
        uid = subprocess.run(
            ["ps", "-o", "uid=", "--ppid", str(serve.pid)], capture_output=True, text=True, check=False
        )
        owners = {line.strip() for line in uid.stdout.splitlines() if line.strip()} | {_uid(serve.pid)}
        assert owners == {"10001"}, owners
        # The install folder was read-only to it: nothing was written there (no bytecode, no cache).
        assert not list(venv.rglob("__pycache__")) or all(p.stat().st_uid == 0 for p in venv.rglob("__pycache__"))
    finally:
        serve.terminate()
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()


def _uid(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split()[1]
    return "?"


def _providers() -> list[dict]:
    return [
        {
            "name": "anthropic",
            "catalog": "anthropic",
            "credentials": {"passthrough": True},
        }
    ]
