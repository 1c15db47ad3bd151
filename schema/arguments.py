"""Arguments that many fields take, described once (GraphiQL's Docs pane
shows these descriptions beside each argument)."""

from __future__ import annotations

from typing import Annotated

import strawberry

__all__ = ["ActingCustomer", "After", "First", "OptionalActingCustomer", "OrderId", "PaymentMethodId"]

_ACTING = (
    "The customer to act for (`cst_…`): one of your partner's customers. Any other id, existing or not, is NOT_FOUND."
)

ActingCustomer = Annotated[strawberry.ID, strawberry.argument(description=_ACTING)]
OptionalActingCustomer = Annotated[
    strawberry.ID | None,
    strawberry.argument(description=_ACTING + " Omitted: every customer of your partner."),
]
First = Annotated[
    int | None,
    strawberry.argument(
        description="How many items to return: 0 to 100 (larger values return 100); default 20. Negative: "
        "BAD_USER_INPUT."
    ),
]
After = Annotated[
    str | None,
    strawberry.argument(
        description="Return the items after this cursor (a previous page's `pageInfo.endCursor`); omitted: "
        "from the start. A cursor not made by this field is BAD_USER_INPUT."
    ),
]
OrderId = Annotated[
    strawberry.ID,
    strawberry.argument(description="The order (`ord_…`); one of another customer, or no order, is NOT_FOUND."),
]
PaymentMethodId = Annotated[
    strawberry.ID,
    strawberry.argument(
        description="The acting customer's payment method (`pm_…`); any other id is the userError "
        "PAYMENT_METHOD_NOT_FOUND."
    ),
]
