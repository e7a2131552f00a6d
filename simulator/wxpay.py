"""The payment provider (WeChat-Pay-like, simplified), exactly as PLATFORMS.md says.

Provider API:
    POST /v3/pay/transactions/jsapi                     -> {"prepay_id"}
    GET  /v3/pay/transactions/out-trade-no/{no}         -> {trade_state, transaction_id, amount, ...}
    POST /v3/refund/domestic/refunds                    -> {"refund_id", "status": "PROCESSING"}
    GET  /v3/refund/domestic/refunds/{out_refund_no}    -> {refund_id, status, ...}
Errors answer ``{"code": "PARAM_ERROR", "message": "..."}`` with a 4xx status.

Several merchants (the environment's default, ``wxpay_mchid`` / ``wxpay_api_key``, plus
any registered through the control API), each with its own API key; every transaction
belongs to the merchant that created it. The caller says who it is the way WeChat Pay v3
does, simplified: ``Authorization: WECHATPAY2-HMAC-SHA256 mchid="...",nonce_str="...",
timestamp="...",signature="..."`` with ``signature`` = lowercase hex HMAC-SHA256 keyed with
the merchant's API key over ``METHOD\n PATH\n QUERY\n timestamp\n nonce\n body\n``
(QUERY: the query parameters sorted by name, ``k=v`` joined with ``&``; empty when none).
A call without the header is the default merchant's (older clients). An unknown mchid or
a bad signature is 401 ``SIGN_ERROR``; creating a transaction for another ``mchid`` than
the caller's is 403 ``NO_AUTH``; another merchant's transaction or refund is not found
(404, as the provider keeps them per merchant).

Notifies (TRANSACTION.SUCCESS; REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED) are
POSTed to the notify_url with ``Wechatpay-Timestamp``, ``Wechatpay-Nonce`` and
``Wechatpay-Signature`` (lowercase hex HMAC-SHA256 keyed with the merchant API key over
``timestamp\\n nonce\\n body\\n``), retried with backoff until the receiver answers 200.

Control API (tests and the demo):
    POST /_sim/wxpay/merchants {"mchid", "api_key"}   register (or re-key) a merchant
    GET  /_sim/wxpay/merchants                        the merchants' ids (keys are not shown)
    POST /_sim/wxpay/pay {"out_trade_no", "notify": true, "times": 1}
        the customer pays; ``notify: false`` loses the notify (reconciliation must
        find the payment through the query API), ``times: 2`` sends it twice.
    POST /_sim/wxpay/refund_plan {"status": "SUCCESS", "notify": true, "count": 1}
        how the next ``count`` refunds end, ``refund_delay`` seconds after they are
        requested: SUCCESS (the default without a plan), ABNORMAL (the money could not
        go back, e.g. a closed bank card: a person handles it at the provider), CLOSED
        (the refund was closed, no money moved) or PROCESSING (never ends by itself);
        ``notify: false`` loses the notify (reconciliation must find the end through
        the refund query).
    POST /_sim/wxpay/refunds/{out_refund_no}/settle {"status": "SUCCESS", "notify": true}
        end a refund now: a PROCESSING one with any end, an ABNORMAL one with SUCCESS
        or CLOSED (what handling it by hand at the provider does).
    GET  /_sim/wxpay/transactions    every transaction and refund held
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
OUT_NO_RE = re.compile(r"^[A-Za-z0-9_\-|*@]{6,64}$")
REFUND_ENDS = ("SUCCESS", "ABNORMAL", "CLOSED")
REFUND_SUMMARIES = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


AUTH_SCHEME = "WECHATPAY2-HMAC-SHA256"
AUTH_FIELDS = ("mchid", "nonce_str", "timestamp", "signature")


def wxpay_request_signature(*, api_key: str, method: str, path: str, query: dict[str, str], timestamp: str,
                            nonce: str, body: bytes) -> str:
    """A merchant's request signature (the Authorization header, see the module docstring)."""
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    message = b"".join(part + b"\n" for part in (method.upper().encode(), path.encode(), canonical_query.encode(),
                                                   timestamp.encode(), nonce.encode(), body))
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def wxpay_signature(*, api_key: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 over timestamp + "\\n" + nonce + "\\n" + body + "\\n"."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def _now_rfc3339() -> str:
    return datetime.now(CHINA_TZ).isoformat(timespec="seconds")


def _param_error(message: str) -> SimHttpError:
    return SimHttpError(400, {"code": "PARAM_ERROR", "message": message})


def _json_object(request: SimRequest) -> dict:
    data = request.json(error=_param_error)
    if not isinstance(data, dict):
        raise _param_error("body must be a JSON object")
    return data


def _str_field(data: dict, key: str, *, max_length: int, required: bool = True, pattern: re.Pattern | None = None,
               where: str = "") -> str:
    value = data.get(key)
    name = f"{where}{key}"
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise _param_error(f"{name} is required and must be a non-empty string")
    if len(value) > max_length:
        raise _param_error(f"{name} is longer than {max_length} characters")
    if pattern is not None and not pattern.match(value):
        raise _param_error(f"{name} has invalid characters or length")
    return value


def _fen_field(data: dict, key: str, *, where: str) -> int:
    value = data.get(key)
    # bool is an int subclass; 23.5 or "2350" are the bugs this check exists for.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _param_error(f"{where}{key} must be an integer number of fen")
    if value < 1:
        raise _param_error(f"{where}{key} must be at least 1 fen")
    return value


def _amount_object(data: dict) -> dict:
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise _param_error("amount is required and must be an object")
    if amount.get("currency") != "CNY":
        raise _param_error('amount.currency must be "CNY"')
    return amount


def _notify_url(data: dict, *, required: bool) -> str:
    url = _str_field(data, "notify_url", max_length=256, required=required)
    if url and not url.startswith(("http://", "https://")):
        raise _param_error("notify_url must be an http(s) URL")
    return url


class WxPaySimulator:
    name = "wxpay"

    def __init__(self, *, config: SimConfig, dispatcher: PushDispatcher) -> None:
        self._config = config
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._transactions: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        # Armed refund outcomes, consumed one refund at a time: [{"status", "notify", "count"}].
        self._refund_plans: list[dict[str, Any]] = []
        self._merchants: dict[str, str] = {config.wxpay_mchid: config.wxpay_api_key}  # mchid -> API key

    def register(self, router: Router) -> None:
        router.add("POST", "/v3/pay/transactions/jsapi", self.transaction_create)
        router.add("GET", "/v3/pay/transactions/out-trade-no/{out_trade_no}", self.transaction_query)
        router.add("POST", "/v3/refund/domestic/refunds", self.refund_create)
        router.add("GET", "/v3/refund/domestic/refunds/{out_refund_no}", self.refund_query)
        router.add("POST", "/_sim/wxpay/pay", self.control_pay)
        router.add("GET", "/_sim/wxpay/transactions", self.control_transactions)
        router.add("POST", "/_sim/wxpay/refund_plan", self.control_refund_plan)
        router.add("POST", "/_sim/wxpay/refunds/{out_refund_no}/settle", self.control_refund_settle)
        router.add("POST", "/_sim/wxpay/merchants", self.control_merchant_register)
        router.add("GET", "/_sim/wxpay/merchants", self.control_merchants)

    def reset(self) -> None:
        with self._lock:
            self._transactions.clear()
            self._refunds.clear()
            self._refund_plans.clear()
            self._merchants = {self._config.wxpay_mchid: self._config.wxpay_api_key}

    # -- provider API

    def _caller(self, request: SimRequest) -> str:
        """The merchant making the call (see the module docstring)."""
        header = request.headers.get("authorization")
        if header is None:
            return self._config.wxpay_mchid
        scheme, _, rest = header.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        with self._lock:
            api_key = self._merchants.get(fields.get("mchid", ""))
        if scheme != AUTH_SCHEME or api_key is None or not all(fields.get(k) for k in AUTH_FIELDS):
            raise SimHttpError(401, {"code": "SIGN_ERROR", "message": "unknown merchant or malformed Authorization"})
        expected = wxpay_request_signature(api_key=api_key, method=request.method, path=request.path,
                                           query=request.query, timestamp=fields["timestamp"],
                                           nonce=fields["nonce_str"], body=request.body)
        if not hmac.compare_digest(expected, fields["signature"]):
            raise SimHttpError(401, {"code": "SIGN_ERROR", "message": "signature does not match"})
        return fields["mchid"]

    def transaction_create(self, request: SimRequest) -> SimResponse:
        caller = self._caller(request)
        data = _json_object(request)
        appid = _str_field(data, "appid", max_length=32)
        mchid = _str_field(data, "mchid", max_length=32)
        with self._lock:
            known = mchid in self._merchants
        if not known:
            raise SimHttpError(400, {"code": "MCH_NOT_EXISTS", "message": "unknown mchid"})
        if mchid != caller:
            raise SimHttpError(403, {"code": "NO_AUTH", "message": "mchid is not the calling merchant"})
        description = _str_field(data, "description", max_length=127)
        out_trade_no = _str_field(data, "out_trade_no", max_length=32, pattern=OUT_NO_RE)
        notify_url = _notify_url(data, required=True)
        amount = _amount_object(data)
        total = _fen_field(amount, "total", where="amount.")
        with self._lock:
            existing = self._transactions.get(out_trade_no)
            if existing is not None and existing["mchid"] != mchid:
                raise SimHttpError(400, {"code": "INVALID_REQUEST",
                                         "message": "out_trade_no is used by another merchant"})
            if existing is not None:
                if existing["trade_state"] != "NOTPAY":
                    raise SimHttpError(400, {"code": "ORDERPAID", "message": "the transaction is already paid"})
                if existing["amount"]["total"] != total or existing["appid"] != appid:
                    raise SimHttpError(400, {"code": "INVALID_REQUEST",
                                             "message": "out_trade_no reused with different parameters"})
                # The same request again (a client retry): same prepay_id, as the provider does.
                return SimResponse(200, {"prepay_id": existing["prepay_id"]})
            prepay_id = f"wx{time.strftime('%d%H%M%S')}{secrets.token_hex(12)}"
            self._transactions[out_trade_no] = {
                "appid": appid, "mchid": mchid, "description": description, "out_trade_no": out_trade_no,
                "notify_url": notify_url, "prepay_id": prepay_id, "trade_state": "NOTPAY",
                "transaction_id": "", "success_time": "", "amount": {"total": total, "currency": "CNY"},
            }
        return SimResponse(200, {"prepay_id": prepay_id})

    def transaction_query(self, request: SimRequest) -> SimResponse:
        caller = self._caller(request)
        mchid = request.query.get("mchid")
        if mchid is not None and mchid != caller:
            raise SimHttpError(400, {"code": "MCH_NOT_EXISTS", "message": "mchid is not the calling merchant"})
        with self._lock:
            txn = self._transactions.get(request.params["out_trade_no"])
            if txn is None or txn["mchid"] != caller:
                raise SimHttpError(404, {"code": "ORDER_NOT_EXIST", "message": "no such transaction"})
            answer = {
                "appid": txn["appid"], "mchid": txn["mchid"], "out_trade_no": txn["out_trade_no"],
                "trade_state": txn["trade_state"], "amount": dict(txn["amount"]),
            }
            if txn["transaction_id"]:
                answer["transaction_id"] = txn["transaction_id"]
                answer["success_time"] = txn["success_time"]
                answer["amount"]["payer_total"] = txn["amount"]["total"]
        return SimResponse(200, answer)

    def refund_create(self, request: SimRequest) -> SimResponse:
        caller = self._caller(request)
        data = _json_object(request)
        out_trade_no = _str_field(data, "out_trade_no", max_length=32, pattern=OUT_NO_RE)
        out_refund_no = _str_field(data, "out_refund_no", max_length=64, pattern=OUT_NO_RE)
        reason = _str_field(data, "reason", max_length=80, required=False)
        notify_url = _notify_url(data, required=False)
        amount = _amount_object(data)
        refund = _fen_field(amount, "refund", where="amount.")
        total = _fen_field(amount, "total", where="amount.")
        with self._lock:
            txn = self._transactions.get(out_trade_no)
            if txn is None or txn["mchid"] != caller:
                raise SimHttpError(404, {"code": "ORDER_NOT_EXIST", "message": "no such transaction"})
            if txn["trade_state"] not in ("SUCCESS", "REFUND"):
                raise SimHttpError(400, {"code": "INVALID_REQUEST", "message": "the transaction is not paid"})
            if total != txn["amount"]["total"]:
                raise _param_error("amount.total does not match the transaction")
            existing = self._refunds.get(out_refund_no)
            if existing is not None:
                if existing["out_trade_no"] != out_trade_no or existing["amount"]["refund"] != refund:
                    raise SimHttpError(400, {"code": "INVALID_REQUEST",
                                             "message": "out_refund_no reused with different parameters"})
                return SimResponse(200, self._refund_answer(existing))
            # A closed refund moved no money; an abnormal one is still the merchant's to finish.
            refunded = sum(r["amount"]["refund"] for r in self._refunds.values()
                           if r["out_trade_no"] == out_trade_no and r["status"] != "CLOSED")
            if refunded + refund > total:
                raise SimHttpError(403, {"code": "NOT_ENOUGH", "message": "refund exceeds the amount left"})
            record = {
                "mchid": caller, "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "reason": reason,
                "notify_url": notify_url, "refund_id": f"50{secrets.randbelow(10**26):026d}",
                "transaction_id": txn["transaction_id"], "status": "PROCESSING", "success_time": "",
                "amount": {"refund": refund, "total": total, "currency": "CNY"},
            }
            self._refunds[out_refund_no] = record
            answer = self._refund_answer(record)
            plan = self._refund_plan_take()
        if plan["status"] != "PROCESSING":
            self._dispatcher.later(self._config.refund_delay, lambda: self._refund_settle(
                out_refund_no, status=plan["status"], notify=plan["notify"]))
        return SimResponse(200, answer)

    def _refund_plan_take(self) -> dict[str, Any]:
        """The outcome of the refund being created (caller holds the lock)."""
        if not self._refund_plans:
            return {"status": "SUCCESS", "notify": True}
        plan = self._refund_plans[0]
        plan["count"] -= 1
        if plan["count"] <= 0:
            self._refund_plans.pop(0)
        return {"status": plan["status"], "notify": plan["notify"]}

    def refund_query(self, request: SimRequest) -> SimResponse:
        caller = self._caller(request)
        with self._lock:
            record = self._refunds.get(request.params["out_refund_no"])
            if record is None or record["mchid"] != caller:
                raise SimHttpError(404, {"code": "RESOURCE_NOT_EXISTS", "message": "no such refund"})
            return SimResponse(200, self._refund_answer(record))

    @staticmethod
    def _refund_answer(record: dict) -> dict:
        return {
            "refund_id": record["refund_id"], "out_refund_no": record["out_refund_no"],
            "out_trade_no": record["out_trade_no"], "transaction_id": record["transaction_id"],
            "status": record["status"], "success_time": record["success_time"], "amount": dict(record["amount"]),
        }

    def _refund_settle(self, out_refund_no: str, *, status: str, notify: bool) -> bool:
        """End a refund (PROCESSING -> any end; ABNORMAL -> SUCCESS or CLOSED) and
        send its notify unless ``notify`` is off. False when it cannot end so."""
        with self._lock:
            record = self._refunds.get(out_refund_no)
            allowed = {"PROCESSING": REFUND_ENDS, "ABNORMAL": ("SUCCESS", "CLOSED")}
            if record is None or status not in allowed.get(record["status"], ()):
                return False
            record["status"] = status
            if status == "SUCCESS":
                record["success_time"] = _now_rfc3339()
                self._transactions[record["out_trade_no"]]["trade_state"] = "REFUND"
            resource = {
                "mchid": record["mchid"], "out_trade_no": record["out_trade_no"],
                "transaction_id": record["transaction_id"], "out_refund_no": out_refund_no,
                "refund_id": record["refund_id"], "refund_status": status,
                "amount": {"total": record["amount"]["total"], "refund": record["amount"]["refund"],
                           "payer_total": record["amount"]["total"], "payer_refund": record["amount"]["refund"]},
            }
            if status == "SUCCESS":
                resource["success_time"] = record["success_time"]
            notify_url = record["notify_url"]
        if notify and notify_url:
            self._notify(url=notify_url, event_type=f"REFUND.{status}", summary=REFUND_SUMMARIES[status],
                         resource=resource, mchid=record["mchid"])
        return True

    # -- notifies

    def _notify(self, *, url: str, event_type: str, summary: str, resource: dict, mchid: str,
                times: int = 1) -> int:
        body = json.dumps(
            {"id": str(uuid.uuid4()), "create_time": _now_rfc3339(), "event_type": event_type,
             "resource_type": "plain", "summary": summary, "resource": resource},
            ensure_ascii=False, separators=(",", ":"),
        ).encode("utf-8")
        copies = 0
        for _ in range(times):
            copies += self._dispatcher.push(url=url, body=body, sign=self._signer(body, mchid), label=event_type)
        return copies

    def _signer(self, body: bytes, mchid: str):
        """Notifies are signed with the key of the merchant the transaction belongs to."""
        with self._lock:
            api_key = self._merchants.get(mchid, self._config.wxpay_api_key)

        def sign(bad_signature: bool) -> dict[str, str]:
            timestamp = str(int(time.time()))
            nonce = secrets.token_hex(16)
            key = api_key + ("-wrong" if bad_signature else "")
            return {
                "Wechatpay-Timestamp": timestamp,
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": wxpay_signature(api_key=key, timestamp=timestamp, nonce=nonce, body=body),
            }

        return sign

    # -- control API

    def control_pay(self, request: SimRequest) -> SimResponse:
        data = request.json()
        if not isinstance(data, dict):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be a JSON object"})
        out_trade_no = data.get("out_trade_no")
        send_notify = data.get("notify", True)
        times = data.get("times", 1)
        if not isinstance(send_notify, bool) or isinstance(times, bool) or not isinstance(times, int) \
                or not 1 <= times <= 10:
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "notify must be a bool, times 1..10"})
        with self._lock:
            txn = self._transactions.get(out_trade_no) if isinstance(out_trade_no, str) else None
            if txn is None:
                raise SimHttpError(404, {"code": "ORDER_NOT_EXIST", "message": "no such transaction"})
            if txn["trade_state"] != "NOTPAY":
                raise SimHttpError(409, {"code": "ORDERPAID", "message": "the transaction is already paid"})
            txn["trade_state"] = "SUCCESS"
            txn["transaction_id"] = f"4200{secrets.randbelow(10**24):024d}"
            txn["success_time"] = _now_rfc3339()
            total = txn["amount"]["total"]
            resource = {
                "appid": txn["appid"], "mchid": txn["mchid"], "out_trade_no": out_trade_no,
                "transaction_id": txn["transaction_id"], "trade_type": "JSAPI", "trade_state": "SUCCESS",
                "success_time": txn["success_time"],
                "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
            }
            notify_url = txn["notify_url"]
        notifies = self._notify(url=notify_url, event_type="TRANSACTION.SUCCESS", summary="支付成功",
                                resource=resource, mchid=txn["mchid"], times=times) if send_notify else 0
        return SimResponse(200, {"out_trade_no": out_trade_no, "transaction_id": resource["transaction_id"],
                                 "trade_state": "SUCCESS", "notifies": notifies})

    def control_refund_plan(self, request: SimRequest) -> SimResponse:
        data = request.json()
        if not isinstance(data, dict):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be a JSON object"})
        status, notify, count = data.get("status"), data.get("notify", True), data.get("count", 1)
        if status not in (*REFUND_ENDS, "PROCESSING") or not isinstance(notify, bool) \
                or isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "status SUCCESS, ABNORMAL, CLOSED or "
                                                                       "PROCESSING; notify a bool; count 1..100"})
        plan = {"status": status, "notify": notify, "count": count}
        with self._lock:
            self._refund_plans.append(dict(plan))
        return SimResponse(201, {"plan": plan})

    def control_refund_settle(self, request: SimRequest) -> SimResponse:
        data = request.json() if request.body else {}
        if not isinstance(data, dict):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be a JSON object"})
        status, notify = data.get("status"), data.get("notify", True)
        if status not in REFUND_ENDS or not isinstance(notify, bool):
            raise SimHttpError(400, {"code": "BAD_REQUEST",
                                     "message": "status SUCCESS, ABNORMAL or CLOSED; notify a bool"})
        out_refund_no = request.params["out_refund_no"]
        with self._lock:
            record = self._refunds.get(out_refund_no)
            if record is None:
                raise SimHttpError(404, {"code": "RESOURCE_NOT_EXISTS", "message": "no such refund"})
            current = record["status"]
        if not self._refund_settle(out_refund_no, status=status, notify=notify):
            raise SimHttpError(409, {"code": "INVALID_REQUEST",
                                     "message": f"a {current} refund cannot become {status}"})
        with self._lock:
            return SimResponse(200, self._refund_answer(self._refunds[out_refund_no]))

    def control_merchant_register(self, request: SimRequest) -> SimResponse:
        data = request.json()
        if not isinstance(data, dict):
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "body must be a JSON object"})
        mchid, api_key = data.get("mchid"), data.get("api_key")
        if not isinstance(mchid, str) or not re.fullmatch(r"\d{6,32}", mchid) \
                or not isinstance(api_key, str) or not 1 <= len(api_key) <= 128:
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": "mchid (6-32 digits) and api_key required"})
        with self._lock:
            self._merchants[mchid] = api_key
            mchids = sorted(self._merchants)
        return SimResponse(201, {"mchid": mchid, "merchants": mchids})

    def control_merchants(self, request: SimRequest) -> SimResponse:
        with self._lock:
            return SimResponse(200, {"merchants": sorted(self._merchants)})

    def control_transactions(self, request: SimRequest) -> SimResponse:
        with self._lock:
            return SimResponse(200, {"transactions": list(self._transactions.values()),
                                     "refunds": list(self._refunds.values())})
