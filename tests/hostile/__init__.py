"""Hostile clients on loopback: each test a bounded scaled-down attack."""
