"""The platform adapters, by platform code. Adding a platform = one module + one line here."""

from channels.adapters.base import PlatformAdapter
from channels.adapters.eleme import ElemeAdapter
from channels.adapters.meituan import MeituanAdapter

ADAPTERS: dict[str, PlatformAdapter] = {
    MeituanAdapter.platform: MeituanAdapter(),
    ElemeAdapter.platform: ElemeAdapter(),
}


def adapter_for(platform: str) -> PlatformAdapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise LookupError(f"no adapter for platform {platform!r}") from None
