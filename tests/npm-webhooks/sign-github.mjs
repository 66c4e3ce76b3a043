// Sign a body with GitHub's official @octokit/webhooks-methods and print the headers.
// Usage: node sign-github.mjs SECRET BODY_FILE
import { readFileSync } from "node:fs";
import { sign } from "@octokit/webhooks-methods";

const [secret, bodyFile] = process.argv.slice(2);
const body = readFileSync(bodyFile, "utf8");
const signature = await sign(secret, body);
console.log(JSON.stringify({ headers: { "X-Hub-Signature-256": signature, "Content-Type": "application/json" } }));
