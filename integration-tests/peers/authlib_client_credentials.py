"""A real OAuth 2.0 client that nobody here wrote, against the hub's token endpoint.

Peer: Authlib's OAuth2Session (client_credentials, client_secret_basic and
client_secret_post) and joserfc (Authlib's JOSE library) verifying the access token
against the published JWKS. Each client uses the method it registered: the other
one is refused (OIDC Core 9). Usage:
python authlib_client_credentials.py BASE BASIC_ID BASIC_SECRET POST_ID POST_SECRET
"""
import sys

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

base, basic_id, basic_secret, post_id, post_secret = sys.argv[1:6]
clients = {
    "client_secret_basic": (basic_id, basic_secret),
    "client_secret_post": (post_id, post_secret),
}
client_id, secret = basic_id, basic_secret
token_url = f"{base}/oauth2/token"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


keyset = KeySet.import_key_set(requests.get(f"{base}/oauth2/jwks", timeout=5).json())

for method, (client_id, secret) in clients.items():
    session = OAuth2Session(client_id, secret, scope="orgs.read", token_endpoint_auth_method=method)
    token = session.fetch_token(token_url, grant_type="client_credentials")
    check(token["token_type"] == "Bearer" and token["scope"] == "orgs.read", f"{method}: token issued")
    decoded = jwt.decode(token["access_token"], keyset, algorithms=["ES256", "RS256"])
    check(decoded.header.get("typ") == "at+jwt", f"{method}: typ at+jwt (RFC 9068)")
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": base},
        aud={"essential": True, "value": f"{base}/api/v1"},
        exp={"essential": True},
        client_id={"essential": True, "value": client_id},
    )
    registry.validate(decoded.claims)
    check(True, f"{method}: signature and claims valid against the JWKS")
    # The token works on the API through Authlib's session.
    resp = session.get(f"{base}/api/v1/orgs")
    check(resp.status_code == 200, f"{method}: API call with the token")

# The registered method is enforced: the right secret sent the other way is refused.
for method, other in (("client_secret_basic", "client_secret_post"), ("client_secret_post", "client_secret_basic")):
    cid, csecret = clients[method]
    wrong_way = OAuth2Session(cid, csecret, scope="orgs.read", token_endpoint_auth_method=other)
    try:
        wrong_way.fetch_token(token_url, grant_type="client_credentials")
        check(False, f"a {method} client is refused with {other}")
    except OAuthError as e:
        check(e.error == "invalid_client", f"a {method} client is refused with {other} ({e.error})")

client_id, secret = basic_id, basic_secret
bad = OAuth2Session(client_id, "not-the-secret", token_endpoint_auth_method="client_secret_basic")
try:
    bad.fetch_token(token_url, grant_type="client_credentials")
    check(False, "a wrong secret is refused")
except OAuthError as e:
    check(e.error == "invalid_client", f"a wrong secret is refused with invalid_client ({e.error})")

wide = OAuth2Session(client_id, secret, scope="audit.read", token_endpoint_auth_method="client_secret_basic")
try:
    wide.fetch_token(token_url, grant_type="client_credentials")
    check(False, "an unregistered scope is refused")
except OAuthError as e:
    check(e.error == "invalid_scope", f"an unregistered scope is refused with invalid_scope ({e.error})")
print("all checks passed")
