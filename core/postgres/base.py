"""Django's PostgreSQL backend with the connection health check of a connection pool.

Django checks a kept connection (``CONN_HEALTH_CHECKS``) with a ``SELECT 1`` before
the first query of every request: a round trip on each request, about 0.18 ms of a
web worker's CPU per order at a flash sale (docs/benchmarks.md). Connection pools
skip that check for a connection that has just proved itself: HikariCP does not test
a connection used within the last 500 ms (``aliveBypassWindowMs``), PgBouncer tests a
server connection only after ``server_check_delay`` of idleness. This backend does
the same: a connection that served a request without a database error less than
``HEALTH_CHECK_BYPASS_SECONDS`` ago (``DB_HEALTH_CHECK_BYPASS_SECONDS``, default 0.5;
0 checks before every request as Django does) is used without the ``SELECT 1``.
What the check exists for, a connection the server or a firewall dropped while it
sat idle, is still caught: an idle connection is older than the window. A
connection that saw an error is checked at the end of its request, as before.

Used as ``ENGINE = "core.postgres"`` (config.settings sets it for PostgreSQL URLs).
"""

import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    # monotonic time at which this connection last finished a request without an error
    _proved_at: float | None = None

    def _bypass_seconds(self) -> float:
        return float(self.settings_dict.get("HEALTH_CHECK_BYPASS_SECONDS", 0) or 0)

    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and self._proved_at is not None and time.monotonic() - self._proved_at < self._bypass_seconds()):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close_if_unusable_or_obsolete(self):
        # Called at the start and the end of each request. The connection has proved itself if
        # this request used it (health_check_done) without an error other than a data or integrity
        # error, or if Django's own check after such an error passed just now.
        used = self.connection is not None and self.health_check_done and not self.errors_occurred
        super().close_if_unusable_or_obsolete()
        if self.connection is None:
            self._proved_at = None
        elif used or self.health_check_done:
            self._proved_at = time.monotonic()

    def close(self):
        self._proved_at = None
        super().close()
