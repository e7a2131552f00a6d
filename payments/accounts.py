"""Which merchant account a provider call uses.

A brand may have its own account at a provider (``PaymentAccount``: merchant id, app id,
API key); a brand without one, or with it disabled, uses the environment's
(settings.PAYMENT_PROVIDERS). A payment remembers the merchant id it was made to
(``PaymentTransaction.mchid``, empty = the environment's), so its query, refunds and
notifies keep using that account after the brand's settings change.

Notifies: each brand account has its own notify URL (the environment's plus
``/<brand code>``). A notify is verified with the key of the account its URL names; the
payment or refund it names must then have been made to that account (same merchant id,
same brand), else it is refused (403 ``payment_account_mismatch``) and changes nothing:
a notify signed with brand B's key about brand A's payment never counts.
"""

from __future__ import annotations

from django.conf import settings

from payments.errors import NotifyAccountMismatch, PaymentAccountMissing, PaymentAccountUnknown
from payments.models import PaymentAccount, PaymentTransaction
from payments.provider import WxPayClient, provider_client


def environment_mchid(provider: str) -> str:
    return str((settings.PAYMENT_PROVIDERS.get(provider) or {}).get("mchid", ""))


def client_for_brand(*, provider: str, brand_id: int) -> WxPayClient:
    """The account a new payment of the brand is made to: its own (enabled), else the environment's."""
    account = (PaymentAccount.objects.select_related("brand")
               .filter(brand_id=brand_id, provider=provider, enabled=True).first())
    return provider_client(provider, account=account)


def client_for_payment(payment: PaymentTransaction) -> WxPayClient:
    """The account ``payment`` was made to (for its query and refunds), enabled or not."""
    if payment.mchid:
        account = (PaymentAccount.objects.select_related("brand")
                   .filter(brand_id=payment.brand_id, provider=payment.provider, mchid=payment.mchid).first())
        if account is not None:
            return provider_client(payment.provider, account=account)
    if not payment.mchid or payment.mchid == environment_mchid(payment.provider):
        return provider_client(payment.provider)
    raise PaymentAccountMissing(detail={"out_trade_no": payment.out_trade_no, "mchid": payment.mchid})


def client_for_notify(*, provider: str, brand_code: str | None) -> tuple[WxPayClient, PaymentAccount | None]:
    """The account a notify URL names: a brand's (``/<brand code>``, enabled or not: payments
    made while it was still arrive), or the environment's."""
    if brand_code is None:
        return provider_client(provider), None
    account = (PaymentAccount.objects.select_related("brand")
               .filter(provider=provider, brand__code=brand_code).first())
    if account is None:
        raise PaymentAccountUnknown(detail={"account": brand_code[:40]})
    return provider_client(provider, account=account), account


def notify_account_check(*, client: WxPayClient, account: PaymentAccount | None,
                         payment: PaymentTransaction) -> None:
    """The verified notify's account must be the one ``payment`` was made to."""
    made_to = payment.mchid or environment_mchid(payment.provider)
    if made_to != client.mchid or (account is not None and payment.brand_id != account.brand_id):
        raise NotifyAccountMismatch(detail={"out_trade_no": payment.out_trade_no})
