"""`python -m offline cost`: the monthly AWS cost of each pipeline of a stack, from its synthesized resources, a
volume profile and the price table in `prices.yaml`. See `offline.cost.command`."""
