"""Template tags of the back-office pages (the admin's header and the workspace)."""

from django import template

from accounts.selectors import brand_name_for_user

register = template.Library()


@register.simple_tag(takes_context=True)
def brand_name(context) -> str:
    """The name of the signed-in person's brand (empty for platform operators and people of
    several brands), for the header beside "统一订单中台". Read once per request."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None:
        return ""
    cached = getattr(request, "_brand_name", None)
    if cached is None:
        cached = request._brand_name = brand_name_for_user(user=user)
    return cached
