"""Provider adapters: the only code that speaks a payment provider's HTTP dialect.

Money crosses this edge as integer fen on the wire and ``Decimal`` yuan inside
(never float): ``yuan_to_fen(Decimal("23.50")) == 2350``. The shapes follow
docs PLATFORMS.md, "Payment provider (WeChat-Pay-like, simplified)".

Retries: create and refund are idempotent at the provider (same out_trade_no /
out_refund_no), so the client retries an HTTP 5xx or a refused connection
``retries`` times. It never retries a read timeout: the caller's time is spent,
the request may have taken effect, and reconciliation will find out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from core.jsonparse import JsonInvalid, json_has_nul, json_loads_bounded
from payments.errors import (
    NotifyBadSignature,
    NotifyMalformed,
    NotifyStaleTimestamp,
    PaymentProviderError,
    PaymentProviderRejected,
    PaymentProviderTimeout,
    UnknownPaymentProvider,
)

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
# The request signature scheme of the Authorization header (WxPayClient.authorization).
AUTH_SCHEME = "WECHATPAY2-HMAC-SHA256"
# A notify whose timestamp is further than this from our clock, either way, is refused.
NOTIFY_MAX_SKEW_SECONDS = 300

# NotifyEvent.kind values (provider-neutral).
PAYMENT_SUCCEEDED = "payment_succeeded"
REFUND_SUCCEEDED = "refund_succeeded"
REFUND_FAILED = "refund_failed"


def yuan_to_fen(amount: Decimal | int) -> int:
    """Exact yuan -> fen. Floats are a programming error; more than 2 places is bad input."""
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    amount = Decimal(amount)
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise InvalidInput(_("An amount has at most two decimal places."), code="invalid_amount",
                           detail={"amount": str(amount)})
    return int((amount * 100).to_integral_exact())


def fen_to_yuan(fen: int) -> Decimal:
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    return Decimal(fen).scaleb(-2).quantize(CENT)


@dataclass(frozen=True)
class QueryResult:
    trade_state: str  # the provider's word: NOTPAY, SUCCESS, REFUND, CLOSED, ORDER_NOT_EXIST...
    paid: bool  # money was taken (SUCCESS, or REFUND: paid then refunded)
    transaction_id: str = ""
    amount_fen: int | None = None
    paid_at: datetime | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RefundAnswer:
    refund_id: str
    status: str  # the provider's word: PROCESSING, SUCCESS, ABNORMAL, CLOSED
    succeeded_at: datetime | None = None
    refund_fen: int | None = None  # amount.refund, when the answer carries it
    raw: dict = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def abnormal(self) -> bool:
        """The money could not go back (a closed card...): finished by hand at the provider."""
        return self.status == "ABNORMAL"

    @property
    def closed(self) -> bool:
        """Closed without moving money."""
        return self.status == "CLOSED"


@dataclass(frozen=True)
class NotifyEvent:
    """A verified provider notify, normalised: ``kind`` is one of the module constants."""

    event_id: str
    kind: str
    event_type: str
    payload: dict
    out_trade_no: str = ""
    transaction_id: str = ""
    amount_fen: int | None = None
    paid_at: datetime | None = None
    out_refund_no: str = ""
    refund_id: str = ""
    refund_succeeded_at: datetime | None = None

    @property
    def refund_abnormal(self) -> bool:
        """A failed refund the provider holds as abnormal (REFUND.ABNORMAL), not closed."""
        return self.event_type == "REFUND.ABNORMAL"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _hmac_hex(api_key: str, *parts: bytes) -> str:
    return hmac.new(api_key.encode(), b"".join(part + b"\n" for part in parts), hashlib.sha256).hexdigest()


class WxPayClient:
    """WeChat-Pay-like v3 API (simplified, see PLATFORMS.md)."""

    name = "wxpay"

    def __init__(self, *, base_url: str, appid: str, mchid: str, api_key: str, notify_url: str,
                 timeout: float = 5.0, retries: int = 2, retry_backoff: float = 0.2) -> None:
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self.mchid = mchid
        self.api_key = api_key
        self.notify_url = notify_url
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff

    # -- outgoing calls

    def prepay_create(self, *, out_trade_no: str, amount: Decimal, description: str, notify_url: str) -> str:
        """Create the provider transaction; returns its prepay_id (the same one on a repeat)."""
        answer = self._call("POST", "/v3/pay/transactions/jsapi", body={
            "appid": self.appid, "mchid": self.mchid, "description": description, "out_trade_no": out_trade_no,
            "notify_url": notify_url, "amount": {"total": yuan_to_fen(amount), "currency": "CNY"},
        })
        prepay_id = answer.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PaymentProviderError(_("The payment provider answered without a prepay_id."),
                                       detail={"answer": answer})
        return prepay_id

    def jsapi_params(self, *, prepay_id: str) -> dict[str, str]:
        """What the mini-program passes to wx.requestPayment.

        paySign is the HMAC-SHA256 (lowercase hex, merchant API key) of
        appId, timeStamp, nonceStr and package, each followed by "\\n" (the
        simplified provider has no merchant RSA key, so signType is HMAC-SHA256).
        """
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
            "signType": "HMAC-SHA256",
            "paySign": _hmac_hex(self.api_key, self.appid.encode(), timestamp.encode(), nonce.encode(),
                                 package.encode()),
        }

    def create_jsapi(self, *, out_trade_no: str, amount: Decimal, description: str,
                     notify_url: str | None = None) -> dict[str, str]:
        prepay_id = self.prepay_create(out_trade_no=out_trade_no, amount=amount, description=description,
                                       notify_url=notify_url or self.notify_url)
        return self.jsapi_params(prepay_id=prepay_id)

    def query(self, *, out_trade_no: str) -> QueryResult:
        try:
            answer = self._call("GET", f"/v3/pay/transactions/out-trade-no/{out_trade_no}",
                                params={"mchid": self.mchid})
        except PaymentProviderRejected as exc:
            if exc.detail.get("provider_code") == "ORDER_NOT_EXIST":
                return QueryResult(trade_state="ORDER_NOT_EXIST", paid=False, raw=exc.detail)
            raise
        trade_state = answer.get("trade_state")
        if not isinstance(trade_state, str):
            raise PaymentProviderError(_("The payment provider answered without a trade_state."),
                                       detail={"answer": answer})
        amount = answer.get("amount") if isinstance(answer.get("amount"), dict) else {}
        total = amount.get("total")
        return QueryResult(
            trade_state=trade_state, paid=trade_state in ("SUCCESS", "REFUND"),
            transaction_id=answer.get("transaction_id") or "",
            amount_fen=total if isinstance(total, int) and not isinstance(total, bool) else None,
            paid_at=_parse_time(answer.get("success_time")), raw=answer,
        )

    def refund(self, *, out_trade_no: str, out_refund_no: str, amount: Decimal, total: Decimal, reason: str,
               notify_url: str | None = None) -> RefundAnswer:
        answer = self._call("POST", "/v3/refund/domestic/refunds", body={
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "reason": reason,
            "notify_url": notify_url or self.notify_url,
            "amount": {"refund": yuan_to_fen(amount), "total": yuan_to_fen(total), "currency": "CNY"},
        })
        return self._refund_answer(answer)

    def refund_query(self, *, out_refund_no: str) -> RefundAnswer | None:
        """The provider's refund record; None when it has none (404 RESOURCE_NOT_EXISTS:
        the refund request never reached it)."""
        try:
            answer = self._call("GET", f"/v3/refund/domestic/refunds/{out_refund_no}")
        except PaymentProviderRejected as exc:
            if exc.detail.get("http_status") == 404 and exc.detail.get("provider_code") == "RESOURCE_NOT_EXISTS":
                return None
            raise
        return self._refund_answer(answer)

    @staticmethod
    def _refund_answer(answer: dict) -> RefundAnswer:
        refund_id, status = answer.get("refund_id"), answer.get("status")
        if not isinstance(refund_id, str) or not refund_id or not isinstance(status, str):
            raise PaymentProviderError(_("The payment provider answered without a refund_id."),
                                       detail={"answer": answer})
        amount = answer.get("amount") if isinstance(answer.get("amount"), dict) else {}
        refund_fen = amount.get("refund")
        return RefundAnswer(refund_id=refund_id, status=status, succeeded_at=_parse_time(answer.get("success_time")),
                            refund_fen=refund_fen if isinstance(refund_fen, int) and not isinstance(refund_fen, bool)
                            else None, raw=answer)

    def authorization(self, *, method: str, path: str, query: Mapping[str, str], body: bytes) -> str:
        """The merchant's ``Authorization`` header, WeChat Pay v3 style (simplified: an
        HMAC-SHA256 with the API key over method, path, sorted query, timestamp, nonce
        and body, each followed by a newline): it tells the provider which merchant calls."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        canonical_query = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
        signature = _hmac_hex(self.api_key, method.upper().encode(), path.encode(), canonical_query.encode(),
                              timestamp.encode(), nonce.encode(), body)
        return (f'{AUTH_SCHEME} mchid="{self.mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
                f'signature="{signature}"')

    def _call(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None) -> dict:
        url = f"{self.base_url}{path}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": "order-center-payments/1.0"}
        if data is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        attempts = 1 + max(self.retries, 0)
        for attempt in range(1, attempts + 1):
            headers["Authorization"] = self.authorization(method=method, path=path, query=params or {},
                                                          body=data or b"")
            try:
                response = requests.request(method, url, data=data, params=params, headers=headers,
                                            timeout=self.timeout)
            except requests.exceptions.ReadTimeout as exc:
                logger.warning("wxpay %s %s timed out after %ss", method, path, self.timeout)
                raise PaymentProviderTimeout(detail={"path": path, "timeout": self.timeout}) from exc
            except requests.exceptions.ConnectionError as exc:
                failure: str = f"connection failed: {exc.__class__.__name__}"
            except requests.exceptions.RequestException as exc:
                raise PaymentProviderError(detail={"path": path, "error": exc.__class__.__name__}) from exc
            else:
                if response.status_code < 500:
                    return self._decode(response, path)
                failure = f"HTTP {response.status_code}"
            logger.warning("wxpay %s %s attempt %s/%s: %s", method, path, attempt, attempts, failure)
            if attempt < attempts:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
        raise PaymentProviderError(detail={"path": path, "error": failure, "attempts": attempts})

    @staticmethod
    def _decode(response: requests.Response, path: str) -> dict:
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400:
            answer = answer if isinstance(answer, dict) else {}
            raise PaymentProviderRejected(
                answer.get("message") or PaymentProviderRejected.default_message,
                detail={"path": path, "http_status": response.status_code,
                        "provider_code": answer.get("code", ""), "provider_message": answer.get("message", "")},
            )
        if not isinstance(answer, dict):
            raise PaymentProviderError(_("The payment provider answered with something other than JSON."),
                                       detail={"path": path, "http_status": response.status_code})
        return answer

    # -- incoming notifies

    def notify_verify(self, *, headers: Mapping[str, str], body: bytes, now: datetime) -> NotifyEvent:
        """Check the signature and the timestamp of a notify, then parse it.

        Raises NotifyMalformed (missing headers, bad JSON, missing fields),
        NotifyBadSignature, or NotifyStaleTimestamp (more than
        NOTIFY_MAX_SKEW_SECONDS from ``now``, in the past or in the future).
        """
        lowered = {str(k).lower(): v for k, v in headers.items()}
        timestamp = lowered.get("wechatpay-timestamp", "")
        nonce = lowered.get("wechatpay-nonce", "")
        signature = lowered.get("wechatpay-signature", "")
        if not (timestamp and nonce and signature):
            raise NotifyMalformed(_("The Wechatpay-Timestamp, Wechatpay-Nonce and Wechatpay-Signature headers "
                                    "are required."))
        if not timestamp.isascii() or not timestamp.isdigit():
            raise NotifyMalformed(_("Wechatpay-Timestamp must be a unix time in seconds."))
        expected = _hmac_hex(self.api_key, timestamp.encode(), nonce.encode(), body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise NotifyBadSignature()
        skew = now.timestamp() - int(timestamp)
        if abs(skew) > NOTIFY_MAX_SKEW_SECONDS:
            raise NotifyStaleTimestamp(detail={"timestamp": int(timestamp), "skew_seconds": int(skew)})
        return self._notify_parse(body)

    @staticmethod
    def _notify_parse(body: bytes) -> NotifyEvent:
        try:
            payload = json_loads_bounded(body)
        except JsonInvalid as exc:
            raise NotifyMalformed(_("The notification body is not valid JSON.")) from exc
        if json_has_nul(payload):  # PostgreSQL stores no NUL, in text or jsonb, nor compares one
            raise NotifyMalformed(_("The notification body is not valid JSON."))
        if not isinstance(payload, dict) or not isinstance(payload.get("resource"), dict):
            raise NotifyMalformed(_("The notification has no resource object."))
        event_id, event_type, resource = payload.get("id"), payload.get("event_type"), payload["resource"]

        def text(key: str) -> str:
            value = resource.get(key)
            if not isinstance(value, str) or not value:
                raise NotifyMalformed(_("The notification resource lacks %(field)s.") % {"field": key},
                                      detail={"field": key})
            return value

        if not isinstance(event_id, str) or not event_id:
            raise NotifyMalformed(_("The notification has no id."))
        if event_type == "TRANSACTION.SUCCESS":
            amount = resource.get("amount")
            total = amount.get("total") if isinstance(amount, dict) else None
            paid_at = _parse_time(resource.get("success_time"))
            if resource.get("trade_state") != "SUCCESS" or isinstance(total, bool) or not isinstance(total, int) \
                    or paid_at is None:
                raise NotifyMalformed(_("The payment notification lacks trade_state, amount.total or "
                                        "success_time."))
            return NotifyEvent(event_id=event_id, kind=PAYMENT_SUCCEEDED, event_type=event_type, payload=payload,
                               out_trade_no=text("out_trade_no"), transaction_id=text("transaction_id"),
                               amount_fen=total, paid_at=paid_at)
        if event_type in ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"):
            succeeded = event_type == "REFUND.SUCCESS"
            if succeeded and resource.get("refund_status") != "SUCCESS":
                raise NotifyMalformed(_("The refund notification lacks refund_status SUCCESS."))
            return NotifyEvent(event_id=event_id, kind=REFUND_SUCCEEDED if succeeded else REFUND_FAILED,
                               event_type=event_type, payload=payload, out_trade_no=resource.get("out_trade_no", ""),
                               out_refund_no=text("out_refund_no"), refund_id=text("refund_id"),
                               refund_succeeded_at=_parse_time(resource.get("success_time")))
        raise NotifyMalformed(_("Unsupported notification event type."), detail={"event_type": str(event_type)})



def provider_client(provider: str, *, account=None) -> WxPayClient:
    """The client for ``provider``: the environment's merchant account
    (settings.PAYMENT_PROVIDERS), or a brand's own ``account`` (payments.PaymentAccount:
    its merchant id, app id and key; notifies to the environment's notify URL plus
    ``/<brand code>``). See payments.accounts for which one a call uses."""
    config = settings.PAYMENT_PROVIDERS.get(provider)
    if provider != WxPayClient.name or config is None:
        raise UnknownPaymentProvider(detail={"provider": str(provider)})
    if account is None:
        appid, mchid, api_key, notify_url = config["appid"], config["mchid"], config["api_key"], config["notify_url"]
    else:
        appid, mchid, api_key = account.appid, account.mchid, account.api_key
        notify_url = f"{config['notify_url'].rstrip('/')}/{account.brand.code}"
    return WxPayClient(base_url=config["base_url"], appid=appid, mchid=mchid, api_key=api_key,
                       notify_url=notify_url, timeout=float(config["timeout"]), retries=int(config["retries"]))
