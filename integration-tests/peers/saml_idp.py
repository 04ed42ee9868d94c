"""A real upstream SAML 2.0 identity provider for the hub's tests: pysaml2's `Server`
(signing with xmlsec1, RSA-SHA256 asked for explicitly: pysaml2 defaults to SHA-1).

    python saml_idp.py PORT

Endpoints (127.0.0.1 only):
  GET  /metadata      the IdP's metadata (the hub reads it from here)
  GET  /sso/redirect  SSO, HTTP-Redirect binding: checks the AuthnRequest's signature
                      against the SP's metadata (fetched from the hub on first use) and
                      answers with the HTTP-POST binding's auto-submitting form
  POST /control       JSON {"user": ..., "mode": ...}: who signs in next and how
  GET  /last          JSON: the last AuthnRequest seen (id, force_authn, signed)

Modes: normal, signed_response, mfa, old_authn (AuthnInstant an hour ago: a session
reused despite ForceAuthn), unsigned, modified, sha1, wrong_audience,
wrong_recipient, wrong_destination, expired, not_yet_valid, wrong_in_response_to,
fixed_id, and the XML signature wrapping variants xsw_prepend, xsw_append, xsw_advice,
xsw_response_wrap, xsw_object. Everything but normal, signed_response, mfa and fixed_id
must be refused by the hub (old_authn only when the hub asked for ForceAuthn).

Encrypted assertions (to the certificate the hub's SP metadata publishes for
encryption, by xmlsec1 with a template that names the algorithms: pysaml2's own
encrypt_assertion path always uses Triple DES):
  enc_signed_response   assertion unsigned, Response signed, AES-128-CBC, RSA-OAEP,
                        EncryptedKey inside ds:KeyInfo (Shibboleth's default shape)
  enc_signed_assertion  assertion signed then encrypted, Response unsigned, AES-256-CBC
  enc_gcm_sibling       Response signed, AES-256-GCM, the EncryptedKey beside the
                        EncryptedData, found through a ds:RetrievalMethod
  enc_rsa15             Response signed, key wrapped with RSA PKCS#1 v1.5 (accepted
                        only by an IdP entry marked allow_rsa1_5)
  enc_fixed_id          as enc_signed_response, the assertion ID always the same
and, to be refused: enc_wrong_audience (as enc_signed_response, another Audience),
enc_unsigned (nothing signed), enc_modified (Response signed,
then the ciphertext changed), enc_3des (pysaml2's own encrypt_assertion=True: Triple
DES), enc_wrong_key (encrypted to another certificate).
"""

import base64
import datetime
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zlib
from copy import deepcopy

from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, saml, samlp
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import (RSA_1_5, RSA_OAEP_MGF1P, get_pem_wrapped_unwrapped, make_temp,
                          pre_encryption_part, pre_signature_part)
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
PASSWORD_CTX = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
MFA_CTX = "https://refeds.org/profile/mfa"

# The people this IdP knows. uid matches the hub demo's usernames.
USERS = {
    "ana": {
        "uid": ["ana.diallo0"],
        "eduPersonPrincipalName": ["ana.diallo0@riverside.edu"],
        "mail": ["ana.diallo0@riverside.example"],
        "givenName": ["Ana"],
        "sn": ["Diallo"],
        "eduPersonAffiliation": ["student", "member"],
    },
    "zoe": {
        "uid": ["zoe.williams25"],
        "eduPersonPrincipalName": ["zoe.williams25@riverside.edu"],
        "mail": ["zoe.williams25@riverside.example"],
        "givenName": ["Zoe"],
        "sn": ["Williams"],
        "eduPersonAffiliation": ["faculty", "employee"],
    },
    "newcomer": {
        "uid": ["new.person"],
        "eduPersonPrincipalName": ["new.person@riverside.edu"],
        "mail": ["new.person@riverside.example"],
        "givenName": ["Nia"],
        "sn": ["Newcomer"],
        "eduPersonAffiliation": ["faculty"],
    },
}

STATE = {"user": "ana", "mode": "normal", "last": None}
LOADED_SPS = set()


def make_key(dir_):
    key, cert = os.path.join(dir_, "idp.key"), os.path.join(dir_, "idp.crt")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "30", "-subj", "/CN=test-idp"],
        check=True, capture_output=True,
    )
    return key, cert


def build_server(base, key, cert):
    conf = IdPConfig()
    conf.load({
        "entityid": base + "/metadata",
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(base + "/sso/redirect", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_URI}},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "want_authn_requests_signed": True,
        }},
        "key_file": key,
        "cert_file": cert,
        "encryption_keypairs": [{"key_file": key, "cert_file": cert}],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {},
        "signing_algorithm": SIG_RSA_SHA256,
        "digest_algorithm": DIGEST_SHA256,
        "delete_tmpfiles": True,
    })
    return Server(config=conf)


def load_sp(server, issuer):
    """Our SP publishes its metadata at {entityID}/metadata."""
    if issuer in LOADED_SPS:
        return
    with urllib.request.urlopen(issuer + "/metadata", timeout=10) as r:
        xml = r.read().decode()
    server.metadata.load("inline", xml)
    LOADED_SPS.add(issuer)


def inflate(b64):
    return zlib.decompress(base64.b64decode(b64), -15).decode()


def sign(server, xml, what, node_id, sha1=False):
    """Adds a signature template to the element with ID node_id and signs it (xmlsec1)."""
    sig_alg, dig_alg = (SIG_RSA_SHA1, DIGEST_SHA1) if sha1 else (SIG_RSA_SHA256, DIGEST_SHA256)
    tree = etree.fromstring(xml.encode())
    node = tree if tree.get("ID") == node_id else tree.find(f".//*[@ID='{node_id}']")
    tmpl = etree.fromstring(str(pre_signature_part(node_id, server.sec.my_cert, 1,
                                                  sign_alg=sig_alg, digest_alg=dig_alg)).encode())
    # saml-schema: the Signature follows the Issuer.
    issuer = node.find("saml:Issuer", NS)
    node.insert(list(node).index(issuer) + 1 if issuer is not None else 0, tmpl)
    xml = etree.tostring(tree).decode()
    cls = samlp.Response if what == "response" else saml.Assertion
    return server.sec.sign_statement(xml, class_name(cls()), node_id=node_id)


def encrypt(server, xml, cert, msg_enc, key_enc, session_key):
    """Replaces the Response's Assertion by an EncryptedAssertion: pysaml2's
    sec.encrypt_assertion (xmlsec1 --encrypt --node-xpath …) with our own template, so
    the data and key algorithms are the ones named here. `cert` is base64 DER."""
    tree = etree.fromstring(xml.encode())
    assertion = tree.find("saml:Assertion", NS)
    enc = etree.Element("{%s}EncryptedAssertion" % NS["saml"])
    tree.replace(assertion, enc)
    enc.append(assertion)
    template = pre_encryption_part(msg_enc=msg_enc, key_enc=key_enc, encrypt_cert=cert)
    wrapped, _ = get_pem_wrapped_unwrapped(cert)
    cert_file = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=True)
    return server.sec.encrypt_assertion(etree.tostring(tree).decode(), cert_file.name, str(template),
                                        key_type=session_key)


def key_beside_data(xml):
    """Moves the EncryptedKey out of the EncryptedData's KeyInfo to be its sibling in
    the EncryptedAssertion, pointed at by a ds:RetrievalMethod (SAML core §2.3.4)."""
    tree = etree.fromstring(xml.encode())
    enc = tree.find("saml:EncryptedAssertion", NS)
    key_info = enc.find("xenc:EncryptedData/ds:KeyInfo", NS)
    key = key_info.find("xenc:EncryptedKey", NS)
    key_info.remove(key)
    rm = etree.SubElement(key_info, "{%s}RetrievalMethod" % NS["ds"])
    rm.set("URI", "#" + key.get("Id"))
    rm.set("Type", "http://www.w3.org/2001/04/xmlenc#EncryptedKey")
    enc.append(key)
    return etree.tostring(tree).decode()


def encrypted(server, req, plain, mode):
    sp = req.message.issuer.text
    hub_cert = server.metadata.certs(sp, "any", "encryption")[0][1]
    if mode == "enc_3des":
        # pysaml2's own path: Triple DES and RSA-OAEP, to the cert in our metadata.
        return str(server.create_authn_response(sign_assertion=False, sign_response=True,
                                                encrypt_assertion=True, **plain))
    sign_assertion = mode == "enc_signed_assertion"
    xml = str(server.create_authn_response(sign_assertion=sign_assertion, sign_response=False, **plain))
    if mode in ("enc_wrong_audience", "enc_fixed_id"):
        # Changed before encryption and signing: only the checks after decryption see it.
        tree = etree.fromstring(xml.encode())
        assertion = tree.find("saml:Assertion", NS)
        if mode == "enc_wrong_audience":
            assertion.find(".//saml:Audience", NS).text = "https://evil.example/sp"
        else:
            assertion.set("ID", "_fixed-encrypted-assertion-id")
        xml = etree.tostring(tree).decode()
    cert, data_alg, key_alg, session = hub_cert, AES128_CBC, RSA_OAEP_MGF1P, "aes-128"
    if mode == "enc_signed_assertion":
        data_alg, session = AES256_CBC, "aes-256"
    elif mode == "enc_gcm_sibling":
        data_alg, session = AES256_GCM, "aes-256"
    elif mode == "enc_rsa15":
        key_alg = RSA_1_5
    elif mode == "enc_wrong_key":
        _, cert = get_pem_wrapped_unwrapped(open(server.config.cert_file).read())
    xml = encrypt(server, xml, cert, data_alg, key_alg, session)
    if mode == "enc_gcm_sibling":
        xml = key_beside_data(xml)
    if mode in ("enc_signed_assertion", "enc_unsigned"):
        return xml
    xml = sign(server, xml, "response", etree.fromstring(xml.encode()).get("ID"))
    if mode == "enc_modified":
        # One base64 character of the encrypted data, after signing.
        tree = etree.fromstring(xml.encode())
        value = tree.find(".//xenc:EncryptedData/xenc:CipherData/xenc:CipherValue", NS)
        text = value.text.strip()
        value.text = text[:40] + ("A" if text[40] != "A" else "B") + text[41:]
        xml = etree.tostring(tree).decode()
    return xml


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def respond(server, req, user, mode):
    acs = req.message.assertion_consumer_service_url
    sp = req.message.issuer.text
    identity = USERS[user]
    name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, sp_name_qualifier=sp,
                     text="pid-" + identity["uid"][0])
    ctx = MFA_CTX if mode == "mfa" else PASSWORD_CTX
    authn = {"class_ref": ctx}
    if mode == "old_authn":
        authn["authn_instant"] = int(datetime.datetime.now().timestamp()) - 3600
    plain = dict(identity=identity, in_response_to=req.message.id, destination=acs,
                 sp_entity_id=sp, name_id=name_id, authn=authn,
                 sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    if mode in ("normal", "mfa", "old_authn"):
        return str(server.create_authn_response(sign_assertion=True, sign_response=False, **plain))
    if mode == "signed_response":
        return str(server.create_authn_response(sign_assertion=False, sign_response=True, **plain))
    if mode.startswith("enc_"):
        return encrypted(server, req, plain, mode)
    if mode == "unsigned":
        return str(server.create_authn_response(sign_assertion=False, sign_response=False, **plain))
    if mode == "sha1":
        plain.update(sign_alg=SIG_RSA_SHA1, digest_alg=DIGEST_SHA1)
        return str(server.create_authn_response(sign_assertion=True, sign_response=False, **plain))
    if mode == "modified":
        xml = str(server.create_authn_response(sign_assertion=True, sign_response=False, **plain))
        return xml.replace(identity["uid"][0], USERS["zoe"]["uid"][0])

    # Changed before signing: a correctly signed Response that is wrong on one point.
    unsigned = str(server.create_authn_response(sign_assertion=False, sign_response=False, **plain))
    tree = etree.fromstring(unsigned.encode())
    assertion = tree.find("saml:Assertion", NS)
    scd = assertion.find(".//saml:SubjectConfirmationData", NS)
    cond = assertion.find("saml:Conditions", NS)
    now = datetime.datetime.now(datetime.timezone.utc)
    signed_part = "assertion"
    if mode == "wrong_audience":
        assertion.find(".//saml:Audience", NS).text = "https://evil.example/sp"
    elif mode == "wrong_recipient":
        scd.set("Recipient", "https://evil.example/acs")
    elif mode == "wrong_destination":
        tree.set("Destination", "https://evil.example/acs")
        signed_part = "response"
    elif mode == "expired":
        for el in (cond, scd):
            el.set("NotOnOrAfter", iso(now - datetime.timedelta(minutes=20)))
        cond.set("NotBefore", iso(now - datetime.timedelta(minutes=40)))
    elif mode == "not_yet_valid":
        cond.set("NotBefore", iso(now + datetime.timedelta(minutes=20)))
        for el in (cond, scd):
            el.set("NotOnOrAfter", iso(now + datetime.timedelta(minutes=40)))
    elif mode == "wrong_in_response_to":
        # The outer InResponseTo still names the real request; the signed one does not.
        scd.set("InResponseTo", "_" + "0" * 32)
    elif mode == "fixed_id":
        old = assertion.get("ID")
        assertion.set("ID", "_fixed-assertion-id")
        assert old
    elif not mode.startswith("xsw_"):
        raise ValueError("unknown mode " + mode)
    xml = etree.tostring(tree).decode()
    if signed_part == "response" or mode == "xsw_response_wrap":
        xml = sign(server, xml, "response", tree.get("ID"))
    else:
        xml = sign(server, xml, "assertion", assertion.get("ID"))
    return wrap(xml, mode) if mode.startswith("xsw_") else xml


def evil_copy(assertion):
    """The attacker's assertion: the signed one, unsigned, naming zoe."""
    evil = deepcopy(assertion)
    for sig in evil.findall("ds:Signature", NS):
        evil.remove(sig)
    evil.set("ID", "_evil" + "1" * 32)
    for v in evil.iter("{%s}AttributeValue" % NS["saml"]):
        for user in USERS["ana"].values():
            if v.text in user:
                v.text = v.text.replace("ana.diallo0", "zoe.williams25")
    for n in evil.iter("{%s}NameID" % NS["saml"]):
        n.text = "pid-zoe.williams25"
    return evil


def wrap(xml, mode):
    """XML signature wrapping (Somorovsky et al., 2012): the signed element stays intact
    and verifiable, an unsigned one is placed where a naive SP would read it."""
    tree = etree.fromstring(xml.encode())
    if mode == "xsw_response_wrap":
        # The whole signed Response goes into samlp:Extensions of a new Response.
        signed = deepcopy(tree)
        tree.set("ID", "_evilresp" + "2" * 32)
        for sig in tree.findall("ds:Signature", NS):
            tree.remove(sig)
        original = tree.find("saml:Assertion", NS)
        idx = list(tree).index(original)
        tree.remove(original)
        tree.insert(idx, evil_copy(original))
        ext = etree.SubElement(tree, "{%s}Extensions" % NS["samlp"])
        tree.remove(ext)
        issuer = tree.find("saml:Issuer", NS)
        tree.insert(list(tree).index(issuer) + 1, ext)
        ext.append(signed)
        return etree.tostring(tree).decode()
    assertion = tree.find("saml:Assertion", NS)
    evil = evil_copy(assertion)
    idx = list(tree).index(assertion)
    if mode == "xsw_prepend":
        tree.insert(idx, evil)
    elif mode == "xsw_append":
        tree.insert(idx + 1, evil)
    elif mode == "xsw_advice":
        tree.remove(assertion)
        advice = etree.SubElement(evil, "{%s}Advice" % NS["saml"])
        evil.remove(advice)
        evil.insert(list(evil).index(evil.find("saml:Conditions", NS)) + 1, advice)
        advice.append(assertion)
        tree.insert(idx, evil)
    elif mode == "xsw_object":
        # The signed assertion moves into ds:Object of a signature inside the evil one.
        tree.remove(assertion)
        sig = deepcopy(assertion.find("ds:Signature", NS))
        obj = etree.SubElement(sig, "{%s}Object" % NS["ds"])
        obj.append(assertion)
        evil.insert(list(evil).index(evil.find("saml:Issuer", NS)) + 1, sig)
        tree.insert(idx, evil)
    else:
        raise ValueError("unknown mode " + mode)
    return etree.tostring(tree).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "pysaml2-test-idp"

    def log_message(self, *a):
        pass

    def send(self, code, body, ctype="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        srv = self.server.saml
        if url.path == "/metadata":
            return self.send(200, create_metadata_string(None, srv.config, 4, None, None, None, None, None).decode(),
                             "application/samlmetadata+xml")
        if url.path == "/last":
            return self.send(200, json.dumps(STATE["last"]), "application/json")
        if url.path != "/sso/redirect":
            return self.send(404, "not found")
        q = dict(urllib.parse.parse_qsl(url.query))
        try:
            raw = inflate(q["SAMLRequest"])
            issuer = re.search(r"<saml:Issuer[^>]*>([^<]+)</saml:Issuer>", raw).group(1)
            load_sp(srv, issuer)
            signed = "Signature" in q
            # pysaml2 checks the redirect signature (bindings §3.4.4.1) against the
            # certificate in the SP's metadata, and refuses an unsigned request
            # (want_authn_requests_signed).
            req = srv.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                          relay_state=q.get("RelayState"),
                                          sigalg=q.get("SigAlg"), signature=q.get("Signature"))
            STATE["last"] = {"id": req.message.id, "force_authn": req.message.force_authn,
                             "signed": signed, "issuer": issuer}
            xml = respond(srv, req, STATE["user"], STATE["mode"])
            if os.environ.get("SAML_IDP_DUMP"):
                with open(os.environ["SAML_IDP_DUMP"], "w") as f:
                    f.write(xml)
            info = srv.apply_binding(BINDING_HTTP_POST, xml, destination=req.message.assertion_consumer_service_url,
                                     relay_state=q.get("RelayState", ""), response=True)
            return self.send(200, info["data"])
        except Exception as e:  # a test peer: say what broke
            import traceback
            traceback.print_exc()
            return self.send(500, "IdP error: %r" % e)

    def do_POST(self):
        if self.path != "/control":
            return self.send(404, "not found")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        STATE.update({k: v for k, v in body.items() if k in ("user", "mode")})
        return self.send(200, json.dumps({"user": STATE["user"], "mode": STATE["mode"]}), "application/json")


def main():
    port = int(sys.argv[1])
    base = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="test-idp-")
    key, cert = make_key(tmp)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.saml = build_server(base, key, cert)
    print("ready", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
