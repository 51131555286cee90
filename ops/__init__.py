"""Operator commands for a deployed stack: ``python -m ops <command> --outputs FILE | --stack NAME``.

Every command reads what it needs from the stack's outputs (``pulumi stack output --json``), shows what it is about
to do, and asks before it changes anything (``--yes`` skips the question, ``--dry-run`` stops after showing).
"""
