def bucket_name() -> str:
    return "fixture-main-option-data"
