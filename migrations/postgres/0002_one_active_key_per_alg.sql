-- Replicas starting together on an empty database must not each create a signing
-- key: the second insert fails and that replica loads the first one's key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(alg) WHERE status = 'active';
