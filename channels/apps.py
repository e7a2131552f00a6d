from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "channels"
    verbose_name = _("Channels")

    def ready(self) -> None:
        # The outbox topics this app delivers (core.outbox looks handlers up by topic).
        from accounts.store_state import STORE_STATE_TOPIC
        from catalog.services import ITEM_AVAILABILITY_TOPIC
        from channels.services import item_availability_deliver, order_action_deliver, store_state_deliver
        from core.outbox import outbox_handler_register
        from orders.services.sync import ORDER_ACTION_TOPIC

        outbox_handler_register(ORDER_ACTION_TOPIC, order_action_deliver)
        outbox_handler_register(ITEM_AVAILABILITY_TOPIC, item_availability_deliver)
        outbox_handler_register(STORE_STATE_TOPIC, store_state_deliver)
