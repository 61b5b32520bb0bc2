"""Authentication: the OAuth token endpoint, signing keys and JWKS, bearer validation."""
