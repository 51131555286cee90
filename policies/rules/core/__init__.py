"""The shared core of the rules: declaration and wrapping (rule), config (settings), exemptions, the stack index,
property reading (values), policy documents and wildcard matching (globs)."""
