"""Stripe's test payment method tokens, as the built-in sandbox honours them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["TEST_CARDS", "ChargeBehaviour", "TestCard"]


class ChargeBehaviour(Enum):
    SUCCEEDS = "succeeds"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    declined_on_attach: bool = False
    on_charge: ChargeBehaviour = ChargeBehaviour.SUCCEEDS


TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_amex": TestCard("amex", "8431"),
    "pm_card_visa_chargeDeclined": TestCard("visa", "0002", declined_on_attach=True),
    "pm_card_chargeCustomerFail": TestCard("visa", "0341", on_charge=ChargeBehaviour.DECLINED),
    "pm_card_authenticationRequired": TestCard("visa", "3155", on_charge=ChargeBehaviour.REQUIRES_ACTION),
}
