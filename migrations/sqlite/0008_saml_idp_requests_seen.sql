-- The hub as SAML IdP: AuthnRequest ids already answered, per app, until the request
-- would be refused as too old anyway. Each request starts one sign-in (as Shibboleth's
-- message replay check): a captured request cannot be answered again. Forward-only.
CREATE TABLE saml_idp_requests_seen (
    sp_id       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (sp_id, request_id)
);
CREATE INDEX saml_idp_requests_seen_expires ON saml_idp_requests_seen(expires_at);
