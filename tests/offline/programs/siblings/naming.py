def physical(name: str) -> str:
    return f"fixture-{name}"
