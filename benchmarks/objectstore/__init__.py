"""Real object stores for the tests and the benchmarks (OpenStack Swift with its S3 API)."""
