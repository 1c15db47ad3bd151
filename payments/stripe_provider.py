"""Stripe behind the ``PaymentProvider`` interface.

Every Stripe SDK call of the gateway lives here. Requests pin one API version,
go through the SDK's ``*_async`` methods on an httpx client (never blocking
the event loop) and reach ``api_base`` when one is set (a local emulator such
as localstripe). Stripe's errors become the gateway's ``PaymentError``s.

One PaymentIntent per order: ``charge`` first looks for the order's
PaymentIntent (its ``metadata.order_id``) and only creates one when there is
none, with the order's idempotency key, so a retry after a crash returns the
first payment instead of charging twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections.abc import Mapping
from typing import Any, Final

import stripe
from stripe.params import (
    PaymentIntentCreateParams,
    PaymentIntentListParams,
    PaymentIntentSearchParams,
)

from payments.provider import (
    AttachedCard,
    CardDeclined,
    ChargeRequest,
    PaymentError,
    PaymentEventHandler,
    PaymentMethodTokenInvalid,
    PaymentOutcome,
    PaymentStatus,
    ProviderUnavailable,
)

__all__ = [
    "STRIPE_API_VERSION",
    "InvalidWebhook",
    "StripePaymentProvider",
    "order_id_of",
    "outcome_from_payment_intent",
]

STRIPE_API_VERSION: Final = "2026-10-28.endive"
"""The API version every request asks for: the one stripe 16.1.0 is generated
for, so the SDK's types describe what the API returns."""

_PAGE_SIZE: Final = 100
_DECLINED_MESSAGE: Final = "Your card was declined."

# The failure Stripe reports for an off-session charge the issuer wants the
# customer to authenticate (3-D Secure): the customer can still complete it.
_AUTHENTICATION_REQUIRED: Final = "authentication_required"

# Stripe could not be reached or did not do its part: the outcome is unknown
# and the call may be retried later.
_UNAVAILABLE_ERRORS: Final = (
    stripe.APIConnectionError,
    stripe.APIError,
    stripe.PermissionError,
    stripe.RateLimitError,
)

_log = logging.getLogger(__name__)


class InvalidWebhook(Exception):
    """A webhook delivery whose signature or body does not check out."""


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, sending the form body as ``content=``.

    stripe 16.1 passes it as ``data=<str>``, which httpx 0.28 deprecates: a
    DeprecationWarning on every POST, and under ``-W error`` a failure that the
    SDK reports as a network error.
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return [args, kwargs]


def outcome_from_payment_intent(intent: stripe.PaymentIntent) -> PaymentOutcome:
    """The gateway's view of a PaymentIntent (as returned by the API or
    re-read after a webhook)."""
    order_id = order_id_of(intent)
    status = intent.status
    error = getattr(intent, "last_payment_error", None)
    if status == "succeeded":
        return PaymentOutcome(intent.id, order_id, PaymentStatus.SUCCEEDED)
    if status in ("processing", "requires_capture"):
        return PaymentOutcome(intent.id, order_id, PaymentStatus.PROCESSING)
    if status == "canceled":
        reason = getattr(intent, "cancellation_reason", None)
        return PaymentOutcome(intent.id, order_id, PaymentStatus.CANCELED, failure_reason=reason)
    if status in ("requires_action", "requires_confirmation") or _needs_authentication(error):
        # Stripe.js completes it with the client secret (confirmCardPayment).
        return PaymentOutcome(
            intent.id,
            order_id,
            PaymentStatus.REQUIRES_ACTION,
            client_secret=intent.client_secret,
        )
    # requires_payment_method: the attempt failed (we always confirm on creation).
    return PaymentOutcome(
        intent.id,
        order_id,
        PaymentStatus.FAILED,
        failure_reason=_error_message(error) or "The payment needs another payment method.",
        declined=error is not None,
    )


class StripePaymentProvider:
    """``PaymentProvider`` backed by Stripe, or by a Stripe emulator at ``api_base``.

    Stripe reports asynchronous changes through webhooks, which the gateway's
    webhook route verifies (``verify_webhook``) and hands back (``publish``).
    """

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        api_base: str | None,
        timeout_s: float = 20,
        *,
        max_network_retries: int = 2,
    ) -> None:
        _keep_sdk_quiet()
        self._http = _HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else {},
            max_network_retries=max_network_retries,
            http_client=self._http,
        )
        # An api_base means an emulator (localstripe): it lacks some of the API
        # (see _create_intent, _find_order_intent).
        self._emulated = api_base is not None
        self._on_event: PaymentEventHandler | None = None
        self._order_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return f"<StripePaymentProvider emulated={self._emulated}>"

    async def start(self, on_event: PaymentEventHandler) -> None:
        self._on_event = on_event

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def publish(self, outcome: PaymentOutcome) -> None:
        """Hand a change learnt from a verified webhook to the handler given to ``start``."""
        if self._on_event is None:
            _log.warning(
                "stripe update for %s dropped: provider not started",
                outcome.payment_ref,
            )
            return
        await self._on_event(outcome)

    def verify_webhook(self, payload: bytes, signature_header: str | None, secret: str) -> stripe.Event:
        """The event in a webhook delivery, once its ``Stripe-Signature`` is checked."""
        try:
            return self._client.construct_event(payload, signature_header, secret)
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook("invalid signature") from error
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            # Signed by the secret's holder, but not a Stripe event.
            raise InvalidWebhook("body is not a Stripe event") from error

    async def ensure_customer(self, *, customer_id: str, name: str, existing_ref: str | None) -> str:
        if existing_ref:
            return existing_ref
        try:
            customer = await self._client.v1.customers.create_async(
                {"name": name, "metadata": {"gateway_customer_id": customer_id}}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        _log.info("stripe customer %s created for %s", customer.id, customer_id)
        return customer.id

    async def attach_payment_method(self, *, provider_customer_ref: str, token: str) -> AttachedCard:
        try:
            method = await self._client.v1.payment_methods.attach_async(token, {"customer": provider_customer_ref})
        except stripe.CardError as error:
            raise CardDeclined(_error_message(error) or _DECLINED_MESSAGE) from error
        except stripe.InvalidRequestError as error:
            raise _invalid_method(error) from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        card = getattr(method, "card", None)
        if card is None:
            await self.detach_payment_method(payment_method_ref=method.id)
            raise PaymentMethodTokenInvalid("The payment method is not a card.")
        return AttachedCard(
            provider_ref=method.id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
        )

    async def set_default_payment_method(self, *, provider_customer_ref: str, payment_method_ref: str) -> None:
        try:
            await self._client.v1.customers.update_async(
                provider_customer_ref,
                {"invoice_settings": {"default_payment_method": payment_method_ref}},
            )
        except stripe.InvalidRequestError as error:
            raise _invalid_method(error) from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error

    async def detach_payment_method(self, *, payment_method_ref: str) -> None:
        try:
            await self._client.v1.payment_methods.detach_async(payment_method_ref)
        except stripe.InvalidRequestError:
            # Unknown or already detached: forgotten either way.
            _log.info("stripe payment method %s was not attached", payment_method_ref)
        except stripe.StripeError as error:
            raise _provider_error(error) from error

    async def charge(self, request: ChargeRequest) -> PaymentOutcome:
        # Two concurrent charges of one order in this process must not both
        # miss the lookup and create two PaymentIntents.
        async with self._order_lock(request.order_id):
            try:
                existing = await self._find_order_intent(
                    order_id=request.order_id,
                    customer_ref=request.provider_customer_ref,
                )
                if existing is not None:
                    _log.info("stripe order %s already has %s", request.order_id, existing.id)
                    return outcome_from_payment_intent(existing)
                return await self._create_intent(request)
            except stripe.StripeError as error:
                raise _provider_error(error) from error

    async def retrieve(self, *, payment_ref: str | None, order_id: str) -> PaymentOutcome | None:
        try:
            intent = await self._retrieve_intent(payment_ref) if payment_ref else None
            if intent is None:
                intent = await self._find_order_intent(order_id=order_id, customer_ref=None)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return None if intent is None else outcome_from_payment_intent(intent)

    async def cancel(self, *, payment_ref: str) -> PaymentOutcome:
        try:
            intent = await self._client.v1.payment_intents.cancel_async(payment_ref)
        except stripe.InvalidRequestError:
            # Not cancelable any more (it succeeded or failed meanwhile): report where it stands.
            try:
                current = await self._retrieve_intent(payment_ref)
            except stripe.StripeError as error:
                raise _provider_error(error) from error
            if current is None:
                raise PaymentError(f"No such PaymentIntent: {payment_ref}") from None
            return outcome_from_payment_intent(current)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return outcome_from_payment_intent(intent)

    def _order_lock(self, order_id: str) -> asyncio.Lock:
        lock = self._order_locks.get(order_id)
        if lock is None:
            lock = self._order_locks[order_id] = asyncio.Lock()
        return lock

    async def _create_intent(self, request: ChargeRequest) -> PaymentOutcome:
        params: PaymentIntentCreateParams = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "customer": request.provider_customer_ref,
            "payment_method": request.payment_method_ref,
            "confirm": True,
            "off_session": True,
            "metadata": {
                "order_id": request.order_id,
                "gateway_customer_id": request.customer_id,
            },
        }
        if not self._emulated:
            # Cards only, so Stripe does not ask for a return_url (its dynamic
            # payment methods may redirect). localstripe rejects the parameter.
            params["allowed_payment_method_types"] = ["card"]
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
        except stripe.CardError as error:
            return await self._declined_outcome(error, request)
        outcome = outcome_from_payment_intent(intent)
        _log.info(
            "stripe order %s charged: %s is %s",
            request.order_id,
            intent.id,
            outcome.status,
        )
        return outcome

    async def _declined_outcome(self, error: stripe.CardError, request: ChargeRequest) -> PaymentOutcome:
        """A card error on confirmation is an outcome, not an exception."""
        # Stripe puts the PaymentIntent in the error; localstripe does not.
        intent: stripe.PaymentIntent | None = getattr(error.error, "payment_intent", None)
        if intent is None:
            intent = await self._find_order_intent(
                order_id=request.order_id, customer_ref=request.provider_customer_ref
            )
        message = _error_message(error) or _DECLINED_MESSAGE
        _log.info("stripe order %s declined (%s)", request.order_id, error.code)
        if intent is None:
            return PaymentOutcome(
                "",
                request.order_id,
                PaymentStatus.FAILED,
                failure_reason=message,
                declined=True,
            )
        outcome = outcome_from_payment_intent(intent)
        if outcome.status is PaymentStatus.FAILED:
            return dataclasses.replace(outcome, failure_reason=message, declined=True)
        return outcome

    async def _retrieve_intent(self, payment_ref: str) -> stripe.PaymentIntent | None:
        try:
            return await self._client.v1.payment_intents.retrieve_async(payment_ref)
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                return None
            raise

    async def _find_order_intent(self, *, order_id: str, customer_ref: str | None) -> stripe.PaymentIntent | None:
        """The order's PaymentIntent: among the customer's when known (a strongly
        consistent list), else by search (Stripe indexes within about a minute)."""
        try:
            if customer_ref is not None:
                intents = await self._list_intents(customer_ref)
            else:
                intents = await self._search_intents(order_id)
        except stripe.InvalidRequestError:
            if not self._emulated:
                raise
            # localstripe can neither filter lists nor search: read them all
            # (never on Stripe, where that would be the whole account).
            intents = await self._list_intents(None)
        matches = [
            intent
            for intent in intents
            if order_id_of(intent) == order_id and (customer_ref is None or _customer_ref_of(intent) == customer_ref)
        ]
        return _most_relevant(matches)

    async def _list_intents(self, customer_ref: str | None) -> list[stripe.PaymentIntent]:
        intents: list[stripe.PaymentIntent] = []
        params: PaymentIntentListParams = {"limit": _PAGE_SIZE}
        if customer_ref is not None:
            params["customer"] = customer_ref
        while True:
            page = await self._client.v1.payment_intents.list_async(params)
            intents.extend(page.data)
            if not page.has_more or not page.data:
                return intents
            params["starting_after"] = page.data[-1].id

    async def _search_intents(self, order_id: str) -> list[stripe.PaymentIntent]:
        intents: list[stripe.PaymentIntent] = []
        params: PaymentIntentSearchParams = {
            "query": f"metadata['order_id']:'{_search_literal(order_id)}'",
            "limit": _PAGE_SIZE,
        }
        while True:
            page = await self._client.v1.payment_intents.search_async(params)
            intents.extend(page.data)
            if not page.has_more or not page.next_page:
                return intents
            params["page"] = page.next_page


def _keep_sdk_quiet() -> None:
    # The SDK's telemetry writes ~/.config/stripe/telemetry_id (blocking file
    # I/O on the event loop) and reports request timings to Stripe.
    stripe.enable_telemetry = False
    # Its DEBUG records carry request and response bodies, client secrets included.
    sdk_logger = logging.getLogger("stripe")
    if sdk_logger.level == logging.NOTSET:
        sdk_logger.setLevel(logging.INFO)


def _provider_error(error: stripe.StripeError) -> PaymentError:
    if isinstance(error, stripe.AuthenticationError):
        # Its message may echo part of the key.
        return ProviderUnavailable("Stripe refused the API key.")
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return ProviderUnavailable(f"Stripe is unavailable ({type(error).__name__}).")
    if isinstance(error, stripe.CardError):
        return CardDeclined(_error_message(error) or _DECLINED_MESSAGE)
    return PaymentError(_error_message(error) or type(error).__name__)


def _invalid_method(error: stripe.InvalidRequestError) -> PaymentError:
    if error.param == "customer":
        return PaymentError(_error_message(error) or "Unknown Stripe customer.")
    return PaymentMethodTokenInvalid(_error_message(error) or "Unknown payment method.")


def _error_message(error: object) -> str | None:
    """The human message of a StripeError or of a PaymentIntent's last_payment_error."""
    if isinstance(error, stripe.StripeError):
        message: object = error.user_message
    else:
        message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else None


def _needs_authentication(error: object) -> bool:
    codes = (getattr(error, "code", None), getattr(error, "decline_code", None))
    return _AUTHENTICATION_REQUIRED in codes


def order_id_of(intent: stripe.PaymentIntent) -> str | None:
    """The gateway order a PaymentIntent was made for (its ``metadata.order_id``)."""
    metadata = getattr(intent, "metadata", None)
    if metadata is None or "order_id" not in metadata:
        return None
    value: object = metadata["order_id"]
    return value if isinstance(value, str) else None


def _customer_ref_of(intent: stripe.PaymentIntent) -> str | None:
    customer = getattr(intent, "customer", None)
    if customer is None or isinstance(customer, str):
        return customer
    customer_id: str = customer.id
    return customer_id


def _most_relevant(intents: list[stripe.PaymentIntent]) -> stripe.PaymentIntent | None:
    """There should be one; if a bug ever made more, a success wins, then the newest."""
    if not intents:
        return None
    return max(intents, key=lambda intent: (intent.status == "succeeded", intent.created))


def _search_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
