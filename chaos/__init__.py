"""Randomized fault-injection campaign: three nodes in network namespaces (`make chaos`)."""
