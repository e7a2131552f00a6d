"""Content negotiation for the API (``DEFAULT_CONTENT_NEGOTIATION_CLASS``); a module of its
own because DRF imports it while defining APIView."""

from rest_framework.negotiation import DefaultContentNegotiation


class JSONFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering the common case without parsing: a request that accepts
    anything or exactly JSON, with no ``?format=``, gets the first renderer when it is the
    JSON one, which is what the full negotiation picks then (tests/core/test_plumbing.py)."""

    _PLAIN = frozenset({None, "*/*", "application/json"})  # None: no Accept header (an empty one is a 406)

    def select_renderer(self, request, renderers, format_suffix=None):
        if (renderers and renderers[0].media_type == "application/json" and not format_suffix
                and request.META.get("HTTP_ACCEPT") in self._PLAIN
                and (not request.META.get("QUERY_STRING")
                     or self.settings.URL_FORMAT_OVERRIDE not in request.query_params)):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)
