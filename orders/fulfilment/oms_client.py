"""The OMS adapter: the only code that speaks the OMS's HTTP dialect (an edge,
like payments.provider). No state: base URL and credentials come from
``settings.OMS``. The protocol is in docs/fulfilment.md:

- ``POST {base}/oms/v1/vouchers/issue`` with a JSON body, signed with the
  headers ``X-Oms-App-Key``, ``X-Oms-Timestamp`` (unix seconds), ``X-Oms-Nonce``
  and ``X-Oms-Signature``: lowercase hex HMAC-SHA256 keyed with the app secret
  over ``timestamp + "\\n" + nonce + "\\n" + body + "\\n"``. Idempotent on our
  order number: the same request again answers the same codes.
- ``POST {base}/oms/v1/vouchers/redeem`` reports a code redeemed at our POS;
  ``POST {base}/oms/v1/vouchers/void`` voids a refunded order's codes.
- The OMS reports a redemption by POSTing ``{"event": "voucher.redeemed", ...}``
  to our callback URL, signed the same way; ``callback_verify`` checks it.

Money crosses as integer fen. The client does not retry: the outbox message that
called it is retried with backoff (and dead-lettered in the end).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from core.jsonparse import JsonInvalid, json_has_nul, json_loads_bounded

logger = logging.getLogger(__name__)

ISSUE_PATH = "/oms/v1/vouchers/issue"
REDEEM_PATH = "/oms/v1/vouchers/redeem"
VOID_PATH = "/oms/v1/vouchers/void"
# A callback whose timestamp is further than this from our clock, either way, is refused.
CALLBACK_MAX_SKEW_SECONDS = 300
REDEEMED_EVENT = "voucher.redeemed"


class OmsError(DomainError):
    """The OMS could not be reached, timed out or answered with a server error (worth a retry)."""

    code = "oms_unavailable"
    status_code = 502
    default_message = _("The voucher system is unavailable.")

    def __str__(self) -> str:  # the outbox keeps it as the message's last error: say what happened
        return f"{self.message} {json.dumps(self.detail, ensure_ascii=False, sort_keys=True, default=str)}"


class OmsRejected(OmsError):
    """The OMS refused the request (4xx): retrying the same request cannot help."""

    code = "oms_rejected"
    default_message = _("The voucher system refused the request.")


class OmsCallbackBadSignature(DomainError):
    code = "bad_signature"
    status_code = 401
    default_message = _("The callback signature is not valid.")


class OmsCallbackStale(DomainError):
    code = "stale_timestamp"
    status_code = 400
    default_message = _("The callback timestamp is too old or too far in the future.")


class OmsCallbackMalformed(DomainError):
    code = "malformed_callback"
    status_code = 400
    default_message = _("The callback is malformed.")


@dataclass(frozen=True)
class IssueItem:
    line_no: int
    sku: str
    name: str
    qty: int
    face_value: Decimal


@dataclass(frozen=True)
class IssuedVoucher:
    code: str
    line_no: int
    sku: str


@dataclass(frozen=True)
class OmsRedemption:
    """A verified ``voucher.redeemed`` callback."""

    event_id: str
    code: str
    order_no: str
    redeemed_at: datetime
    store_ref: str


def oms_signature(*, secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _fen(amount: Decimal) -> int:
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    return int((amount * 100).to_integral_exact())


class OmsClient:
    def __init__(self, *, base_url: str, app_key: str, app_secret: str, callback_url: str,
                 timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self.app_secret = app_secret
        self.callback_url = callback_url
        self.timeout = timeout

    def _headers(self, body: bytes) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        return {
            "Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
            "User-Agent": "order-center-fulfilment/1.0", "X-Oms-App-Key": self.app_key,
            "X-Oms-Timestamp": timestamp, "X-Oms-Nonce": nonce,
            "X-Oms-Signature": oms_signature(secret=self.app_secret, timestamp=timestamp, nonce=nonce, body=body),
        }

    def issue(self, *, order_no: str, store_ref: str, items: list[IssueItem]) -> list[IssuedVoucher]:
        """Ask for one code per unit of every item; the same order number again
        answers the codes issued the first time."""
        body = json.dumps({
            "order_no": order_no, "store_ref": store_ref, "callback_url": self.callback_url,
            "items": [{"line_no": i.line_no, "sku": i.sku, "name": i.name, "qty": i.qty,
                       "face_value_fen": _fen(i.face_value)} for i in items],
        }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        answer = self._post(ISSUE_PATH, body)
        vouchers = answer.get("vouchers")
        if answer.get("order_no") != order_no or not isinstance(vouchers, list):
            raise OmsError(_("The voucher system answered without vouchers."), detail={"answer": answer})
        issued = []
        for voucher in vouchers:
            code = voucher.get("code") if isinstance(voucher, dict) else None
            line_no = voucher.get("line_no") if isinstance(voucher, dict) else None
            if not isinstance(code, str) or not 1 <= len(code) <= 32 or isinstance(line_no, bool) \
                    or not isinstance(line_no, int):
                raise OmsError(_("The voucher system answered a malformed voucher."), detail={"answer": answer})
            issued.append(IssuedVoucher(code=code, line_no=line_no, sku=str(voucher.get("sku", ""))))
        return issued

    def redeem(self, *, code: str, order_no: str, store_ref: str, redeemed_at: datetime) -> dict:
        """Tell the OMS a code was redeemed at one of our stores (so it cannot be
        used at an OMS shop). The same report again is answered 200; a code the OMS
        saw redeemed elsewhere is ``OmsRejected`` with ``oms_code`` ALREADY_REDEEMED."""
        return self._post(REDEEM_PATH, self._body({"code": code, "order_no": order_no, "store_ref": store_ref,
                                                   "redeemed_at": redeemed_at.isoformat()}))

    def void(self, *, order_no: str) -> dict:
        """Void the order's codes not yet redeemed (the order was refunded). Idempotent."""
        return self._post(VOID_PATH, self._body({"order_no": order_no}))

    @staticmethod
    def _body(data: dict) -> bytes:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _post(self, path: str, body: bytes) -> dict:
        try:
            response = requests.post(f"{self.base_url}{path}", data=body, headers=self._headers(body),
                                     timeout=self.timeout)
        except requests.exceptions.Timeout as exc:
            raise OmsError(_("The voucher system did not answer in time."),
                           detail={"path": path, "timeout": self.timeout}) from exc
        except requests.exceptions.RequestException as exc:
            raise OmsError(detail={"path": path, "error": exc.__class__.__name__}) from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500:
            raise OmsError(detail={"path": path, "http_status": response.status_code})
        if response.status_code >= 400:
            answer = answer if isinstance(answer, dict) else {}
            raise OmsRejected(detail={"path": path, "http_status": response.status_code,
                                      "oms_code": answer.get("code", ""), "oms_message": answer.get("message", "")})
        if not isinstance(answer, dict):
            raise OmsError(_("The voucher system answered with something other than JSON."),
                           detail={"path": path, "http_status": response.status_code})
        return answer

    def callback_verify(self, *, headers: Mapping[str, str], body: bytes, now: datetime) -> OmsRedemption:
        """Check the signature and timestamp of an OMS callback, then parse it."""
        lowered = {str(k).lower(): v for k, v in headers.items()}
        timestamp = lowered.get("x-oms-timestamp", "")
        nonce = lowered.get("x-oms-nonce", "")
        signature = lowered.get("x-oms-signature", "")
        if not (timestamp and nonce and signature) or not timestamp.isascii() or not timestamp.isdigit():
            raise OmsCallbackMalformed(_("The X-Oms-Timestamp, X-Oms-Nonce and X-Oms-Signature headers are "
                                         "required."))
        expected = oms_signature(secret=self.app_secret, timestamp=timestamp, nonce=nonce, body=body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise OmsCallbackBadSignature()
        skew = now.timestamp() - int(timestamp)
        if abs(skew) > CALLBACK_MAX_SKEW_SECONDS:
            raise OmsCallbackStale(detail={"timestamp": int(timestamp), "skew_seconds": int(skew)})
        try:
            payload = json_loads_bounded(body)
        except JsonInvalid as exc:
            raise OmsCallbackMalformed(_("The callback body is not valid JSON.")) from exc
        if json_has_nul(payload):  # PostgreSQL stores no NUL, in text or jsonb, nor compares one
            raise OmsCallbackMalformed(_("The callback body is not valid JSON."))
        if not isinstance(payload, dict) or payload.get("event") != REDEEMED_EVENT:
            raise OmsCallbackMalformed(_("Unsupported callback event."),
                                       detail={"event": str(payload.get("event")) if isinstance(payload, dict)
                                               else ""})
        fields = {}
        for key in ("event_id", "code", "order_no", "redeemed_at"):
            value = payload.get(key)
            if not isinstance(value, str) or not value:
                raise OmsCallbackMalformed(_("The callback lacks %(field)s.") % {"field": key}, detail={"field": key})
            fields[key] = value
        try:
            redeemed_at = datetime.fromisoformat(fields["redeemed_at"])
        except ValueError:
            redeemed_at = None
        if redeemed_at is None or redeemed_at.tzinfo is None:
            raise OmsCallbackMalformed(_("The callback lacks %(field)s.") % {"field": "redeemed_at"},
                                       detail={"field": "redeemed_at"})
        return OmsRedemption(event_id=fields["event_id"], code=fields["code"], order_no=fields["order_no"],
                             redeemed_at=redeemed_at, store_ref=str(payload.get("store_ref") or "")[:64])



def oms_client() -> OmsClient:
    """The client configured from ``settings.OMS``."""
    config = settings.OMS
    return OmsClient(base_url=config["base_url"], app_key=config["app_key"], app_secret=config["app_secret"],
                     callback_url=config["callback_url"], timeout=float(config["timeout"]))
