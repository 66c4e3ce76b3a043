// Sign a webhook request with a provider's official npm SDK and print what to send.
//
// Usage: node sign.mjs PROVIDER SECRET BODY_FILE URL [EXTRA]
// Prints JSON {"headers": {...}, "body": "..."} ("body" only where signing changes it:
// Adyen's signatures live inside the body). Where the SDK only verifies (SendGrid, Mux)
// the request is signed with node:crypto by the documented construction and the SDK's
// verifier must accept it before anything is printed: the SDK is then the oracle that the
// construction is the provider's. SECRET for SendGrid is a PKCS#8 PEM private key file.
import { readFileSync } from "node:fs";
import crypto from "node:crypto";

const [provider, secret, bodyFile, url, extra] = process.argv.slice(2);
const body = readFileSync(bodyFile, "utf8");
const now = Date.now();
const target = new URL(url);
let headers = {};
let outBody;

function fail(message) {
  console.error(message);
  process.exit(1);
}

switch (provider) {
  case "sendgrid": {
    const { EventWebhook } = await import("@sendgrid/eventwebhook");
    const privateKey = crypto.createPrivateKey(readFileSync(secret, "utf8"));
    const publicDer = crypto.createPublicKey(privateKey).export({ type: "spki", format: "der" });
    const ts = String(Math.floor(now / 1000));
    const signature = crypto.sign("sha256", Buffer.from(ts + body), privateKey).toString("base64");
    const ew = new EventWebhook();
    const pem = `-----BEGIN PUBLIC KEY-----\n${publicDer.toString("base64")}\n-----END PUBLIC KEY-----`;
    if (!ew.verifySignature(ew.convertPublicKeyToECDSA(pem), body, signature, ts)) {
      fail("@sendgrid/eventwebhook refused the signature");
    }
    headers = {
      "X-Twilio-Email-Event-Webhook-Signature": signature,
      "X-Twilio-Email-Event-Webhook-Timestamp": ts,
      "Content-Type": "application/json",
    };
    break;
  }
  case "adyen": {
    const { hmacValidator: HmacValidator } = await import("@adyen/api-library");
    const validator = new HmacValidator();
    const notification = JSON.parse(body);
    for (const { NotificationRequestItem: item } of notification.notificationItems) {
      item.additionalData = { ...(item.additionalData ?? {}), hmacSignature: validator.calculateHmac(item, secret) };
      if (!validator.validateHMAC(item, secret)) fail("@adyen/api-library refused its own HMAC");
    }
    outBody = JSON.stringify(notification);
    headers = { "Content-Type": "application/json" };
    break;
  }
  case "contentful": {
    const { signRequest } = await import("@contentful/node-apps-toolkit");
    const signed = signRequest(
      secret,
      {
        method: "POST",
        path: target.pathname + target.search,
        headers: { "x-contentful-topic": "ContentManagement.Entry.publish" },
        body,
      },
      now,
      { spaceId: "space-1", envId: "master" },
    );
    headers = { ...signed, "x-contentful-topic": "ContentManagement.Entry.publish", "Content-Type": "application/json" };
    break;
  }
  case "mux": {
    const { default: Mux } = await import("@mux/mux-node");
    const ts = Math.floor(now / 1000);
    const v1 = crypto.createHmac("sha256", secret).update(`${ts}.${body}`).digest("hex");
    headers = { "Mux-Signature": `t=${ts},v1=${v1}`, "Content-Type": "application/json" };
    const mux = new Mux({ tokenId: "unused", tokenSecret: "unused" });
    await mux.webhooks.verifySignature(body, headers, secret);
    break;
  }
  case "hubspot": {
    const { Signature } = await import("@hubspot/api-client");
    const version = extra ?? "v1";
    const signature = Signature.getSignature("POST", version, { clientSecret: secret, requestBody: body, url });
    if (!Signature.isValid({ signature, clientSecret: secret, requestBody: body, url, method: "POST", signatureVersion: version })) {
      fail("@hubspot/api-client refused its own signature");
    }
    headers = { "X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version, "Content-Type": "application/json" };
    break;
  }
  case "notion": {
    const { signWebhookPayload } = await import("@notionhq/client");
    headers = {
      "X-Notion-Signature": await signWebhookPayload({ body, verificationToken: secret }),
      "Content-Type": "application/json",
    };
    break;
  }
  default:
    fail(`unknown provider ${provider}`);
}

console.log(JSON.stringify(outBody === undefined ? { headers } : { headers, body: outBody }));
