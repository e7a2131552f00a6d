"""A progress bar for long-running management commands (seeding, backfills)."""


def progress_write(stdout, *, done: int, total: int, what: str, steps: int = 4, width: int = 30) -> None:
    """``[#####.....] done/total what``: redrawn in place on a terminal; elsewhere (logs, CI)
    a line at each of ``steps`` marks and at the end."""
    filled = width * done // total if total else width
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
    if stdout.isatty():
        stdout.write("\r" + line, ending="\n" if done == total else "")
        stdout.flush()
    elif done == total or done % max(1, total // steps) == 0:
        stdout.write(line)
