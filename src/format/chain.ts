// The hash chain (docs/format.md section 3) and device identifiers.
import { createHash } from "node:crypto";

export const CHAIN_TAG = "coldtrace-chain-v1";
export const DEVID_LEN = 8;
export const HEAD_LEN = 32;

const DEVID_HEX = /^[0-9a-f]{16}$/;

/** devid as 8 bytes; accepts the bytes or the 16 lower-case hex digits shown to people. */
export function devidBytes(devid: Buffer | string): Buffer {
  if (typeof devid === "string") {
    if (!DEVID_HEX.test(devid)) throw new RangeError(`devid must be 16 lower-case hex digits, got "${devid}"`);
    return Buffer.from(devid, "hex");
  }
  if (devid.length !== DEVID_LEN) throw new RangeError(`devid must be ${DEVID_LEN} bytes, got ${devid.length}`);
  return devid;
}

export function devidHex(devid: Buffer | string): string {
  return devidBytes(devid).toString("hex");
}

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
}

/** head[-1] = SHA-256("coldtrace-chain-v1" || devid) */
export function genesisHead(devid: Buffer | string): Buffer {
  return sha256(Buffer.from(CHAIN_TAG, "ascii"), devidBytes(devid));
}

/** head[n] = SHA-256(head[n-1] || record[n]) */
export function nextHead(prev: Buffer, record: Buffer): Buffer {
  if (prev.length !== HEAD_LEN) throw new RangeError(`head must be ${HEAD_LEN} bytes, got ${prev.length}`);
  return sha256(prev, record);
}

/** The head after each record of a run that follows `prev`. */
export function chainHeads(prev: Buffer, records: Buffer[]): Buffer[] {
  const heads: Buffer[] = [];
  let h = prev;
  for (const r of records) {
    h = nextHead(h, r);
    heads.push(h);
  }
  return heads;
}

/** The head after the last record of a run (`prev` itself for an empty run). */
export function hashRun(prev: Buffer, records: Buffer[]): Buffer {
  let h = prev;
  for (const r of records) h = nextHead(h, r);
  return h;
}
