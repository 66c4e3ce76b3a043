"""Sign a webhook body with a provider's OFFICIAL Python SDK and print the request to send.

Usage: sign.py PROVIDER SECRET BODY_FILE URL
Prints JSON: {"headers": {...}, "url": "..."}. roomgate's tests post exactly this and
expect 202: an independent implementation agreeing with roomgate's verifier.
"""
import datetime
import json
import sys
import time
import urllib.parse

provider, secret, body_file, url = sys.argv[1:5]
body = open(body_file, "rb").read()
text = body.decode("utf-8")
now = int(time.time())
headers = {}

if provider == "stripe":
    import stripe

    headers["Stripe-Signature"] = stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=now)
    headers["Content-Type"] = "application/json"
elif provider == "slack":
    from slack_sdk.signature import SignatureVerifier

    ts = str(now)
    headers["X-Slack-Request-Timestamp"] = ts
    headers["X-Slack-Signature"] = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    headers["Content-Type"] = "application/json"
elif provider == "twilio":
    from twilio.request_validator import RequestValidator

    params = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    headers["X-Twilio-Signature"] = RequestValidator(secret).compute_signature(url, params)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
elif provider in ("standardwebhooks", "svix"):
    ts = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    msg_id = "msg_" + provider + "_" + str(now)
    if provider == "svix":
        from svix.webhooks import Webhook

        sig = Webhook(secret).sign(msg_id, ts, text)
        prefix = "svix"
    else:
        from standardwebhooks.webhooks import Webhook

        sig = Webhook(secret).sign(msg_id, ts, text)
        prefix = "webhook"
    headers[prefix + "-id"] = msg_id
    headers[prefix + "-timestamp"] = str(now)
    headers[prefix + "-signature"] = sig
    headers["Content-Type"] = "application/json"
else:
    sys.exit("unknown provider " + provider)

print(json.dumps({"headers": headers, "url": url}))
