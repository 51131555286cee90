"""Every function of the shipped stacks starts with only the environment its stack gives it, as a cold start does:
its handler module, and everything that module imports, finds the settings it reads at import. (The handler tests
load several functions into one process, so a variable one function lacks can hide behind another's.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stacks import function_roles, shipped_stack

ROOT = Path(__file__).resolve().parents[2]
# What Lambda itself sets in every function's environment (the runtime's variables, not the stack's).
LAMBDA_RUNTIME = {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                  "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                  "AWS_LAMBDA_FUNCTION_NAME": "cold-start", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"}
FUNCTIONS = {(stack, role.function.inputs["handler"]): dict(role.function.inputs.get("environment", {})
                                                             .get("variables", {}))
             for stack in ("dev", "prod") for role in function_roles(shipped_stack(stack))}


@pytest.mark.parametrize(("stack", "handler"), sorted(FUNCTIONS))
def test_each_handler_imports_with_only_its_own_environment(stack: str, handler: str) -> None:
    module = handler.rsplit(".", 1)[0]
    environment = {"PATH": os.environ["PATH"], **LAMBDA_RUNTIME, **FUNCTIONS[stack, handler]}
    completed = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, 'handlers'); import {module}; "
                               f"assert callable({module}.handler)"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, f"{handler} ({stack}) does not start:\n{completed.stderr[-2000:]}"
