// Batches (device -> server) and acknowledgements (server -> device),
// docs/format.md sections 5 and 6.
import { createHmac, timingSafeEqual } from "node:crypto";
import { DEVID_LEN, HEAD_LEN, devidBytes } from "./chain.js";
import { FormatError, MAX_SEQ, parseRecords, type LogRecord } from "./record.js";

export const BATCH_MAGIC = "CTB1";
export const BATCH_HEADER_LEN = 52;
export const MAC_LEN = 32;
/** header + mac: a batch body is exactly this plus rec_len */
export const BATCH_OVERHEAD = BATCH_HEADER_LEN + MAC_LEN;
export const BATCH_MAX_COUNT = 1000;
export const BATCH_MAX_REC_LEN = 0xffff;

export const ACK_MAGIC = "CTA1";
export const ACK_TAG = "coldtrace-ack-v1";
export const ACK_LEN = 80;
export const ACK_SIGNED_LEN = 48;
/** ack_seq on the wire when the server holds nothing for the device */
export const ACK_NONE = 0xffffffff;
export const DEVKEY_LEN = 32;

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function checkKey(devkey: Buffer): void {
  if (devkey.length !== DEVKEY_LEN) throw new RangeError(`devkey must be ${DEVKEY_LEN} bytes, got ${devkey.length}`);
}

function checkHead(head: Buffer, name: string): void {
  if (head.length !== HEAD_LEN) throw new RangeError(`${name} must be ${HEAD_LEN} bytes, got ${head.length}`);
}

function macEquals(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface BatchInput {
  devid: Buffer | string;
  devkey: Buffer;
  firstSeq: number;
  prevHead: Buffer;
  /** canonical record bytes */
  records: Buffer[];
}

/**
 * Frames and signs a batch. It checks the framing limits only, not the records
 * themselves, so tests can build batches the server must refuse.
 */
export function encodeBatch(b: BatchInput): Buffer {
  checkKey(b.devkey);
  checkHead(b.prevHead, "prevHead");
  if (!Number.isInteger(b.firstSeq) || b.firstSeq < 0 || b.firstSeq > MAX_SEQ) {
    throw new RangeError(`firstSeq out of range: ${b.firstSeq}`);
  }
  const count = b.records.length;
  if (count < 1 || count > BATCH_MAX_COUNT) throw new RangeError(`a batch holds 1..${BATCH_MAX_COUNT} records, got ${count}`);
  const recs = Buffer.concat(b.records);
  if (recs.length > BATCH_MAX_REC_LEN) throw new RangeError(`${recs.length} bytes of records exceed rec_len u16`);
  const head = Buffer.alloc(BATCH_HEADER_LEN);
  head.write(BATCH_MAGIC, 0, "ascii");
  devidBytes(b.devid).copy(head, 4);
  head.writeUInt32LE(b.firstSeq, 12);
  head.writeUInt16LE(count, 16);
  head.writeUInt16LE(recs.length, 18);
  b.prevHead.copy(head, 20);
  const signed = Buffer.concat([head, recs]);
  return Buffer.concat([signed, hmac(b.devkey, signed)]);
}

export interface DecodedBatch {
  devid: string;
  firstSeq: number;
  /** seq of the last record */
  lastSeq: number;
  count: number;
  prevHead: Buffer;
  records: LogRecord[];
  /** canonical bytes of each record */
  recordBytes: Buffer[];
  /** bytes covered by the mac */
  signed: Buffer;
  mac: Buffer;
}

/** Parses and checks everything but the mac (which needs the key). Throws FormatError (400). */
export function decodeBatch(body: Buffer): DecodedBatch {
  if (body.length === 0) throw new FormatError("empty body");
  if (body.length >= 4 && body.toString("latin1", 0, 4) !== BATCH_MAGIC) {
    throw new FormatError(`bad magic: expected "${BATCH_MAGIC}"`);
  }
  if (body.length < BATCH_OVERHEAD) {
    throw new FormatError(`wrong length: ${body.length} bytes, a batch has at least ${BATCH_OVERHEAD}`);
  }
  const firstSeq = body.readUInt32LE(12);
  const count = body.readUInt16LE(16);
  const recLen = body.readUInt16LE(18);
  if (count < 1 || count > BATCH_MAX_COUNT) throw new FormatError(`count ${count} out of range 1..${BATCH_MAX_COUNT}`);
  if (body.length !== BATCH_OVERHEAD + recLen) {
    throw new FormatError(`wrong length: ${body.length} bytes, rec_len ${recLen} needs ${BATCH_OVERHEAD + recLen}`);
  }
  const recEnd = BATCH_HEADER_LEN + recLen;
  const { records, raw } = parseRecords(body.subarray(BATCH_HEADER_LEN, recEnd), firstSeq);
  if (records.length !== count) {
    throw new FormatError(`count says ${count} records, rec_len holds ${records.length}`);
  }
  return {
    devid: body.toString("hex", 4, 4 + DEVID_LEN),
    firstSeq,
    lastSeq: firstSeq + count - 1,
    count,
    prevHead: Buffer.from(body.subarray(20, 52)),
    records,
    recordBytes: raw,
    signed: Buffer.from(body.subarray(0, recEnd)),
    mac: Buffer.from(body.subarray(recEnd)),
  };
}

export function verifyBatchMac(batch: Pick<DecodedBatch, "signed" | "mac">, devkey: Buffer): boolean {
  checkKey(devkey);
  return macEquals(hmac(devkey, batch.signed), batch.mac);
}

/** ackkey = HMAC-SHA256(devkey, "coldtrace-ack-v1"): a separate key per direction, so a mac made for one can never pass as the other. */
export function deriveAckKey(devkey: Buffer): Buffer {
  checkKey(devkey);
  return hmac(devkey, Buffer.from(ACK_TAG, "ascii"));
}

export interface AckInput {
  devid: Buffer | string;
  devkey: Buffer;
  /** last durably stored seq, or null when the server holds nothing */
  ackSeq: number | null;
  /** head[ackSeq]; ignored (zeros) when ackSeq is null */
  head?: Buffer | null;
}

export function encodeAck(a: AckInput): Buffer {
  const out = Buffer.alloc(ACK_LEN);
  out.write(ACK_MAGIC, 0, "ascii");
  devidBytes(a.devid).copy(out, 4);
  if (a.ackSeq === null) {
    out.writeUInt32LE(ACK_NONE, 12);
  } else {
    if (!Number.isInteger(a.ackSeq) || a.ackSeq < 0 || a.ackSeq > MAX_SEQ) throw new RangeError(`ackSeq out of range: ${a.ackSeq}`);
    if (!a.head) throw new RangeError("head is required with an ackSeq");
    checkHead(a.head, "head");
    out.writeUInt32LE(a.ackSeq, 12);
    a.head.copy(out, 16);
  }
  hmac(deriveAckKey(a.devkey), out.subarray(0, ACK_SIGNED_LEN)).copy(out, ACK_SIGNED_LEN);
  return out;
}

export interface DecodedAck {
  devid: string;
  ackSeq: number | null;
  head: Buffer | null;
  mac: Buffer;
  /** true when a devkey was given (a mac that does not verify throws) */
  verified: boolean;
}

/**
 * Parses an ack. With `devkey` the mac must verify (FormatError otherwise);
 * without it the ack is only parsed, for inspection tools.
 */
export function decodeAck(body: Buffer, devkey?: Buffer): DecodedAck {
  if (body.length !== ACK_LEN) throw new FormatError(`wrong length: ack is ${ACK_LEN} bytes, got ${body.length}`);
  if (body.toString("latin1", 0, 4) !== ACK_MAGIC) throw new FormatError(`bad magic: expected "${ACK_MAGIC}"`);
  const raw = body.readUInt32LE(12);
  const head = Buffer.from(body.subarray(16, 48));
  const mac = Buffer.from(body.subarray(ACK_SIGNED_LEN));
  if (raw === ACK_NONE && head.some((x) => x !== 0)) throw new FormatError("ack with no seq must carry a zero head");
  if (devkey) {
    const want = hmac(deriveAckKey(devkey), body.subarray(0, ACK_SIGNED_LEN));
    if (!macEquals(want, mac)) throw new FormatError("ack mac does not verify", 401);
  }
  return {
    devid: body.toString("hex", 4, 12),
    ackSeq: raw === ACK_NONE ? null : raw,
    head: raw === ACK_NONE ? null : head,
    mac,
    verified: devkey !== undefined,
  };
}
