"""Thin resolvers: check the caller, call the billing domain, shape the answer."""
