"""Downstream SAML service providers played by OneLogin's python3-saml (PyPI
`python3-saml`, xmlsec underneath), in strict mode, for the hub's SAML IdP tests.

    saml_sp.py PORT HUB_BASE [MARKUP]

Three SPs on one port, by path (four with MARKUP):
  /sp1  signs its AuthnRequests (RSA-SHA256), wants signed messages AND signed
        assertions, persistent NameID;
  /sp2  unsigned requests, email NameID;
  /sp3  not registered at the hub (its requests must be refused);
  /sp4  (issue 15) an app whose entityID is BASE/sp4/metadata?m=MARKUP and whose
        ACS is BASE/sp4/acs?m=MARKUP, email NameID, for IdP-initiated Responses
        only. Both are xs:anyURI in the Response (Audience; Destination and
        Recipient), which python3-saml checks against the SAML schema, and libxml2
        accepts no [ or ] there: the URIs carry MARKUP without them (and the ACS
        without spaces too: python3-saml refuses an ACS URL with whitespace). Its
        metadata is written with lxml, which escapes the values (python3-saml's own
        metadata builder puts them into its template as they are).

  GET  /{sp}/metadata   the SP's metadata (the hub is configured from it)
  GET  /{sp}/login      302 to the hub with an AuthnRequest. Query options:
                        force=1 (ForceAuthn), passive=1 (IsPassive), ctx=mfa|ppt
                        (RequestedAuthnContext REFEDS MFA or PasswordProtectedTransport,
                        exact; none by default), acs=URL (claim another ACS),
                        subject=NAMEID (ask about one person, core 3.4.1.4)
  GET  /{sp}/post-request  JSON {SAMLRequest, RelayState}: the same request for the
                        HTTP-POST binding, XML-signed (enveloped, RSA-SHA256)
  POST /{sp}/acs        python3-saml's process_response (InResponseTo checked against
                        the last request; ?unsolicited=1 for IdP-initiated, always for
                        sp4). Answers JSON: errors and reason, or NameID, format,
                        attributes, session index, AuthnContext and RelayState; and,
                        from lxml's reading of the Response, every element's
                        {namespace}name, how many comments and processing
                        instructions it has, and its Destination, Recipient and
                        Audience (`tags`, `comments`, `uris`).
The hub's IdP metadata is read from HUB_BASE/saml/idp/metadata on first use.
"""

import base64
import datetime
import json
import sys
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

PORT = int(sys.argv[1])
HUB = sys.argv[2].rstrip("/")
MARKUP = sys.argv[3] if len(sys.argv) > 3 else None
BASE = f"http://127.0.0.1:{PORT}"


def key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "python3-saml test SP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem


KEY, CERT = key_pair()
SPS = {
    "sp1": {"signed": True, "nameid": C.NAMEID_PERSISTENT},
    "sp2": {"signed": False, "nameid": C.NAMEID_EMAIL_ADDRESS},
    "sp3": {"signed": True, "nameid": C.NAMEID_PERSISTENT},
}
if MARKUP is not None:
    URI_MARKUP = MARKUP.replace("[", "").replace("]", "")
    SPS["sp4"] = {
        "signed": False,
        "nameid": C.NAMEID_EMAIL_ADDRESS,
        "entity": f"{BASE}/sp4/metadata?m={URI_MARKUP}",
        "acs": f"{BASE}/sp4/acs?m={URI_MARKUP.replace(' ', '')}",
        "unsolicited": True,
    }
IDP = {}
LAST_REQUEST = {}


def idp_settings():
    if not IDP:
        xml = urllib.request.urlopen(f"{HUB}/saml/idp/metadata").read().decode()
        IDP.update(
            OneLogin_Saml2_IdPMetadataParser.parse(
                xml, required_sso_binding=C.BINDING_HTTP_REDIRECT
            )["idp"]
        )
    return IDP


CONTEXTS = {
    "mfa": ["https://refeds.org/profile/mfa"],
    "ppt": ["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"],
}


def settings(sp, acs=None, ctx=None, with_idp=True):
    conf = SPS[sp]
    s = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": conf.get("entity", f"{BASE}/{sp}/metadata"),
            "assertionConsumerService": {
                "url": acs or conf.get("acs", f"{BASE}/{sp}/acs"),
                "binding": C.BINDING_HTTP_POST,
            },
            "NameIDFormat": conf["nameid"],
            "x509cert": CERT,
            "privateKey": KEY,
        },
        "security": {
            "authnRequestsSigned": conf["signed"],
            "wantMessagesSigned": True,
            "wantAssertionsSigned": True,
            "wantNameId": True,
            "signatureAlgorithm": C.RSA_SHA256,
            "digestAlgorithm": C.SHA256,
            "rejectDeprecatedAlgorithm": True,
            "requestedAuthnContext": CONTEXTS.get(ctx, False),
            "requestedAuthnContextComparison": "exact",
        },
    }
    if with_idp:
        s["idp"] = idp_settings()
    return s


MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def markup_metadata(conf):
    """sp4's metadata, its values escaped by lxml."""
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD})
    root.set("entityID", conf["entity"])
    sp = etree.SubElement(root, f"{{{MD}}}SPSSODescriptor")
    sp.set("protocolSupportEnumeration", C.NS_SAMLP)
    sp.set("AuthnRequestsSigned", "false")
    sp.set("WantAssertionsSigned", "true")
    etree.SubElement(sp, f"{{{MD}}}NameIDFormat").text = conf["nameid"]
    acs = etree.SubElement(sp, f"{{{MD}}}AssertionConsumerService")
    acs.set("Binding", C.BINDING_HTTP_POST)
    acs.set("Location", conf["acs"])
    acs.set("index", "1")
    return etree.tostring(root, encoding="unicode")


def census(saml_response):
    """Every element of the Response as lxml reads it, its comments and PIs, and the
    URIs python3-saml only compares by prefix (Destination, Recipient) or membership
    (Audience)."""
    doc = etree.fromstring(base64.b64decode(saml_response))
    tags, other = [], 0
    for node in doc.iter():
        if isinstance(node.tag, str):
            tags.append(node.tag)
        else:
            other += 1
    ns = {"saml": C.NS_SAML}
    uris = {
        "destination": doc.get("Destination"),
        "recipient": [
            e.get("Recipient") for e in doc.iterfind(".//saml:SubjectConfirmationData", ns)
        ],
        "audience": [e.text for e in doc.iterfind(".//saml:Audience", ns)],
    }
    return tags, other, uris


def request_data(handler, path, post=None):
    query = urllib.parse.urlsplit(handler.path).query
    return {
        "https": "off",
        "http_host": "127.0.0.1",
        "server_port": str(PORT),
        "script_name": path,
        "get_data": dict(urllib.parse.parse_qsl(query)),
        "post_data": post or {},
    }


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json", location=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        parts = urllib.parse.urlsplit(self.path)
        segs = parts.path.strip("/").split("/")
        if len(segs) != 2 or segs[0] not in SPS:
            return None, None, {}
        return segs[0], segs[1], dict(urllib.parse.parse_qsl(parts.query))

    def do_GET(self):
        sp, action, q = self.route()
        if action == "metadata" and "entity" in SPS[sp]:
            return self.reply(200, markup_metadata(SPS[sp]), "application/samlmetadata+xml")
        if action == "metadata":
            s = OneLogin_Saml2_Settings(settings(sp, with_idp=False), sp_validation_only=True)
            md = s.get_sp_metadata()
            errors = s.validate_metadata(md)
            if errors:
                return self.reply(500, json.dumps(errors))
            return self.reply(200, md, "application/samlmetadata+xml")
        if action == "login":
            auth = OneLogin_Saml2_Auth(
                request_data(self, f"/{sp}/login"),
                settings(sp, acs=q.get("acs"), ctx=q.get("ctx")),
            )
            url = auth.login(
                return_to="/home",
                force_authn=q.get("force") == "1",
                is_passive=q.get("passive") == "1",
                name_id_value_req=q.get("subject"),
            )
            LAST_REQUEST[sp] = auth.get_last_request_id()
            return self.reply(302, "", "text/plain", location=url)
        if action == "post-request":
            s = OneLogin_Saml2_Settings(settings(sp))
            req = OneLogin_Saml2_Authn_Request(s)
            signed = OneLogin_Saml2_Utils.add_sign(
                req.get_xml(),
                KEY,
                CERT,
                sign_algorithm=C.RSA_SHA256,
                digest_algorithm=C.SHA256,
            )
            if isinstance(signed, bytes):
                signed = signed.decode()
            LAST_REQUEST[sp] = req.get_id()
            body = {
                "SAMLRequest": base64.b64encode(signed.encode()).decode(),
                "RelayState": "/posted",
                "xml": signed,
            }
            return self.reply(200, json.dumps(body))
        return self.reply(404, "{}")

    def do_POST(self):
        sp, action, q = self.route()
        if action != "acs":
            return self.reply(404, "{}")
        length = int(self.headers.get("Content-Length", "0"))
        post = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        auth = OneLogin_Saml2_Auth(request_data(self, f"/{sp}/acs", post), settings(sp))
        unsolicited = q.get("unsolicited") == "1" or SPS[sp].get("unsolicited")
        request_id = None if unsolicited else LAST_REQUEST.get(sp)
        auth.process_response(request_id=request_id)
        out = {
            "errors": auth.get_errors(),
            "reason": auth.get_last_error_reason(),
            "authenticated": auth.is_authenticated(),
            "relay_state": post.get("RelayState"),
        }
        if auth.is_authenticated():
            out.update(
                {
                    "nameid": auth.get_nameid(),
                    "nameid_format": auth.get_nameid_format(),
                    "attributes": auth.get_attributes(),
                    "session_index": auth.get_session_index(),
                    "authn_contexts": auth.get_last_authn_contexts(),
                    "assertion_id": auth.get_last_assertion_id(),
                }
            )
        if "SAMLResponse" in post:
            out["tags"], out["comments"], out["uris"] = census(post["SAMLResponse"])
        return self.reply(200, json.dumps(out))


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
