"""Makes the signed SAML Responses that the fuzz targets (seed corpus), the criterion
bench and the peer benchmark all read, and the IdP metadata that verifies them.

    python3 bench/saml/make_fixture.py [OUT_DIR]     # default: bench/saml/fixture

Needs only openssl and Debian's xmlsec1 (the signer pysaml2 shells out to), so the
Responses are signed by a real XML-DSig implementation, not by the hub's own code. A new
IdP key is made on every run and thrown away: only its certificate (in the metadata) is
kept, so no private key is ever committed.

The times are fixed, so the files can be committed and verified for decades:
- the hub's own checks run against a fixed clock (`NOW` below, the `Expect::now_ms`
  of the fuzz targets and the bench);
- samael also checks IssueInstant against the wall clock (IssueInstant + 90 s must not
  have passed) and NotBefore/NotOnOrAfter likewise, so IssueInstant and every
  NotOnOrAfter are in 2099 and every NotBefore in the past. The signature covers the
  times, so they cannot be changed after signing.
"""

import base64
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "fixture")

# Must match src/federation/saml_fixture.rs (the fuzz targets and the bench use it) and peers.py.
IDP = "https://idp.riverside.example/idp/shibboleth"
SP = "https://hub.riverside.example/saml/sp/district"
ACS = SP + "/acs"
REQUEST_ID = "_5f0c8a1e2b3d4c5e6f708192a3b4c5d6"
NOW = "2026-01-01T00:00:00Z"
ISSUED = "2099-01-01T00:00:00Z"
NOT_BEFORE = "2025-12-31T23:55:00Z"
NOT_AFTER = "2099-01-01T00:05:00Z"

PASSWORD_CTX = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
SHA256 = ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256")
SHA1 = ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1")


def signature_template(ref_id, algs):
    sig, digest = algs
    return (
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        f'<ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="#{ref_id}"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        f'<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>'
        "<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data>"
        "</ds:KeyInfo></ds:Signature>"
    )


def attribute(name, friendly, *values):
    vals = "".join(
        f'<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">{v}</saml:AttributeValue>'
        for v in values
    )
    return (
        f'<saml:Attribute Name="{name}" FriendlyName="{friendly}" '
        f'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">{vals}</saml:Attribute>'
    )


def response(assertion_sig="", response_sig="", status="urn:oasis:names:tc:SAML:2.0:status:Success"):
    """A Shibboleth-like Response for ana.diallo0; `*_sig` are signature templates."""
    attrs = "".join([
        attribute("urn:oid:0.9.2342.19200300.100.1.1", "uid", "ana.diallo0"),
        attribute("urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "eduPersonPrincipalName", "ana.diallo0@riverside.edu"),
        attribute("urn:oid:0.9.2342.19200300.100.1.3", "mail", "ana.diallo0@riverside.example"),
        attribute("urn:oid:2.5.4.42", "givenName", "Ana"),
        attribute("urn:oid:2.5.4.4", "sn", "Diallo"),
        attribute("urn:oid:1.3.6.1.4.1.5923.1.1.1.1", "eduPersonAffiliation", "student", "member"),
    ])
    assertion = (
        '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="_a7e3c1d2b4f5061728394a5b6c7d8e9f0" IssueInstant="{ISSUED}" Version="2.0">'
        f"<saml:Issuer>{IDP}</saml:Issuer>{assertion_sig}"
        "<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\" "
        f'NameQualifier="{IDP}" SPNameQualifier="{SP}">pid-ana.diallo0</saml:NameID>'
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData InResponseTo="{REQUEST_ID}" NotOnOrAfter="{NOT_AFTER}" '
        f'Recipient="{ACS}"/></saml:SubjectConfirmation></saml:Subject>'
        f'<saml:Conditions NotBefore="{NOT_BEFORE}" NotOnOrAfter="{NOT_AFTER}">'
        f"<saml:AudienceRestriction><saml:Audience>{SP}</saml:Audience></saml:AudienceRestriction>"
        "</saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{NOW}" SessionIndex="_s1e2s3s4i5o6n7">'
        f"<saml:AuthnContext><saml:AuthnContextClassRef>{PASSWORD_CTX}</saml:AuthnContextClassRef>"
        "</saml:AuthnContext></saml:AuthnStatement>"
        f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion>"
    )
    return (
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="_r1f2e3d4c5b6a7980a1b2c3d4e5f60718" InResponseTo="{REQUEST_ID}" Version="2.0" '
        f'IssueInstant="{ISSUED}" Destination="{ACS}"><saml:Issuer>{IDP}</saml:Issuer>{response_sig}'
        f'<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>'
        + (assertion if status.endswith(":Success") else "")
        + "</samlp:Response>"
    )


def xmlsec_sign(xml, key, cert, tmp):
    """Signs the first signature template in document order (xmlsec1's default)."""
    src, dst = os.path.join(tmp, "in.xml"), os.path.join(tmp, "out.xml")
    with open(src, "w") as f:
        f.write(xml)
    subprocess.run(
        ["xmlsec1", "--sign", "--privkey-pem", f"{key},{cert}",
         "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
         "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
         "--output", dst, src],
        check=True, capture_output=True,
    )
    with open(dst) as f:
        out = f.read()
    # xmlsec1 writes an XML declaration; an IdP's POST carries the document alone.
    if out.startswith("<?xml"):
        out = out.split("?>", 1)[1].lstrip()
    return out.rstrip("\n")


def metadata(cert_b64):
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.riverside.example/idp/profile/SAML2/Redirect/SSO"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>\n"
    )


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="saml-fixture-") as tmp:
        key, cert = os.path.join(tmp, "idp.key"), os.path.join(tmp, "idp.crt")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", cert, "-days", "36500", "-subj", "/CN=idp.riverside.example"],
            check=True, capture_output=True,
        )
        with open(cert) as f:
            cert_b64 = "".join(l for l in f.read().splitlines() if "CERTIFICATE" not in l)
        a_id, r_id = "_a7e3c1d2b4f5061728394a5b6c7d8e9f0", "_r1f2e3d4c5b6a7980a1b2c3d4e5f60718"
        files = {
            # What the bench measures: the usual shape (Shibboleth, ADFS, Okta).
            "assertion_signed.xml": xmlsec_sign(
                response(assertion_sig=signature_template(a_id, SHA256)), key, cert, tmp),
            "response_signed.xml": xmlsec_sign(
                response(response_sig=signature_template(r_id, SHA256)), key, cert, tmp),
            "sha1_signed.xml": xmlsec_sign(
                response(assertion_sig=signature_template(a_id, SHA1)), key, cert, tmp),
            "unsigned.xml": response(),
            "status_responder.xml": response(status="urn:oasis:names:tc:SAML:2.0:status:Responder"),
        }
        # Both signed: the assertion first, then the Response over the signed assertion.
        inner = xmlsec_sign(response(assertion_sig=signature_template(a_id, SHA256)), key, cert, tmp)
        outer = inner.replace(f"<saml:Issuer>{IDP}</saml:Issuer>",
                              f"<saml:Issuer>{IDP}</saml:Issuer>" + signature_template(r_id, SHA256), 1)
        files["both_signed.xml"] = xmlsec_sign(outer, key, cert, tmp)
        files["idp-metadata.xml"] = metadata(cert_b64)
        for name, text in files.items():
            with open(os.path.join(OUT, name), "w") as f:
                f.write(text)
    print(f"wrote {len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
