"""The upload server: the ASGI app (:mod:`server.app`), the Phoenix Channels
transport and wire codec (:mod:`server.transport`, :mod:`server.protocol`),
the ``lv:`` and ``lvu:`` topic handlers, storage, and the page
(:mod:`server.page`). It imports neither the client nor the command line."""
