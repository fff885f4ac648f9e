"""The HTTP edge in front of every Core API route: authentication, the account path check,
rate limits, idempotency keys and read-your-writes."""
