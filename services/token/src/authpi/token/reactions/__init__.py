"""What the token service learns from other services' events: issuers (with their signing
keys), and the clients and agents the token endpoint authenticates."""
