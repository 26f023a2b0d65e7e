/**
 * Job ids: ULIDs (26 Crockford base32 chars, time-ordered), valid as subject tokens and
 * KV keys. Callers may bring their own id (any token: letters, digits, '_' and '-').
 */
import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = -1;
let timePart = "";
/** The random part of the last id, one base32 digit per byte. */
const random = new Uint8Array(16);
/** Random bytes drawn 4 KiB at a time (one system call per 256 milliseconds with ids). */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

/** A new ULID; monotonic within one millisecond in this process. */
export function newJobId(now = Date.now()): string {
  if (now === lastTime) {
    for (let i = random.length - 1; i >= 0; i--) {
      random[i] = ((random[i] as number) + 1) % 32;
      if (random[i] !== 0) break;
    }
  } else {
    if (poolAt + random.length > pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    for (let i = 0; i < random.length; i++) random[i] = (pool[poolAt++] as number) % 32;
    lastTime = now;
    let time = "";
    let t = now;
    for (let i = 0; i < 10; i++) {
      time = ALPHABET[t % 32] + time;
      t = Math.floor(t / 32);
    }
    timePart = time;
  }
  let id = timePart;
  for (let i = 0; i < random.length; i++) id += ALPHABET[random[i] as number];
  return id;
}
