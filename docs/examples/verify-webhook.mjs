// Checking a Daybreak webhook before trusting it: reference code for receivers (Node.js 18+,
// no dependencies). Copy it; docs/integrating.md explains each rule.
//
//   const verifier = new WebhookVerifier(Buffer.from("the secret you registered"));
//   const outcome = verifier.check(req.headers, rawBody); // throws Refused, or "new"/"duplicate"
//   if (outcome === "new") handle(JSON.parse(rawBody));
//   // answer 2xx for "new" and "duplicate" alike; 401 for Refused
import { createHmac, timingSafeEqual } from "node:crypto";

export const TOLERANCE_S = 300; // a timestamp further than this from your clock is refused

export class Refused extends Error {}

export class WebhookVerifier {
  #secret;
  #toleranceS;
  #seen = new Map(); // delivery id -> when it was first accepted

  constructor(secret, { toleranceS = TOLERANCE_S } = {}) {
    this.#secret = secret;
    this.#toleranceS = toleranceS;
  }

  // headers: an object with lower-case names (as Node's http module gives them);
  // body: the raw request body as a Buffer, before any JSON parsing
  check(headers, body, now = Date.now() / 1000) {
    const timestamp = String(headers["x-daybreak-timestamp"] ?? "");
    const signature = String(headers["x-daybreak-signature"] ?? "");
    const delivery = String(headers["x-daybreak-delivery"] ?? "");
    if (!/^\d+$/.test(timestamp) || !delivery) throw new Refused("missing or malformed headers");
    const clock = Math.floor(now);
    if (Math.abs(clock - Number(timestamp)) > this.#toleranceS) {
      throw new Refused("timestamp outside the tolerance: a replay, or a wrong clock");
    }
    const mac = createHmac("sha256", this.#secret);
    mac.update(`${timestamp}.`);
    mac.update(body);
    const expected = Buffer.from(`sha256=${mac.digest("hex")}`);
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new Refused("bad signature");
    }
    for (const [id, at] of this.#seen) {
      if (at < clock - 2 * this.#toleranceS) this.#seen.delete(id);
    }
    if (this.#seen.has(delivery)) return "duplicate";
    this.#seen.set(delivery, clock);
    return "new";
  }
}
