"""Second factors at the hub, driven over HTTP by third-party peers.

Peers: PyOTP (an authenticator app's TOTP, RFC 6238, written by others) reads the
otpauth:// URI from the hub's set-up page and computes the codes; soft-webauthn (a
software FIDO2 authenticator) tries to register passkeys the hub must refuse (it
never verifies the user, and it can be pointed at another origin).

Usage: mfa_peer.py BASE ADMIN_USER STUDENT_USER PASSWORD CLIENT_ID CLIENT_SECRET \
                   REDIRECT_URI MFA_CLIENT_ID
Prints `ok <step>` per step; on failure `FAIL <step>: <why>` and exit 1.
"""

import base64
import hashlib
import html
import json
import os
import re
import sys
import time
import urllib.parse

import pyotp
import requests
from soft_webauthn import SoftWebauthnDevice

BASE, ADMIN, STUDENT, PASSWORD, CLIENT_ID, CLIENT_SECRET, REDIRECT, MFA_CLIENT = sys.argv[1:9]


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def step(name):
    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            print(f"FAIL {name}: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
        print(f"ok {name}", flush=True)
    return run


def browser():
    s = requests.Session()
    s.headers["User-Agent"] = "mfa-peer"
    return s


def csrf_of(page):
    m = re.search(r'name="csrf" value="([^"]+)"', page) or re.search(r'data-csrf="([^"]+)"', page)
    check(m, "a CSRF token on the page")
    return html.unescape(m.group(1))


def get(s, path, **kw):
    return s.get(BASE + path, allow_redirects=False, timeout=10, **kw)


def post(s, path, data, **kw):
    return s.post(BASE + path, data=data, allow_redirects=False, timeout=10, **kw)


def post_json(s, path, body):
    return s.post(BASE + path, json=body, allow_redirects=False, timeout=10,
                  headers={"Origin": BASE})


def password_sign_in(s, user, request=None):
    page = get(s, "/login" + (f"?request={request}" if request else "")).text
    data = {"csrf": csrf_of(page), "username": user, "password": PASSWORD}
    if request:
        data["request"] = request
    return post(s, "/login", data)


def id_token_claims(s, extra=None, client_id=CLIENT_ID):
    """The authorization code flow of a confidential client; returns the ID token's
    claims, or the redirect the hub answered with when it wants the person first."""
    verifier = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
         "scope": "openid", "state": "st", "nonce": "n0",
         "code_challenge": challenge, "code_challenge_method": "S256"}
    q.update(extra or {})
    r = get(s, "/oauth2/authorize?" + urllib.parse.urlencode(q))
    for _ in range(6):
        loc = r.headers.get("location", "")
        if loc.startswith(REDIRECT):
            break
        if not loc.startswith("/oauth2/") and not loc.startswith("/consent"):
            return None, loc
        if loc.startswith("/consent"):
            page = get(s, loc).text
            req = re.search(r'name="request" value="([^"]+)"', page).group(1)
            r = post(s, "/consent", {"csrf": csrf_of(page), "request": html.unescape(req), "decision": "allow"})
            continue
        r = get(s, loc)
    params = urllib.parse.parse_qs(urllib.parse.urlparse(r.headers["location"]).query)
    check("code" in params, f"a code in {r.headers['location']}")
    tok = requests.post(BASE + "/oauth2/token", timeout=10, auth=(client_id, CLIENT_SECRET), data={
        "grant_type": "authorization_code", "code": params["code"][0], "redirect_uri": REDIRECT,
        "code_verifier": verifier})
    check(tok.status_code == 200, f"token: {tok.status_code} {tok.text}")
    payload = tok.json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))), None


state = {}


@step("privileged-password-alone-is-not-enough")
def _():
    s = browser()
    r = password_sign_in(s, ADMIN)
    check(r.status_code == 303 and r.headers["location"] == "/login/mfa", f"{r.status_code} {r.headers.get('location')}")
    check("hms_session" not in s.cookies, "no session after the password alone")
    check(get(s, "/portal").status_code == 303, "the portal sends a half-signed-in person to sign in")
    page = get(s, "/login/mfa").text
    check("set one up now" in page.lower() or "Add a passkey" in page, "enrolment offered to a person without factors")
    state["admin"] = s


@step("totp-enrolment-with-pyotp")
def _():
    s = state["admin"]
    page = get(s, "/login/mfa").text
    r = post(s, "/login/mfa/enroll/totp", {"csrf": csrf_of(page)})
    check(r.status_code == 200, f"set-up page {r.status_code}")
    check(r.headers.get("cache-control") == "no-store", "the secret page is never cached")
    uri = html.unescape(re.search(r'data-testid="totp-uri">([^<]+)<', r.text).group(1))
    check(uri.startswith("otpauth://totp/"), uri)
    check("<svg" in r.text, "a QR code")
    totp = pyotp.parse_uri(uri)
    check(totp.digits == 6 and totp.interval == 30, "RFC 6238 defaults")
    wrong = f"{(int(totp.now()) + 1) % 1000000:06d}"
    r2 = post(s, "/login/mfa/enroll/totp/confirm", {"csrf": csrf_of(r.text), "code": wrong})
    check(r2.status_code == 401, f"a wrong first code is refused: {r2.status_code}")
    code = totp.now()
    r3 = post(s, "/login/mfa/enroll/totp/confirm", {"csrf": csrf_of(r.text), "code": code})
    check(r3.status_code == 303 and r3.headers["location"] == "/portal", f"{r3.status_code} {r3.headers.get('location')}")
    check("hms_session" in s.cookies, "signed in")
    state["totp"], state["used_code"] = totp, code


@step("id-token-says-mfa")
def _():
    claims, _ = id_token_claims(state["admin"])
    check(claims["acr"] == "urn:hms-ach:acr:mfa", claims)
    check(set(claims["amr"]) >= {"pwd", "otp", "mfa"}, claims)


@step("recovery-codes")
def _():
    s = state["admin"]
    page = get(s, "/portal/security").text
    check("An authenticator app is set up" in page, "the portal lists the authenticator")
    r = post(s, "/portal/security/recovery", {"csrf": csrf_of(page)})
    codes = re.findall(r"<li><code>([A-Z0-9]{5}-[A-Z0-9]{5})</code></li>", r.text)
    check(len(codes) == 10 and len(set(codes)) == 10, f"ten codes: {codes}")
    state["codes"] = codes


@step("used-totp-code-is-refused-once-used")
def _():
    s = browser()
    check(password_sign_in(s, ADMIN).headers["location"] == "/login/mfa", "second factor asked")
    page = get(s, "/login/mfa").text
    check('name="kind" value="totp"' in page, "the code form is offered")
    r = post(s, "/login/mfa/code", {"csrf": csrf_of(page), "kind": "totp", "code": state["used_code"]})
    check(r.status_code == 401, f"a code works once (RFC 6238 §5.2): {r.status_code}")
    state["second"] = s


@step("recovery-code-works-once")
def _():
    s = state["second"]
    page = get(s, "/login/mfa").text
    code = state["codes"][0].lower().replace("-", " ")
    r = post(s, "/login/mfa/code", {"csrf": csrf_of(page), "kind": "recovery", "code": code})
    check(r.status_code == 303 and r.headers["location"] == "/portal", f"{r.status_code} {r.text[:300]}")
    s2 = browser()
    password_sign_in(s2, ADMIN)
    page = get(s2, "/login/mfa").text
    r = post(s2, "/login/mfa/code", {"csrf": csrf_of(page), "kind": "recovery", "code": state["codes"][0]})
    check(r.status_code == 401, f"the same recovery code again: {r.status_code}")


@step("too-many-wrong-codes-end-the-sign-in")
def _():
    s = browser()
    password_sign_in(s, ADMIN)
    page = get(s, "/login/mfa").text
    token = csrf_of(page)
    statuses = [post(s, "/login/mfa/code", {"csrf": token, "kind": "totp", "code": "000000"}).status_code
                for _ in range(5)]
    # The fifth wrong code ends this sign-in (max_attempts) or locks the person's
    # second factor (auth.max_failures across sign-ins; one wrong code came earlier).
    check(statuses[:4] == [401] * 4 and statuses[4] == 429, statuses)
    r = post(s, "/login/mfa/code", {"csrf": token, "kind": "totp", "code": state["totp"].now()})
    check(r.status_code in (400, 429), f"even the right code cannot finish it now: {r.status_code}")
    s2 = browser()
    password_sign_in(s2, ADMIN)
    page = get(s2, "/login/mfa").text
    r = post(s2, "/login/mfa/code", {"csrf": csrf_of(page), "kind": "totp", "code": state["totp"].now()})
    check(r.status_code == 429, f"a new sign-in does not reset the guesses: {r.status_code}")


@step("no-csrf-no-code")
def _():
    s = browser()
    password_sign_in(s, ADMIN)
    r = post(s, "/login/mfa/code", {"kind": "totp", "code": state["totp"].now()})
    check(r.status_code == 403, f"{r.status_code}")


@step("soft-webauthn-without-user-verification-is-refused")
def _():
    s = state["admin"]
    page = get(s, "/portal/security").text
    token = csrf_of(page)
    errors = []
    for origin in [BASE, "http://evil.example"]:
        opts = post_json(s, "/portal/security/passkeys/options", {"csrf": token})
        check(opts.status_code == 200, f"options {opts.status_code} {opts.text}")
        o = opts.json()
        pk = o["publicKey"]
        check(pk["authenticatorSelection"]["userVerification"] == "required", pk)
        check(pk["authenticatorSelection"]["residentKey"] == "required", pk)
        b = lambda v: base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))  # noqa: E731
        pk["challenge"] = b(pk["challenge"])
        pk["user"]["id"] = b(pk["user"]["id"])
        att = SoftWebauthnDevice().create({"publicKey": pk}, origin)
        enc = lambda v: base64.urlsafe_b64encode(v).decode().rstrip("=")  # noqa: E731
        cred = {"id": enc(att["rawId"]), "rawId": enc(att["rawId"]), "type": "public-key",
                "response": {"clientDataJSON": enc(att["response"]["clientDataJSON"]),
                             "attestationObject": enc(att["response"]["attestationObject"])}}
        r = post_json(s, "/portal/security/passkeys", {"csrf": token, "name": "soft", "credential": cred})
        check(r.status_code == 400, f"{origin}: {r.status_code} {r.text}")
        errors.append(r.json()["error"])
    check(errors[0] != errors[1], f"each refusal says why: {errors}")
    check("soft" not in get(s, "/portal/security").text, "no passkey was stored")


@step("student-needs-no-second-factor")
def _():
    s = browser()
    r = password_sign_in(s, STUDENT)
    check(r.headers["location"] == "/portal", f"{r.headers.get('location')}")
    claims, _ = id_token_claims(s)
    check(claims["acr"] == "urn:hms-ach:acr:password" and claims["amr"] == ["pwd"], claims)
    state["student"] = s


@step("mfa-required-app-steps-up")
def _():
    s = state["student"]
    claims, at = id_token_claims(s, client_id=MFA_CLIENT)
    check(claims is None and at.startswith("/login/mfa/step-up?request="), f"{at}")
    r = get(s, at)
    check(r.headers["location"] == "/login/mfa", f"{r.headers.get('location')}")
    q = {"response_type": "code", "client_id": MFA_CLIENT, "redirect_uri": REDIRECT,
         "scope": "openid", "prompt": "none",
         "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    r = get(s, "/oauth2/authorize?" + urllib.parse.urlencode(q))
    check("error=interaction_required" in r.headers.get("location", ""), f"prompt=none: {r.headers.get('location')}")


@step("acr-values-step-up")
def _():
    s = state["student"]
    claims, at = id_token_claims(s, {"acr_values": "urn:hms-ach:acr:mfa"})
    check(claims is None and at.startswith("/login/mfa/step-up"), f"{at}")


print("all checks passed")
