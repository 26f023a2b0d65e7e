/**
 * Job ids: ULIDs (26 Crockford base32 chars, time-ordered), valid as subject tokens and
 * KV keys. Callers may bring their own id (any token: letters, digits, '_' and '-').
 */
import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = -1;
let lastRandom: number[] = [];

/** A new ULID; monotonic within one millisecond in this process. */
export function newJobId(now = Date.now()): string {
  let random: number[];
  if (now === lastTime) {
    random = [...lastRandom];
    for (let i = random.length - 1; i >= 0; i--) {
      random[i] = ((random[i] as number) + 1) % 32;
      if (random[i] !== 0) break;
    }
  } else {
    random = [...randomBytes(16)].map((b) => b % 32);
  }
  lastTime = now;
  lastRandom = random;
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + random.map((n) => ALPHABET[n]).join("");
}
