"""``--store s3://bucket/prefix``: uploads streamed into an S3 bucket.

Shared by ``liveupload serve --store`` and ``liveupload s3``. The endpoint,
region and credentials come from the standard AWS chain (``AWS_ENDPOINT_URL_S3``,
``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
config files), as boto3 reads them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

import writers.s3 as s3

__all__ = ["CHECK_SETTINGS", "Store", "check_store", "parse_store", "quiet_client_logs", "upload_options"]

CHECK_SETTINGS: dict[str, Any] = {"retries": {"total_max_attempts": 2}, "connect_timeout": 5, "read_timeout": 15}
"""Client settings of the start-up check: fail within seconds, not after the full retry schedule."""

_HINTS = {
    "SignatureDoesNotMatch": "the store refused the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "InvalidAccessKeyId": "the store does not know the access key (AWS_ACCESS_KEY_ID)",
    "AccessDenied": "the credentials may not read the bucket",
    "NoSuchBucket": "the bucket does not exist",
    "NoCredentialsError": "no credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    "EndpointConnectionError": "nothing answers at the endpoint (AWS_ENDPOINT_URL_S3)",
    "ConnectTimeoutError": "the endpoint did not answer in time (AWS_ENDPOINT_URL_S3)",
}


@dataclass(frozen=True)
class Store:
    """``s3://<bucket>/<prefix>``: where uploads go (keys ``<prefix>/<id>/<name>``)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def quiet_client_logs() -> None:
    """boto3 and botocore log at info where the credentials and endpoint came
    from, on every client; keep their warnings only."""
    for name in ("boto3", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def parse_store(url: str) -> Store:
    """``s3://bucket`` or ``s3://bucket/some/prefix``; ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"--store must look like s3://bucket/prefix, got {url!r}")
    return Store(bucket=parts.netloc, prefix=parts.path.strip("/"))


def check_store(store: Store, settings: dict[str, Any] | None = None) -> str | None:
    """``None`` if a signed listing of the store's prefix succeeds, else one line
    saying what failed (the store's error code, the endpoint, a hint)."""
    settings = {**CHECK_SETTINGS, **(settings or {})}
    client = None
    try:
        client = s3.client_for(settings)
        client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix, MaxKeys=1)
        return None
    except (BotoCoreError, ClientError) as exc:
        code = s3.s3_reason(exc)[1]
    endpoint = client.meta.endpoint_url if client is not None else "the default endpoint"
    hint = _HINTS.get(code)
    return f"cannot use {store} at {endpoint}: {code}" + (f" ({hint})" if hint else "")


def upload_options(store: Store, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``allow_upload`` options that stream every entry into *store*."""
    return {"writer": s3.s3_writer_factory(store.bucket, prefix=store.prefix, client=dict(settings or {}))}
