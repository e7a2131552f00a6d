from django.urls import path

from backoffice import views

app_name = "workspace"
urlpatterns = [
    path("", views.workspace_home, name="home"),
    path("board/", views.board_view, name="board"),
    path("board/<int:store_id>/columns/", views.board_columns_view, name="board-columns"),
    path("board/<int:store_id>/orders/<str:order_no>/", views.board_action_view, name="board-action"),
    path("board/<int:store_id>/failed-calls/<int:message_id>/retry/", views.board_retry_view, name="board-retry"),
    path("board/<int:store_id>/mode/", views.store_mode_view, name="store-mode"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("dashboard/export/<str:kind>.<str:fmt>", views.dashboard_export_view, name="dashboard-export"),
    path("orders/", views.orders_view, name="orders"),
    path("orders/<str:order_no>/", views.order_page_view, name="order"),
    path("after-sales/", views.after_sales_view, name="after-sales"),
    path("after-sales/<int:request_id>/", views.after_sales_decide_view, name="after-sales-decide"),
    path("stores/<int:store_id>/", views.store_controls_view, name="store-controls"),
    path("stores/<int:store_id>/hours/", views.store_hours_view, name="store-hours"),
    path("stores/<int:store_id>/availability/", views.store_skus_availability_view, name="store-availability"),
]
