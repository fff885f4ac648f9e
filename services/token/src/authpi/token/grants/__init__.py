"""Grants of the token endpoint, one module per grant (RFC 6749 section 4 and extensions).
No web framework here: a grant takes the request's parameters and returns a plain Struct."""
