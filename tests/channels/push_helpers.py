"""Platform pushes to our receivers through the Django test client, shaped and signed
as the platforms send them (the signatures by the simulator's own implementation)."""

import json
import time
import uuid
from urllib.parse import urlencode

from simulator.testing import eleme_push_signature, meituan_sig


def meituan_push(client, path, fields, *, binding, sign_with=None):
    """A Meituan push (a urlencoded form) of ``binding``'s app id, signed with its secret."""
    form = {key: str(value) for key, value in fields.items()}
    form.update(app_id=binding.app_id, timestamp=str(int(time.time())))
    form["sig"] = meituan_sig(f"http://testserver/channels/push/meituan/{path}", form, sign_with or binding.secret)
    return client.post(f"/channels/push/meituan/{path}", urlencode(form),
                       content_type="application/x-www-form-urlencoded")


def eleme_body(push_type, message, *, binding, shop_id=None) -> dict:
    """An Ele.me push body (the message a JSON string) signed with ``binding``'s secret."""
    body = {"requestId": uuid.uuid4().hex, "type": push_type, "appId": binding.app_id,
            "message": message if isinstance(message, str) else json.dumps(message, ensure_ascii=False),
            "shopId": shop_id or binding.shop_code, "timestamp": int(time.time()), "userId": 1}
    body["signature"] = eleme_push_signature(body, binding.secret)
    return body


def eleme_push(client, push_type, message, *, binding, shop_id=None):
    body = eleme_body(push_type, message, binding=binding, shop_id=shop_id)
    return client.post("/channels/push/eleme", json.dumps(body, ensure_ascii=False), content_type="application/json")
