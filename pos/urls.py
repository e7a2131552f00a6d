"""POS API v1, mounted at /api/pos/v1/ (CONTRACTS.md)."""

from django.urls import path

from pos import api

urlpatterns = [
    path("events", api.EventsApi.as_view(), name="pos-events"),
    path("events/ack", api.EventsAckApi.as_view(), name="pos-events-ack"),
    path("orders", api.OrderListApi.as_view(), name="pos-orders"),
    path("orders/<str:order_no>", api.OrderDetailApi.as_view(), name="pos-order-detail"),
    path("orders/<str:order_no>/accept", api.OrderAcceptApi.as_view(), name="pos-order-accept"),
    path("orders/<str:order_no>/reject", api.OrderRejectApi.as_view(), name="pos-order-reject"),
    path("orders/<str:order_no>/ready", api.OrderReadyApi.as_view(), name="pos-order-ready"),
    path("orders/<str:order_no>/dispatch", api.OrderDispatchApi.as_view(), name="pos-order-dispatch"),
    path("orders/<str:order_no>/complete", api.OrderCompleteApi.as_view(), name="pos-order-complete"),
    path("stock/sales", api.StockSalesApi.as_view(), name="pos-stock-sales"),
    path("stock/availability", api.StockAvailabilityApi.as_view(), name="pos-stock-availability"),
    path("vouchers/redeem", api.VoucherRedeemApi.as_view(), name="pos-voucher-redeem"),
    path("menu", api.MenuApi.as_view(), name="pos-menu"),
    path("store", api.StoreApi.as_view(), name="pos-store"),
    path("after-sales", api.AfterSalesListApi.as_view(), name="pos-after-sales"),
    path("after-sales/<int:request_id>/approve", api.AfterSalesApproveApi.as_view(), name="pos-after-sales-approve"),
    path("after-sales/<int:request_id>/reject", api.AfterSalesRejectApi.as_view(), name="pos-after-sales-reject"),
    path("after-sales/<int:request_id>/goods-received", api.AfterSalesGoodsReceivedApi.as_view(),
         name="pos-after-sales-goods-received"),
]
