"""Django's PostgreSQL backend with a health check that costs no round trip on a quiet socket.

``CONN_HEALTH_CHECKS`` (config.settings) makes Django ask ``is_usable()`` before a request's first
query on a kept connection, and Django's PostgreSQL backend answers by running ``SELECT 1``:
one more round trip on every request, a third of the vote's. A connection the server has
closed (a restart, ``pg_terminate_backend``, an idle timeout) has something to read on its
socket, the server's last message or the end of the stream, while a healthy idle connection
has nothing. So the socket is polled first, without waiting, and ``SELECT 1`` runs only when
there is something to read: a dropped connection is still replaced before the request uses it.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
            quiet = not poller.poll(0)
        except (OSError, ValueError):
            return False
        # Something to read on an idle connection: a goodbye, or a notice; SELECT 1 tells which.
        return quiet or super().is_usable()
