from django.urls import path

from backoffice import api

urlpatterns = [
    path("orders", api.OrderListApi.as_view(), name="backoffice-order-list"),
    path("orders/<str:order_no>", api.OrderDetailApi.as_view(), name="backoffice-order-detail"),
    path("orders/<str:order_no>/transitions", api.OrderTransitionApi.as_view(), name="backoffice-order-transition"),
]
