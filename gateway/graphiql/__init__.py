"""GraphiQL served entirely by the gateway: the page (:mod:`.page`), the pinned
third-party files it loads (:mod:`.assets`, installed by :mod:`.install`) and
the operations it opens with (:mod:`.examples`)."""

from gateway.graphiql.page import ASSETS_MOUNT, GraphiQLPage

__all__ = ["ASSETS_MOUNT", "GraphiQLPage"]
