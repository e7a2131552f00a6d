from django.urls import path

from backoffice import views

app_name = "orders"
urlpatterns = [
    path("status-map/", views.status_map_view, name="status-map"),
]
