#!/usr/bin/env python3
"""Independent computation of the constructed test vectors used by src/webhook/*.rs.

Written against each provider's documented construction (see docs/webhooks.md and docs/providers.md),
using only the Python standard library (hmac, hashlib, base64) and `cryptography` for
Ed25519. It never calls roomgate code. Run it and paste the printed constants into the
tests; every constant in a test that says "computed by testdata/make_vectors.py" came
from here.
"""
import base64
import hashlib
import hmac

T = 1700000000  # 2023-11-14T22:13:20Z


def hs256(key, msg):
    return hmac.new(key.encode() if isinstance(key, str) else key,
                    msg.encode() if isinstance(msg, str) else msg, hashlib.sha256)


def hs1(key, msg):
    return hmac.new(key.encode(), msg.encode(), hashlib.sha1)


def b64(d):
    return base64.b64encode(d).decode()


def out(name, value):
    print(f"{name} = {value}")


# Stripe: key = whole whsec_ string, signed "{t}.{body}", hex.
body = '{"id":"evt_123","object":"event"}'
out("stripe.v1", hs256("whsec_test_secret", f"{T}.{body}").hexdigest())

# Slack: "v0:{ts}:{body}", hex.
body = '{"type":"event_callback","event_id":"Ev123"}'
out("slack.v0", hs256("slack_signing_secret", f"v0:{T}:{body}").hexdigest())
slack_doc_body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
out("slack.doc", hs256("8f742231b10e8888abcd99yyyzzz85a5", f"v0:1531420618:{slack_doc_body}").hexdigest())

# Shopify: raw body, base64.
body = '{"id":820982911946154508}'
out("shopify", b64(hs256("shpss_secret", body).digest()))

# Twilio: URL + sorted(name+value), HMAC-SHA1 base64.
params = {"CallSid": ["CA1234567890ABCDE"], "Digits": ["1234"], "From": ["+14158675309"],
          "To": ["+18005551212"], "Caller": ["+14158675309"]}


def twilio(url, params):
    s = url + "".join(k + v for k in sorted(params) for v in sorted(set(params[k])))
    return b64(hs1("12345", s).digest())


out("twilio.form", twilio("https://mycompany.com/myapp.php?foo=1&bar=2", params))
out("twilio.form:443", twilio("https://mycompany.com:443/myapp.php?foo=1&bar=2", params))
out("twilio.dup", twilio("https://mycompany.com/myapp.php?foo=1&bar=2",
                         {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234"]}))
jb = '{"property": "value", "boolean": true}'
out("twilio.json.bodysha", hashlib.sha256(jb.encode()).hexdigest())
out("twilio.json", twilio("https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + hashlib.sha256(jb.encode()).hexdigest(), {}))
out("twilio.http:80", twilio("http://mycompany.com:80/sms", {"Body": ["hi there"], "From": ["+15005550006"]}))

# Zendesk: "{ts}{body}" base64; key = secret string verbatim.
zsecret = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="
out("zendesk.kat", b64(hs256(zsecret, '2021-03-25T05:09:27Z{"event":"ticket.updated","id":123}').digest()))
out("zendesk.T", b64(hs256(zsecret, '2023-11-14T22:13:20Z{"event":"ticket.updated","id":123}').digest()))

# Sentry: raw body, hex.
ssecret = "a" * 64
body = '{"action":"created","data":{}}'
out("sentry", hs256(ssecret, body).hexdigest())

# Salesforce (MC ENS and Data Cloud): raw body, base64, key verbatim UTF-8 (provisional).
body = '[{"eventCategoryType":"TransactionalSendEvents.EmailSent","compositeId":"abc"}]'
out("salesforce", b64(hs256("sfmc_signature_key", body).digest()))

# WhatsApp / Meta: raw body, "sha256=" hex.
body = '{"object":"whatsapp_business_account","entry":[]}'
out("whatsapp", hs256("meta_app_secret", body).hexdigest())

# Standard Webhooks: key = base64decode(after whsec_), "{id}.{ts}.{body}", "v1," base64.
key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
out("stdwh.kat", b64(hs256(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}').digest()))
out("stdwh.T", b64(hs256(key, f'msg_2Lz.{T}.{{"type":"user.created"}}').digest()))
# GitLab signing token: same construction, its own whsec_ key.
gkey = base64.b64decode("Z2l0bGFiLXNpZ25pbmctdG9rZW4tMzItYnl0ZXMhISE=")
out("gitlab.key.len", len(gkey))
out("gitlab.signed", b64(hs256(gkey, f'01HX.{T}.{{"object_kind":"push"}}').digest()))

# Linear: raw body hex; webhookTimestamp (ms) in body.
body = f'{{"action":"create","type":"Issue","webhookTimestamp":{T}000}}'
out("linear", hs256("lin_wh_secret", body).hexdigest())

# Intercom: raw body HMAC-SHA1 hex.
body = '{"type":"notification_event","id":"notif_1"}'
out("intercom", hs1("intercom_client_secret", body).hexdigest())

# HubSpot v3: METHOD + URL + body + ts(ms), base64.
out("hubspot.kat", b64(hs256("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
                             "POSThttps://www.example.com/webhook_uri{'example_field':'example_value'}15000000").digest()))
body = '[{"eventId":100,"subscriptionType":"contact.creation"}]'
out("hubspot.T", b64(hs256("hubspot_client_secret", f"POSThttps://hooks.example.test/hubspot{body}{T}000").digest()))

# Square: URL + body, base64.
sbody = '{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}'
out("square.kat", b64(hs256("Ibxx_5AKakO-3qeNVR61Dw", "https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9" + sbody).digest()))

# Paddle: "{ts}:{body}" hex.
body = '{"event_id":"evt_01h","notification_id":"ntf_01h"}'
out("paddle", hs256("pdl_ntfset_secret", f"{T}:{body}").hexdigest())

# Mailgun: hex HMAC of timestamp + token (both from the body's signature object).
out("mailgun", hs256("mailgun_signing_key", f"{T}" + "tok_5f2b9c").hexdigest())

# Twitch: id + timestamp + body, "sha256=" hex.
body = '{"subscription":{"type":"channel.follow"},"event":{}}'
out("twitch", hs256("twitch_secret_10", "msg-1" + "2023-11-14T22:13:20.123456789Z" + body).hexdigest())

# Calendly: "{t}.{body}" hex.
body = '{"event":"invitee.created","payload":{}}'
out("calendly", hs256("calendly_key", f"{T}.{body}").hexdigest())

# Typeform: raw body, "sha256=" base64.
body = '{"event_id":"01HTF","event_type":"form_response"}'
out("typeform", b64(hs256("typeform_secret", body).digest()))

# PagerDuty: raw body, "v1=" hex.
body = '{"event":{"id":"01PD","event_type":"incident.triggered"}}'
out("pagerduty", hs256("pd_secret", body).hexdigest())

# Zoom: "v0:{ts}:{body}", "v0=" hex; url_validation encryptedToken = hex HMAC(secret, plainToken).
body = '{"event":"meeting.started","payload":{}}'
out("zoom", hs256("zoom_secret_token", f"v0:{T}:{body}").hexdigest())
out("zoom.encryptedToken", hs256("zoom_secret_token", "qgg8vlvZRS6UYooatFL8Aw").hexdigest())
body = '{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000}'
out("zoom.validation", hs256("zoom_secret_token", f"v0:{T}:{body}").hexdigest())

# Discord: Ed25519 over timestamp + body; seed = 32 bytes of 0x07.
try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization
    sk = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out("discord.pk", pk.hex())
    body = '{"id":"1234567890","type":2}'
    out("discord.sig", sk.sign(f"{T}{body}".encode()).hex())
    out("discord.ping", sk.sign(f'{T}{{"type":1}}'.encode()).hex())
    sk2 = Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32)
    out("discord.other_pk", sk2.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex())
except ImportError:
    print("cryptography not installed: pip install cryptography")

# Handshake tests (handshake.rs): Slack bodies signed at 1700000000.
for name, body in [
    ("slack.url_verification", '{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'),
    ("slack.event_callback", '{"type":"event_callback","event_id":"Ev1"}'),
    ("slack.oversized", '{"type":"url_verification","challenge":"' + "a" * 2000 + '"}'),
]:
    out(name, hs256("slack_signing_secret", f"v0:{T}:{body}").hexdigest())

# Standard Webhooks asymmetric v1a: secret "whpk_" + base64(public key); signature
# "v1a," + base64(Ed25519 over "{id}.{ts}.{body}"). Seed = 32 bytes of 0x05.
try:
    sk = Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32)
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out("stdwh.v1a.whpk", "whpk_" + b64(pk))
    out("stdwh.v1a.sig", b64(sk.sign(f'msg_2Lz.{T}.{{"type":"user.created"}}'.encode())))
except NameError:
    pass

# Twitch callback verification (handshake.rs), signed like any EventSub message.
body = '{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2","status":"webhook_callback_verification_pending","type":"channel.follow"}}'
out("twitch.verification", hs256("twitch_secret_10", "msg-2" + "2023-11-14T22:13:20Z" + body).hexdigest())

# --- Bitbucket, Vercel, Asana, Dropbox, Notion, Mux, Adyen, Contentful, SendGrid, HubSpot v1/v2 ---

# Bitbucket: "sha256=" hex over the raw body (a sha1 value is refused).
body = '{"push":{"changes":[]},"repository":{"full_name":"acme/app"}}'
out("bitbucket", hs256("bitbucket_secret", body).hexdigest())
out("bitbucket.sha1", hmac.new(b"bitbucket_secret", body.encode(), hashlib.sha1).hexdigest())

# Vercel: hex HMAC-SHA1 over the raw body.
out("vercel", hs1("vercel_secret", '{"id":"evt_vercel_1","type":"deployment.created","payload":{}}').hexdigest())

# Asana: hex HMAC-SHA256 keyed by the handshake's X-Hook-Secret.
out("asana", hs256("asana_hook_secret_0123456789", '{"events":[{"action":"changed","resource":{"gid":"1"}}]}').hexdigest())

# Dropbox: hex HMAC-SHA256 keyed by the app secret.
out("dropbox", hs256("dropbox_app_secret", '{"list_folder":{"accounts":["dbid:AAH4f99"]},"delta":{"users":[12345]}}').hexdigest())

# Notion: "sha256=" hex keyed by the verification token.
out("notion", hs256("secret_notion_verification_token", '{"id":"evt_notion_1","type":"page.created","entity":{"id":"p1","type":"page"}}').hexdigest())

# Mux: "{t}.{body}" hex.
out("mux", hs256("mux_webhook_secret", f'{T}.{{"type":"video.asset.ready","id":"mux-evt-1","data":{{"id":"asset1"}}}}').hexdigest())

# Adyen: base64 HMAC-SHA256 with the hex-decoded key over the colon-joined item fields;
# banking webhooks: over the raw body.
key = bytes.fromhex("44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056")
out("adyen.1", b64(hs256(key, "7914073381342284::TestMerchant:ref-1:1130:EUR:AUTHORISATION:true").digest()))
out("adyen.2", b64(hs256(key, "8815073381342285::TestMerchant:ref-1:2000:EUR:AUTHORISATION:true").digest()))
out("adyen.raw", b64(hs256(key, '{"data":{"balancePlatform":"YOUR_BALANCE_PLATFORM"},"type":"balancePlatform.accountHolder.created"}').digest()))

# Contentful request verification: "METHOD\nPATH\nHEADERS\nBODY" with the toolkit's path
# encoding (query escaped like encodeURIComponent, then all like encodeURI).
secret = "contentful-signing-secret-0123456789abcdefghijklmnopqrstuvwxyz01"
path = "/contentful?space%253Ds1%2526a%253Db%252520c"
lst = "x-contentful-crn,x-contentful-signed-headers,x-contentful-timestamp"
hdr = f"x-contentful-crn:crn:contentful:::content:spaces/s1;x-contentful-signed-headers:{lst};x-contentful-timestamp:1700000000000"
out("contentful", hs256(secret, "POST\n" + path + "\n" + hdr + "\n" + '{"sys":{"id":"entry-1","type":"Entry"}}').hexdigest())

# SendGrid: ECDSA P-256/SHA-256 over timestamp + body, deterministic (RFC 6979) so the
# constants are reproducible; the key is base64 DER SubjectPublicKeyInfo.
try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import hashes

    def p256(scalar):
        return ec.derive_private_key(scalar, ec.SECP256R1())

    def spki(sk):
        return b64(sk.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    sk = p256(0x1122334455667788990011223344556677889900112233445566778899001122)
    out("sendgrid.key", spki(sk))
    out("sendgrid.other_key", spki(p256(0x2233445566778899001122334455667788990011223344556677889900112233)))
    body = b'[{"email":"a@example.test","event":"delivered","sg_event_id":"sg-1"}]\r\n'
    sig = sk.sign(f"{T}".encode() + body, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    out("sendgrid.sig", b64(sig))
except (ImportError, NameError):
    print("cryptography not installed: pip install cryptography")
