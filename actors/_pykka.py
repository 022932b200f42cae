"""The one module that touches Pykka's private internals.

``Process`` is a ``pykka.ThreadingActor`` so that Pykka's refs, proxies and
``ask``/``tell`` work unchanged; running it on a substrate of our own needs
three names Pykka does not export. Each is imported here and nowhere else:

- ``Envelope`` (``pykka._envelope``): the mail item ``ActorRef.tell`` and
  ``ask`` put into an actor's inbox. Our ``Mailbox`` queues it, the process
  reads its ``message`` and ``reply_to``, and the runtime makes its own to
  wake a process.
- ``ActorStop`` (``pykka.messages._ActorStop``): what ``ActorRef.stop()``
  sends; a process recognises it to exit with ``"normal"`` (and
  ``uploads.session`` to start a stop that waits for its channels as mail).
- ``Unset`` (``pykka._future._Unset``): ``Future.get`` runs a get hook only
  while ``_get_hook_result`` is an instance of it, so ``ProcessFuture`` must
  set exactly that when a hook is installed.

The Pykka *extension points* for actor runtimes (``_create_future``,
``_start_actor_loop``, ``_handle_receive``) are methods ``Process`` overrides
or inherits as ``ThreadingActor`` and ``GeventActor`` do; they are not
imported from anywhere. (``_create_actor_inbox`` is only called by
``Actor.__init__``, which ``Process`` skips: it makes its ``Mailbox`` itself.)
"""

from __future__ import annotations

from pykka._envelope import Envelope
from pykka._future import _Unset as Unset
from pykka.messages import _ActorStop as ActorStop

__all__ = ["ActorStop", "Envelope", "Unset"]
