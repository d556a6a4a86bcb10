"""A SAML 2.0 identity provider for tests: PyPI pysaml2, signing through
Debian's xmlsec1 (RSA-SHA256). Not written for Portico: only the HTTP glue
and the knobs that make bad responses live here.

    python saml_idp.py PORT

GET /metadata                 IdP metadata (entity ID, SSO URL, signing cert)
GET /sso/<mode>?SAMLRequest=  HTTP-Redirect binding; answers with an
                              auto-submitting form POSTing to the SP's ACS.
GET /idp-initiated?sp=&acs=   unsolicited response for SP entity `sp`
<mode>: ok | unsigned | wrong_cert | expired | wrong_audience | sha1 |
        signed_response | no_email | no_audience
Prints "READY <base url>" once listening.
"""

import base64
import datetime
import html
import os
import sys
import tempfile
import urllib.parse
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT, class_name, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAME_FORMAT_BASIC, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"
WORK = tempfile.mkdtemp(prefix="portico-saml-idp-")


def key_pair(name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=int(os.environ.get("IDP_CERT_DAYS", "365"))))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = os.path.join(WORK, f"{name}.key"), os.path.join(WORK, f"{name}.crt")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def make_server(key_path, cert_path):
    cfg = IdPConfig()
    cfg.load({
        "entityid": f"{BASE}/metadata",
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{BASE}/sso/ok", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_BASIC}},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
        }},
        "key_file": key_path,
        "cert_file": cert_path,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {},
    })
    return Server(config=cfg)


IDP = make_server(*key_pair("idp"))
OTHER = make_server(*key_pair("impostor"))
LOADED = set()


def load_sp(entity_id):
    """Loads the SP's metadata from `<entity id>/metadata` (Portico's layout)."""
    if entity_id in LOADED:
        return
    with urllib.request.urlopen(entity_id + "/metadata", timeout=10) as r:
        xml = r.read().decode()
    for server in (IDP, OTHER):
        server.metadata.load("inline", xml)
    LOADED.add(entity_id)


IDENTITY = {
    "email": ["ada@example.com"],
    "firstName": ["Ada"],
    "lastName": ["Lovelace"],
    "groups": ["engineering", "admins"],
}


def response(mode, in_response_to, acs, sp_entity_id):
    load_sp(sp_entity_id)
    identity = dict(IDENTITY)
    if mode == "no_email":
        identity.pop("email")
    name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS,
                     text="ada@example.com" if mode != "no_email" else "00u-ada")
    resp = IDP.create_authn_response(
        identity, in_response_to, acs, sp_entity_id, name_id=name_id,
        sign_response=False, sign_assertion=False,
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
    )
    if isinstance(resp, str):
        resp = samlp.response_from_string(resp)
    assertion = resp.assertion
    if mode == "expired":
        past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assertion.conditions.not_on_or_after = past
        for sc in assertion.subject.subject_confirmation:
            sc.subject_confirmation_data.not_on_or_after = past
    if mode == "wrong_audience":
        assertion.conditions.audience_restriction[0].audience[0].text = "https://someone-else.example/sp"
    if mode == "no_audience":
        assertion.conditions.audience_restriction = []
    if mode == "unsigned":
        return str(resp)
    signer = OTHER if mode == "wrong_cert" else IDP
    sign_alg, digest_alg = (SIG_RSA_SHA1, DIGEST_SHA1) if mode == "sha1" else (SIG_RSA_SHA256, DIGEST_SHA256)
    if mode == "signed_response":
        resp.signature = pre_signature_part(resp.id, signer.sec.my_cert, 1, sign_alg=sign_alg, digest_alg=digest_alg)
        return signer.sec.sign_statement(str(resp), class_name(resp), node_id=resp.id)
    assertion.signature = pre_signature_part(assertion.id, signer.sec.my_cert, 1, sign_alg=sign_alg,
                                             digest_alg=digest_alg)
    return signer.sec.sign_statement(str(resp), class_name(assertion), node_id=assertion.id)


def form(acs, saml_response, relay_state):
    encoded = base64.b64encode(saml_response.encode()).decode()
    relay = f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">' if relay_state else ""
    return (
        f'<!doctype html><html><body><form method="post" action="{html.escape(acs)}">'
        f'<input type="hidden" name="SAMLResponse" value="{encoded}">{relay}'
        f'<noscript><button type="submit">Continue</button></noscript></form>'
        f"<script>document.forms[0].submit()</script></body></html>"
    )


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="text/html; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        try:
            if url.path == "/metadata":
                return self.send(200, str(entity_descriptor(IDP.config)), "application/samlmetadata+xml")
            if url.path.startswith("/sso/"):
                mode = url.path[len("/sso/"):]
                raw = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
                request = samlp.authn_request_from_string(raw)
                sp = request.issuer.text
                acs = request.assertion_consumer_service_url
                relay = query.get("RelayState", [""])[0]
                return self.send(200, form(acs, response(mode, request.id, acs, sp), relay))
            if url.path == "/idp-initiated":
                sp, acs = query["sp"][0], query["acs"][0]
                relay = query.get("RelayState", [""])[0]
                return self.send(200, form(acs, response("ok", None, acs, sp), relay))
            return self.send(404, "not found", "text/plain")
        except Exception as e:  # a test peer: report, do not hide
            return self.send(500, f"{type(e).__name__}: {e}", "text/plain")


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(f"READY {BASE}", flush=True)
server.serve_forever()
