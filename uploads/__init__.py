"""uploads: Phoenix LiveView's upload pipeline as processes, above supervision.

- :class:`UploadSession` (``uploads.session``): the LiveView's role: the
  ``allow_upload`` configs, the client's entries, entry tokens, one channel
  per joined entry under its own ``DynamicSupervisor``, consumption.
- :class:`UploadChannel` (``uploads.channel``): the whole life of one upload.
- :class:`UploadConfig`, :class:`UploadEntry` (``uploads.config``): plain data
  and Phoenix's validation rules.
- :class:`ClientError`, ``check_entries``, ``parse_progress``
  (``uploads.client_data``): the one parser of what the client sends.
- :class:`Signer`, :class:`EntryTokens` (``uploads.tokens``): signed tokens.

Layers: ``actors`` -> ``supervision`` -> ``uploads`` (with ``writers``) -> ``server``.
"""

from uploads.channel import CLIENT_LEFT, UploadChannel
from uploads.client_data import ClientError
from uploads.config import UploadConfig, UploadEntry, validate_accept
from uploads.session import SessionChange, UploadSession, session_for_token
from uploads.tokens import EntryClaim, EntryTokens, InvalidToken, Signer, session_id_of

__all__ = [
    "CLIENT_LEFT",
    "ClientError",
    "EntryClaim",
    "EntryTokens",
    "InvalidToken",
    "Signer",
    "UploadChannel",
    "UploadConfig",
    "UploadEntry",
    "SessionChange",
    "UploadSession",
    "session_for_token",
    "session_id_of",
    "validate_accept",
]
