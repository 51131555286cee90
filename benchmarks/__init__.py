"""Performance scripts: each prints ratios measured side by side in one run, and a RESULT line last."""
