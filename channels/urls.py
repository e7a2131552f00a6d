from django.urls import path

from channels.views import eleme_push_view, meituan_push_view

app_name = "channels"

urlpatterns = [
    path("push/meituan/<str:path>", meituan_push_view, name="push-meituan"),
    path("push/eleme", eleme_push_view, name="push-eleme"),
]
