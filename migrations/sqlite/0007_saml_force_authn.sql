-- ForceAuthn (SAML core §3.4.1): when the hub asked the IdP to authenticate afresh
-- (the downstream app sent prompt=login or max_age), the time it asked, so an
-- assertion whose AuthnInstant is older can be refused. NULL: not asked. Forward-only.
ALTER TABLE saml_requests ADD COLUMN forced_at INTEGER;
