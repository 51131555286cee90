"""The catalogue (policies/README.md) is generated from the rules and kept in sync with the running pack."""

from __future__ import annotations

import re
import subprocess
import sys

from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess


def test_catalogue_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(DEFAULT_PACK_DIR / "catalogue.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_catalogue_lists_every_policy_the_pack_serves(pack: PolicyPackProcess) -> None:
    readme = (DEFAULT_PACK_DIR / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `([a-z0-9-]+)`$", readme, re.MULTILINE))
    served = pack.policies()
    assert documented == {p.name for p in served}
    for policy in served:
        assert f"| `{policy.name}` | " in readme and policy.description in readme
        for key in policy.config_schema.get("properties", {}):
            assert f"| `{key}` |" in readme, f"{policy.name}: config key {key} is not catalogued"
