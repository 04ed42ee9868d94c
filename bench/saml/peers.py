"""The peers of the criterion bench `saml_totp`, on the same inputs, in the same run
(`bench/saml/run.sh`):

- python3-saml 1.16.0 (OneLogin, strict mode, xmlsec's Python binding): Response
  decode + verify of bench/saml/fixture/assertion_signed.xml;
- pysaml2 7.5.5 (it spawns the xmlsec1 program for each signature): the same;
- PyOTP: TOTP verify (RFC 6238, valid_window=1) of a right and a wrong code.

Each peer must accept the fixture (and refuse a changed copy) before it is timed.
Prints one JSON object: per operation the median microseconds over REPEATS timings of
an auto-sized loop (like criterion's per-iteration estimate).

    target/bench/saml-venv/bin/python bench/saml/peers.py [REPEATS]
"""

import base64
import json
import logging
import os
import statistics
import sys
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixture")
# Must match make_fixture.py and src/federation/saml_fixture.rs.
IDP = "https://idp.riverside.example/idp/shibboleth"
SP = "https://hub.riverside.example/saml/sp/district"
ACS = SP + "/acs"
REQUEST_ID = "_5f0c8a1e2b3d4c5e6f708192a3b4c5d6"
TOTP_SECRET = b"12345678901234567890"  # RFC 6238 Appendix B
TOTP_NOW = 1_767_225_600
REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 15


def read(name):
    with open(os.path.join(FIXTURE, name)) as f:
        return f.read()


RESPONSE = read("assertion_signed.xml")
CHANGED = RESPONSE.replace(">pid-ana.diallo0<", ">pid-zoe.williams25<")
METADATA = read("idp-metadata.xml")
B64 = base64.b64encode(RESPONSE.encode()).decode()
B64_CHANGED = base64.b64encode(CHANGED.encode()).decode()


def median_us(fn, min_seconds=0.2):
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    while True:
        t = timer.timeit(number)
        if t >= min_seconds:
            break
        number *= 2
    runs = [timer.timeit(number) / number for _ in range(REPEATS)]
    return round(statistics.median(runs) * 1e6, 2)


def python3_saml():
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings
    from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

    idp = OneLogin_Saml2_IdPMetadataParser.parse(METADATA)["idp"]
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {
                "entityId": SP,
                "assertionConsumerService": {
                    "url": ACS,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "NameIDFormat": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            },
            "idp": idp,
            "security": {"wantAssertionsSigned": True, "wantMessagesSigned": False},
        },
        sp_validation_only=True,
    )
    # The ACS URL as python3-saml rebuilds it from the request (Destination, Recipient).
    request = {
        "https": "on",
        "http_host": "hub.riverside.example",
        "server_port": "443",
        "script_name": "/saml/sp/district/acs",
    }

    def verify(b64):
        r = OneLogin_Saml2_Response(settings, b64)
        ok = r.is_valid(request, request_id=REQUEST_ID, raise_exceptions=False)
        return ok, r

    ok, r = verify(B64)
    if not ok or r.get_nameid() != "pid-ana.diallo0":
        raise SystemExit(f"python3-saml refused the fixture: {r.get_error()}")
    if verify(B64_CHANGED)[0]:
        raise SystemExit("python3-saml accepted a changed Response")
    import importlib.metadata as md

    return md.version("python3-saml"), median_us(lambda: verify(B64))


def pysaml2():
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    import importlib.metadata as md

    config = SPConfig()
    config.load(
        {
            "entityid": SP,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]},
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "allow_unsolicited": False,
                }
            },
            "metadata": {"inline": [METADATA]},
            # The fixture's IssueInstant is in 2099 (so that samael's wall-clock checks
            # pass for decades); pysaml2 bounds it by the time slack.
            "accepted_time_diff": 3_200_000_000,
            "xmlsec_binary": "/usr/bin/xmlsec1",
        }
    )
    client = Saml2Client(config)

    def verify(b64):
        return client.parse_authn_request_response(
            b64, BINDING_HTTP_POST, outstanding={REQUEST_ID: "/"}
        )

    r = verify(B64)
    if r is None or r.name_id.text != "pid-ana.diallo0":
        raise SystemExit("pysaml2 refused the fixture")
    logging.disable(logging.CRITICAL)  # pysaml2 logs the refused signature at length
    try:
        changed = verify(B64_CHANGED)
    except Exception:
        changed = None
    logging.disable(logging.NOTSET)
    if changed is not None:
        raise SystemExit("pysaml2 accepted a changed Response")
    return md.version("pysaml2"), median_us(lambda: verify(B64), min_seconds=0.5)


def pyotp_verify():
    import pyotp
    import importlib.metadata as md

    totp = pyotp.TOTP(base64.b32encode(TOTP_SECRET).decode())
    right = totp.at(TOTP_NOW)
    wrong = "000000" if right != "000000" else "000001"
    assert totp.verify(right, for_time=TOTP_NOW, valid_window=1)
    assert not totp.verify(wrong, for_time=TOTP_NOW, valid_window=1)
    return (
        md.version("pyotp"),
        median_us(lambda: totp.verify(right, for_time=TOTP_NOW, valid_window=1)),
        median_us(lambda: totp.verify(wrong, for_time=TOTP_NOW, valid_window=1)),
    )


def main():
    out = {}
    v, us = python3_saml()
    out["python3-saml"] = {"version": v, "decode_and_verify_us": us}
    v, us = pysaml2()
    out["pysaml2"] = {"version": v, "decode_and_verify_us": us}
    v, right, wrong = pyotp_verify()
    out["pyotp"] = {"version": v, "right_code_us": right, "wrong_code_us": wrong}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
