"""The Python client of the upload page: it speaks LiveView's upload protocol
the way Phoenix's JavaScript client does.

* :mod:`client.channels`: a Phoenix Channels socket (replies by ref, pushes,
  heartbeats);
* :mod:`client.page_view`: the page as a client reads it (the one HTML parser);
* :mod:`client.live_page`: a joined page kept up to date with its diffs;
* :mod:`client.upload`: ``upload_files``, what ``liveupload send`` runs.
"""

from client.channels import ServerError
from client.upload import FileResult, upload_files, upload_files_async

__all__ = ["FileResult", "ServerError", "upload_files", "upload_files_async"]
