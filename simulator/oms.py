"""The OMS (order management system) that issues e-voucher codes, as
docs/fulfilment.md describes the protocol.

OMS API (every request signed, see below):
    POST /oms/v1/vouchers/issue   {"order_no", "store_ref", "callback_url",
                                   "items": [{"line_no", "sku", "name", "qty", "face_value_fen"}]}
        -> 200 {"order_no", "vouchers": [{"code", "line_no", "sku", "face_value_fen", "state"}]}
        one code per unit; idempotent on order_no (the same request again answers the same
        codes; the same order_no with other items or store is 409 ORDER_NO_REUSED)
    POST /oms/v1/vouchers/redeem  {"code", "order_no", "store_ref", "redeemed_at"}
        the merchant reports a code redeemed at its own store -> 200 {"code", "state": "redeemed"};
        the same report again is 200; a code redeemed at an OMS shop is 409 ALREADY_REDEEMED,
        a void one 409 VOUCHER_VOID, an unknown one (or another order's) 404 VOUCHER_NOT_EXIST
    POST /oms/v1/vouchers/void    {"order_no"}  the order was refunded: its codes not yet
        redeemed become void -> 200 {"order_no", "voided": [codes], "vouchers": [...]}; idempotent
    GET  /oms/v1/vouchers/{code}  -> 200 {"code", "order_no", "state", "redeemed_at", ...}
Errors answer ``{"code": "PARAM_ERROR", "message": "..."}`` with a 4xx status
(401 BAD_SIGNATURE / STALE_TIMESTAMP / UNKNOWN_APP).

Signing: headers ``X-Oms-App-Key``, ``X-Oms-Timestamp`` (unix seconds), ``X-Oms-Nonce``
and ``X-Oms-Signature`` = lowercase hex HMAC-SHA256 keyed with the app secret over
``timestamp\\n nonce\\n body\\n``. A timestamp more than 300 s from the OMS clock is
refused. Redemption reports the OMS POSTs to the order's ``callback_url`` are signed
the same way and retried with backoff until the receiver answers 200.

Control API (tests and the demo):
    POST /_sim/oms/redeem {"code", "store_ref": "..."}   a customer redeems the code at
        a shop the OMS serves: the code becomes redeemed and ``voucher.redeemed`` is
        POSTed to the callback URL of its order
    GET  /_sim/oms/vouchers[?order_no=...]               every code held
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from simulator.delivery import PushDispatcher
from simulator.routing import Router, SimConfig, SimHttpError, SimRequest, SimResponse

CHINA_TZ = timezone(timedelta(hours=8))
MAX_SKEW_SECONDS = 300
ORDER_NO_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")


def oms_signature(*, secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 over timestamp + "\\n" + nonce + "\\n" + body + "\\n"."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _param_error(message: str) -> SimHttpError:
    return SimHttpError(400, {"code": "PARAM_ERROR", "message": message})


def _int(data: dict, key: str, *, low: int, high: int, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _param_error(f"{where}{key} must be an integer {low}..{high}")
    return value


def _text(data: dict, key: str, *, max_length: int, where: str = "", required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > max_length:
        raise _param_error(f"{where}{key} must be a string of 1..{max_length} characters")
    return value


class OmsSimulator:
    name = "oms"

    def __init__(self, *, config: SimConfig, dispatcher: PushDispatcher) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._orders: dict[str, dict[str, Any]] = {}  # order_no -> {"fingerprint", "callback_url", "codes"}
        self._vouchers: dict[str, dict[str, Any]] = {}  # code -> voucher

    def register(self, router: Router) -> None:
        router.add("POST", "/oms/v1/vouchers/issue", self.vouchers_issue)
        router.add("POST", "/oms/v1/vouchers/redeem", self.voucher_redeem)
        router.add("POST", "/oms/v1/vouchers/void", self.vouchers_void)
        router.add("GET", "/oms/v1/vouchers/{code}", self.voucher_query)
        router.add("POST", "/_sim/oms/redeem", self.control_redeem)
        router.add("GET", "/_sim/oms/vouchers", self.control_vouchers)

    def reset(self) -> None:
        with self._lock:
            self._orders.clear()
            self._vouchers.clear()

    # -- signing

    def _verify(self, request: SimRequest) -> None:
        headers = request.headers
        if headers.get("x-oms-app-key") != self._config.oms_app_key:
            raise SimHttpError(401, {"code": "UNKNOWN_APP", "message": "unknown X-Oms-App-Key"})
        timestamp = headers.get("x-oms-timestamp", "")
        nonce = headers.get("x-oms-nonce", "")
        signature = headers.get("x-oms-signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and nonce and signature):
            raise SimHttpError(401, {"code": "BAD_SIGNATURE", "message": "X-Oms-Timestamp, X-Oms-Nonce and "
                                                                         "X-Oms-Signature are required"})
        expected = oms_signature(secret=self._config.oms_app_secret, timestamp=timestamp, nonce=nonce,
                                 body=request.body)
        if not hmac.compare_digest(expected, signature):
            raise SimHttpError(401, {"code": "BAD_SIGNATURE", "message": "signature mismatch"})
        if abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
            raise SimHttpError(401, {"code": "STALE_TIMESTAMP", "message": "timestamp too far from the OMS clock"})

    def _signer(self, body: bytes):
        def sign(bad_signature: bool) -> dict[str, str]:
            timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
            secret = self._config.oms_app_secret + ("-wrong" if bad_signature else "")
            return {"X-Oms-App-Key": self._config.oms_app_key, "X-Oms-Timestamp": timestamp, "X-Oms-Nonce": nonce,
                    "X-Oms-Signature": oms_signature(secret=secret, timestamp=timestamp, nonce=nonce, body=body)}

        return sign

    # -- OMS API

    def vouchers_issue(self, request: SimRequest) -> SimResponse:
        self._verify(request)
        data = request.json(error=_param_error)
        if not isinstance(data, dict):
            raise _param_error("body must be a JSON object")
        order_no = _text(data, "order_no", max_length=32)
        if not ORDER_NO_RE.match(order_no):
            raise _param_error("order_no has invalid characters")
        store_ref = _text(data, "store_ref", max_length=64)
        callback_url = _text(data, "callback_url", max_length=256, required=False)
        if callback_url and not callback_url.startswith(("http://", "https://")):
            raise _param_error("callback_url must be an http(s) URL")
        items = data.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 50:
            raise _param_error("items must be a list of 1..50 objects")
        normalised = []
        for index, item in enumerate(items):
            where = f"items[{index}]."
            if not isinstance(item, dict):
                raise _param_error(f"items[{index}] must be an object")
            normalised.append({
                "line_no": _int(item, "line_no", low=1, high=999, where=where),
                "sku": _text(item, "sku", max_length=64, where=where, required=False),
                "name": _text(item, "name", max_length=120, where=where),
                "qty": _int(item, "qty", low=1, high=99, where=where),
                "face_value_fen": _int(item, "face_value_fen", low=0, high=10**9, where=where),
            })
        if len({item["line_no"] for item in normalised}) != len(normalised):
            raise _param_error("line_no must be unique")
        fingerprint = json.dumps({"store_ref": store_ref, "items": normalised}, sort_keys=True)
        with self._lock:
            existing = self._orders.get(order_no)
            if existing is not None:
                if existing["fingerprint"] != fingerprint:
                    raise SimHttpError(409, {"code": "ORDER_NO_REUSED",
                                             "message": "order_no already issued with other items or store"})
                return SimResponse(200, self._issue_answer(order_no))
            codes = []
            for item in normalised:
                for _ in range(item["qty"]):
                    code = self._new_code()
                    self._vouchers[code] = {
                        "code": code, "order_no": order_no, "store_ref": store_ref, "line_no": item["line_no"],
                        "sku": item["sku"], "face_value_fen": item["face_value_fen"], "state": "issued",
                        "issued_at": datetime.now(CHINA_TZ).isoformat(timespec="seconds"), "redeemed_at": None,
                        "redeemed_store_ref": "", "redeemed_via": "",
                    }
                    codes.append(code)
            self._orders[order_no] = {"fingerprint": fingerprint, "callback_url": callback_url, "codes": codes}
            return SimResponse(200, self._issue_answer(order_no))

    def _new_code(self) -> str:
        while True:
            code = f"EV{secrets.randbelow(10**10):010d}"
            if code not in self._vouchers:
                return code

    def _issue_answer(self, order_no: str) -> dict:
        vouchers = [self._vouchers[code] for code in self._orders[order_no]["codes"]]
        return {"order_no": order_no, "vouchers": [
            {"code": v["code"], "line_no": v["line_no"], "sku": v["sku"], "face_value_fen": v["face_value_fen"],
             "state": v["state"]} for v in vouchers]}

    def _signed_object(self, request: SimRequest) -> dict:
        self._verify(request)
        data = request.json(error=_param_error)
        if not isinstance(data, dict):
            raise _param_error("body must be a JSON object")
        return data

    def voucher_redeem(self, request: SimRequest) -> SimResponse:
        data = self._signed_object(request)
        code = _text(data, "code", max_length=32)
        order_no = _text(data, "order_no", max_length=32)
        store_ref = _text(data, "store_ref", max_length=64)
        redeemed_at = _text(data, "redeemed_at", max_length=40)
        with self._lock:
            voucher = self._vouchers.get(code)
            if voucher is None or voucher["order_no"] != order_no:
                raise SimHttpError(404, {"code": "VOUCHER_NOT_EXIST", "message": "no such voucher for this order"})
            if voucher["state"] == "void":
                raise SimHttpError(409, {"code": "VOUCHER_VOID", "message": "the voucher is void"})
            if voucher["state"] == "redeemed":
                if voucher.get("redeemed_via") != "merchant" or voucher["redeemed_store_ref"] != store_ref:
                    raise SimHttpError(409, {"code": "ALREADY_REDEEMED",
                                             "message": "the voucher was already redeemed elsewhere"})
                return SimResponse(200, {"code": code, "state": "redeemed"})  # the same report again
            voucher.update(state="redeemed", redeemed_at=redeemed_at, redeemed_store_ref=store_ref,
                           redeemed_via="merchant")
        return SimResponse(200, {"code": code, "state": "redeemed"})

    def vouchers_void(self, request: SimRequest) -> SimResponse:
        data = self._signed_object(request)
        order_no = _text(data, "order_no", max_length=32)
        with self._lock:
            order = self._orders.get(order_no)
            if order is None:
                raise SimHttpError(404, {"code": "ORDER_NOT_EXIST", "message": "no vouchers for this order"})
            voided = []
            for code in order["codes"]:
                if self._vouchers[code]["state"] == "issued":
                    self._vouchers[code]["state"] = "void"
                    voided.append(code)
            return SimResponse(200, {**self._issue_answer(order_no), "voided": voided})

    def voucher_query(self, request: SimRequest) -> SimResponse:
        self._verify(request)
        with self._lock:
            voucher = self._vouchers.get(request.params["code"])
            if voucher is None:
                raise SimHttpError(404, {"code": "VOUCHER_NOT_EXIST", "message": "no such voucher"})
            return SimResponse(200, dict(voucher))

    # -- control API

    def control_redeem(self, request: SimRequest) -> SimResponse:
        data = request.json()
        if not isinstance(data, dict) or not isinstance(data.get("code"), str):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be {\"code\": \"...\"}"})
        store_ref = data.get("store_ref", "")
        if not isinstance(store_ref, str):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "store_ref must be a string"})
        with self._lock:
            voucher = self._vouchers.get(data["code"])
            if voucher is None:
                raise SimHttpError(404, {"code": "VOUCHER_NOT_EXIST", "message": "no such voucher"})
            if voucher["state"] == "void":
                raise SimHttpError(409, {"code": "VOUCHER_VOID", "message": "the voucher is void"})
            if voucher["state"] != "issued":
                raise SimHttpError(409, {"code": "ALREADY_REDEEMED", "message": "the voucher is already redeemed"})
            voucher["state"] = "redeemed"
            voucher["redeemed_via"] = "oms"
            voucher["redeemed_at"] = datetime.now(CHINA_TZ).isoformat(timespec="seconds")
            voucher["redeemed_store_ref"] = store_ref or voucher["store_ref"]
            callback_url = self._orders[voucher["order_no"]]["callback_url"]
            report = {"event": "voucher.redeemed", "event_id": str(uuid.uuid4()), "code": voucher["code"],
                      "order_no": voucher["order_no"], "store_ref": voucher["redeemed_store_ref"],
                      "redeemed_at": voucher["redeemed_at"]}
        pushes = 0
        if callback_url:
            body = json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            pushes = self._dispatcher.push(url=callback_url, body=body, sign=self._signer(body),
                                           label="voucher.redeemed", key=report["order_no"])
        return SimResponse(200, {**report, "callbacks": pushes})

    def control_vouchers(self, request: SimRequest) -> SimResponse:
        order_no = request.query.get("order_no", "")
        with self._lock:
            vouchers = [dict(v) for v in self._vouchers.values() if not order_no or v["order_no"] == order_no]
        return SimResponse(200, {"vouchers": vouchers})
