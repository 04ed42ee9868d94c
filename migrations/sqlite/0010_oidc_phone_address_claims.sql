-- Issue 14 (OIDC details). Renumber freely at merge: nothing refers to the number.
-- Phone and postal address in the directory, released as the OpenID Connect
-- phone_number, phone_number_verified and address claims (OIDC Core §5.1, §5.4).
-- The address is JSON text (street, locality, region, postal code, country).
ALTER TABLE people ADD COLUMN phone_number TEXT;
ALTER TABLE people ADD COLUMN phone_number_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE people ADD COLUMN address TEXT;
-- The claims request parameter (OIDC Core §5.5) of the authorization request a
-- grant came from, as JSON text: refreshed ID tokens and UserInfo honour it too.
ALTER TABLE grants ADD COLUMN claims TEXT;
