"""Gunicorn server hooks: ``gunicorn config.wsgi:application -c python:config.gunicorn ...``.

On SIGTERM a gthread worker stops accepting and waits up to ``--graceful-timeout``
for its requests, then the master kills it with SIGKILL. A POS long poll
(``GET /api/pos/v1/events?wait=25``) would outlast that, be cut off, and the master
would log "Worker ... was sent SIGKILL! Perhaps out of memory?". So on SIGTERM each
worker also ends its long polls (orders.services.feed.feed_waits_stop): they answer
at once with what they have and the worker exits within the graceful timeout.
"""

import signal
import threading


def post_worker_init(worker):
    on_term = worker.handle_exit  # gunicorn's: stop accepting, finish the requests in flight

    def handle_term(signum, frame):
        on_term(signum, frame)
        from orders.services.feed import feed_waits_stop

        # Not in the signal handler itself: it takes the feed's lock.
        threading.Thread(target=feed_waits_stop, name="feed-waits-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, handle_term)
