"""The ASGI application: routes, middleware, and the lifespan that owns the
database, the broadcast, the event hub and the payment provider."""
