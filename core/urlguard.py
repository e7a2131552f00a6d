"""URLs a tenant can type (a platform binding's base URL) point only at allowed hosts.

The server calls such a URL itself, so without a limit a brand admin could make it
call internal addresses (the cloud metadata service, the database, the admin of
another service). ``settings.OUTBOUND_URL_ALLOWED_HOSTS`` lists where it may go;
each entry is

- ``host:port``: that host on that port (``127.0.0.1:8100``, ``[::1]:8100``);
- ``host``: that host on the scheme's default port (80 for http, 443 for https);
- ``host:*``: that host on any port (for test runs, where servers take free ports).

A URL is allowed when its scheme is http or https, it carries no user name or
password, it has no whitespace, control character or backslash, and its host (and
port) match an entry exactly: no suffix matching, and an IP address only when it
is listed itself (``2130706433`` is not ``127.0.0.1``).

One check, used twice: ``OutboundUrlValidator`` on the model field (so the admin
form refuses a bad URL) and ``outbound_url_check`` at call time, before any network
call (a row can be changed without the form).
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

DEFAULT_PORTS = {"http": 80, "https": 443}
_FORBIDDEN_CHARACTERS = re.compile(r"[\s\\\x00-\x1f\x7f]")


class OutboundUrlRefused(ValueError):
    """A URL the server must not call; the message says why (without echoing secrets)."""


def _entry_allows(entry: str, *, host: str, port: int, default_port: int) -> bool:
    entry = entry.strip().lower()
    if entry.startswith("["):  # [v6]:port or [v6]
        entry_host, _bracket, rest = entry[1:].partition("]")
        entry_port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        entry_host, entry_port = entry.split(":")
    else:
        entry_host, entry_port = entry, ""
    if entry_host.rstrip(".") != host:
        return False
    if entry_port == "*":
        return True
    return port == (int(entry_port) if entry_port.isdigit() else default_port)


def outbound_url_check(url: str, *, allowed_hosts: list[str] | None = None) -> None:
    """Raise OutboundUrlRefused unless ``url`` may be called (see the module docstring)."""
    if _FORBIDDEN_CHARACTERS.search(url):
        raise OutboundUrlRefused(gettext("the URL contains whitespace, a control character or a backslash"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundUrlRefused(gettext("the URL cannot be parsed")) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundUrlRefused(gettext("only http and https URLs are allowed"))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundUrlRefused(gettext("the URL must not carry a user name or password"))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundUrlRefused(gettext("the URL has no host"))
    default_port = DEFAULT_PORTS[scheme]
    port = default_port if port is None else port
    entries = settings.OUTBOUND_URL_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts
    if not any(_entry_allows(entry, host=host, port=port, default_port=default_port) for entry in entries):
        shown = f"[{host}]" if ":" in host else host
        raise OutboundUrlRefused(gettext("the host %(host)s is not in OUTBOUND_URL_ALLOWED_HOSTS")
                                 % {"host": f"{shown}:{port}"})


@deconstructible
class OutboundUrlValidator:
    """The model field's validator: the allowed hosts are read when a value is validated."""

    message = _("This address is not allowed: %(reason)s.")
    code = "outbound_url_refused"

    def __call__(self, value: str) -> None:
        try:
            outbound_url_check(str(value))
        except OutboundUrlRefused as exc:
            raise ValidationError(self.message, code=self.code, params={"reason": str(exc)}) from None

    def __eq__(self, other) -> bool:
        return isinstance(other, OutboundUrlValidator)

    def __hash__(self) -> int:
        return hash(OutboundUrlValidator)
