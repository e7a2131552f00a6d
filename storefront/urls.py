from django.urls import path

from storefront import api
from storefront.oms_callback import OmsCallbackApi

urlpatterns = [
    path("orders", api.OrderListCreateApi.as_view(), name="customer-orders"),  # the busiest first
    path("auth/code", api.LoginCodeApi.as_view(), name="customer-login-code"),
    path("auth/token", api.TokenApi.as_view(), name="customer-token"),
    path("stores/<int:store_id>/menu", api.MenuApi.as_view(), name="customer-menu"),
    path("orders/quote", api.QuoteApi.as_view(), name="customer-order-quote"),
    path("orders/<str:order_no>", api.OrderDetailApi.as_view(), name="customer-order-detail"),
    path("orders/<str:order_no>/pay", api.OrderPayApi.as_view(), name="customer-order-pay"),
    path("orders/<str:order_no>/cancel", api.OrderCancelApi.as_view(), name="customer-order-cancel"),
    path("orders/<str:order_no>/contact", api.OrderContactApi.as_view(), name="customer-order-contact"),
    path("orders/<str:order_no>/refunds", api.OrderRefundsApi.as_view(), name="customer-order-refunds"),
    path("orders/<str:order_no>/refunds/<int:request_id>/withdraw", api.OrderRefundWithdrawApi.as_view(),
         name="customer-order-refund-withdraw"),
    path("payments/notify/<str:provider>", api.PaymentNotifyApi.as_view(), name="payment-notify"),
    path("payments/notify/<str:provider>/<slug:account>", api.PaymentAccountNotifyApi.as_view(),
         name="payment-notify-account"),
    path("fulfilment/oms/callback", OmsCallbackApi.as_view(), name="oms-callback"),
]
