-- The SHA-256 of each family's current refresh token as issued (refresh-family.started's
-- token_sha256, refresh-token.rotated's next_token_sha256): the refresh grant takes a token
-- equal to it as proven, without checking its signature again. NULL: not recorded (families
-- started before, or by a path that signs after its commit); such a token's signature is checked.
ALTER TABLE refresh_families ADD COLUMN current_sha256 text;
