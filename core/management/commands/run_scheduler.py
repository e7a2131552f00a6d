import signal
import threading

from django.core.management.base import BaseCommand

from core.scheduler import EmbeddedScheduler


class Command(BaseCommand):
    help = "Run the periodic jobs in-process (the embedded replacement for Celery beat)."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0, help="seconds between checks")
        parser.add_argument("--once", action="store_true", help="run every job once and exit")

    def handle(self, *args, tick: float, once: bool, **options):
        scheduler = EmbeddedScheduler()
        names = ", ".join(scheduler.jobs) or "none"
        self.stdout.write(f"embedded scheduler: jobs {names}")
        if once:
            ran = scheduler.run_due()
            self.stdout.write(f"ran {len(ran)} job(s): {', '.join(ran)}")
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # finish the job in hand, then exit 0
            signal.signal(sig, lambda *_: stop.set())
        scheduler.loop(tick_seconds=tick, stop=stop)
        self.stdout.write("embedded scheduler stopped")
