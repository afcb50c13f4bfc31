// Flash blocks and the log bookkeeping values in the settings store
// (docs/format.md section 4). Host tools use these to read a device's flash
// image and to produce vectors; the firmware has its own implementation.
import { HEAD_LEN, hashRun } from "./chain.js";
import { FormatError, MAX_SEQ, parseRecords, type LogRecord } from "./record.js";

/** Settings values over ~200 bytes cannot be read back, so blocks stay at or under this. */
export const BLOCK_MAX_LEN = 192;
export const BLOCK_HEADER_LEN = 36;
export const LOG_META_KEY = "lgmeta";
export const LOG_META_LEN = 12;
export const LOG_ACK_KEY = "lgack";
export const LOG_ACK_LEN = 36;

/** Settings key of block `n`: "lg" + 8 lower-case hex digits. */
export function blockKey(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`block number out of range: ${n}`);
  return "lg" + n.toString(16).padStart(8, "0");
}

export interface BlockInput {
  firstSeq: number;
  /** head[firstSeq - 1] */
  prevHead: Buffer;
  /** canonical record bytes, consecutive seq from firstSeq */
  records: Buffer[];
}

export function encodeBlock(b: BlockInput): Buffer {
  if (!Number.isInteger(b.firstSeq) || b.firstSeq < 0 || b.firstSeq > MAX_SEQ) {
    throw new RangeError(`firstSeq out of range: ${b.firstSeq}`);
  }
  if (b.prevHead.length !== HEAD_LEN) throw new RangeError(`prevHead must be ${HEAD_LEN} bytes`);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(b.firstSeq, 0);
  const out = Buffer.concat([head, b.prevHead, ...b.records]);
  if (out.length > BLOCK_MAX_LEN) throw new RangeError(`block of ${out.length} bytes exceeds ${BLOCK_MAX_LEN}`);
  return out;
}

export interface DecodedBlock {
  firstSeq: number;
  prevHead: Buffer;
  records: LogRecord[];
  recordBytes: Buffer[];
  /** seq of the last record (firstSeq - 1 for an empty block) */
  lastSeq: number;
  /** head after the last record: what the device recomputes at start */
  head: Buffer;
}

export function decodeBlock(buf: Buffer): DecodedBlock {
  if (buf.length < BLOCK_HEADER_LEN) throw new FormatError(`block of ${buf.length} bytes is shorter than its ${BLOCK_HEADER_LEN}-byte header`);
  if (buf.length > BLOCK_MAX_LEN) throw new FormatError(`block of ${buf.length} bytes exceeds ${BLOCK_MAX_LEN}`);
  const firstSeq = buf.readUInt32LE(0);
  const prevHead = Buffer.from(buf.subarray(4, BLOCK_HEADER_LEN));
  const { records, raw } = parseRecords(buf.subarray(BLOCK_HEADER_LEN), firstSeq);
  return {
    firstSeq,
    prevHead,
    records,
    recordBytes: raw,
    lastSeq: firstSeq + records.length - 1,
    head: hashRun(prevHead, raw),
  };
}

export interface LogMeta {
  firstBlock: number;
  lastBlock: number;
  boot: number;
}

export function encodeLogMeta(m: LogMeta): Buffer {
  const out = Buffer.alloc(LOG_META_LEN);
  out.writeUInt32LE(m.firstBlock, 0);
  out.writeUInt32LE(m.lastBlock, 4);
  out.writeUInt32LE(m.boot, 8);
  return out;
}

export function decodeLogMeta(buf: Buffer): LogMeta {
  if (buf.length !== LOG_META_LEN) throw new FormatError(`${LOG_META_KEY} must be ${LOG_META_LEN} bytes, got ${buf.length}`);
  return { firstBlock: buf.readUInt32LE(0), lastBlock: buf.readUInt32LE(4), boot: buf.readUInt32LE(8) };
}

export interface LogAck {
  ackSeq: number;
  head: Buffer;
}

export function encodeLogAck(a: LogAck): Buffer {
  if (a.head.length !== HEAD_LEN) throw new RangeError(`head must be ${HEAD_LEN} bytes`);
  const out = Buffer.alloc(LOG_ACK_LEN);
  out.writeUInt32LE(a.ackSeq, 0);
  a.head.copy(out, 4);
  return out;
}

export function decodeLogAck(buf: Buffer): LogAck {
  if (buf.length !== LOG_ACK_LEN) throw new FormatError(`${LOG_ACK_KEY} must be ${LOG_ACK_LEN} bytes, got ${buf.length}`);
  return { ackSeq: buf.readUInt32LE(0), head: Buffer.from(buf.subarray(4)) };
}
