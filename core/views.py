from django.http import JsonResponse


def ping_view(request):
    """A bare JSON answer with no database access: the baseline of the HTTP benchmarks."""
    return JsonResponse({"ok": True})
