"""`egress lockdown` as a command: output to stdout or a folder, configuration errors, and the
local-gateway exception in the nftables ruleset (checked by `nft -c` where nft is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from egress.cli.lockdown import lockdown_command
from tests.unit.lockdown.plans import HERE


def config_with(tmp_path: Path, **lockdown) -> Path:
    doc = yaml.safe_load((HERE / "config.yaml").read_text())
    doc["lockdown"] = {**doc["lockdown"], **lockdown}
    doc["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "egress.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_export_prints_one_file_or_writes_several(tmp_path):
    runner = CliRunner()
    config = config_with(tmp_path)
    printed = runner.invoke(lockdown_command, ["export", "--format", "cilium", "--config", str(config)])
    assert printed.exit_code == 0, printed.output
    assert printed.output.startswith("# egress lockdown: cilium\n") and "kind: CiliumNetworkPolicy" in printed.output
    out = tmp_path / "tf"
    written = runner.invoke(
        lockdown_command, ["export", "--format", "terraform", "--config", str(config), "-o", str(out)]
    )
    assert written.exit_code == 0, written.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.tf")) == ["aws/main.tf", "gcp/main.tf"]


def test_an_unknown_tool_is_a_configuration_error(tmp_path):
    result = CliRunner().invoke(
        lockdown_command,
        ["export", "--format", "kubernetes", "--config", str(config_with(tmp_path, allow_tools=["cursr"]))],
    )
    assert result.exit_code == 2
    assert "cursr" in result.output and "cursor" in result.output


def test_a_gateway_on_the_same_machine_keeps_its_own_way_out(tmp_path):
    config = config_with(tmp_path, gateway={"addresses": ["10.20.0.10/32"], "local_uid": 998})
    out = tmp_path / "nft"
    result = CliRunner().invoke(
        lockdown_command, ["export", "--format", "nftables", "--no-resolve", "--config", str(config), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = (out / "egress-lockdown.nft").read_text()
    output_chain = text.split("chain output", 1)[1].split("chain forward", 1)[0]
    # Before the drop, in the output chain only (forwarded traffic has no local owner).
    assert output_chain.index("meta skuid 998 accept") < output_chain.index("@providers_v4")
    assert "skuid" not in text.split("chain forward", 1)[1]
    nft = shutil.which("nft")
    assert nft is not None, "nft is not installed (apt-get install nftables; scripts/test.sh does)"
    checked = subprocess.run(
        [nft, "-c", "-f", str(out / "egress-lockdown.nft")], capture_output=True, text=True, check=False
    )
    # `nft -c` needs CAP_NET_ADMIN to open its netlink socket even to check; as root it parses the file.
    assert checked.returncode == 0, checked.stderr
