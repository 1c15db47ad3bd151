"""The billing domain: quotes, orders, payment methods, settlement, audit.

Resolvers call these functions; they talk to the database and the payment
provider and never to GraphQL.
"""
