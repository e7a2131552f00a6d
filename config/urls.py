from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.health import health_view
from core.views import ping_view

urlpatterns = [
    # The busiest paths first (Django tries the patterns in order): customer orders, the POS.
    path("api/v1/", include("storefront.urls")),
    path("api/pos/v1/", include("pos.urls")),
    # The back-office is the start page for now; browsers ask every site for /favicon.ico.
    path("", RedirectView.as_view(pattern_name="workspace:home", permanent=False), name="home"),
    path("workspace/", include("backoffice.workspace_urls")),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.ico"), permanent=True), name="favicon"),
    path("health/", health_view, name="health"),
    path("ping/", ping_view, name="ping"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("backoffice/", include("backoffice.urls")),
    path("api/backoffice/v1/", include("backoffice.api_urls")),
    path("channels/", include("channels.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "core.api.not_found_view"
handler400 = "core.api.bad_request_view"
