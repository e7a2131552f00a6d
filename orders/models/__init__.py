from orders.models.feed import StoreFeedEvent, StoreFeedEventType
from orders.models.machines import (
    ORDER_MACHINES,
    DeliveryOrder,
    DineInOrder,
    PickupOrder,
    VoucherOrder,
    machine_class_for,
)
from orders.models.order import (
    Channel,
    DaySequence,
    DiscountPayer,
    Order,
    OrderAction,
    OrderDiscount,
    OrderEvent,
    OrderFlagKind,
    OrderLine,
    OrderReasonCode,
    OrderStatus,
    OrderType,
)
from orders.models.vouchers import VoucherCode, VoucherCodeState

__all__ = [
    "ORDER_MACHINES",
    "Channel",
    "DaySequence",
    "DeliveryOrder",
    "DineInOrder",
    "DiscountPayer",
    "Order",
    "OrderAction",
    "OrderDiscount",
    "OrderEvent",
    "OrderFlagKind",
    "OrderLine",
    "OrderReasonCode",
    "OrderStatus",
    "OrderType",
    "PickupOrder",
    "StoreFeedEvent",
    "StoreFeedEventType",
    "VoucherCode",
    "VoucherCodeState",
    "VoucherOrder",
    "machine_class_for",
]
