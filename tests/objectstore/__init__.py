"""Real object stores for the tests (OpenStack Swift with its S3 API)."""
