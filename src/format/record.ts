// Canonical records (docs/format.md section 2): the bytes the chain hashes.
// Decoding is structural: it checks lengths and framing, not whether a value is
// plausible, because a record is already chained on the device and rejecting it
// would wedge the logger (it could never send past it). Plausibility belongs to
// the reader that shows the data.

/** A format violation. `message` is one line, fit to be sent back as an HTTP reason. */
export class FormatError extends Error {
  readonly status: number;
  constructor(reason: string, status = 400) {
    super(reason);
    this.name = "FormatError";
    this.status = status;
  }
}

export const KIND = {
  sample: 1,
  boot: 2,
  config: 3,
  time: 4,
  alarm: 6,
  gap: 7,
} as const;

/** Payload length (uptime included) of every known kind. */
export const PAYLOAD_LEN: { readonly [kind: number]: number } = {
  [KIND.sample]: 12,
  [KIND.boot]: 9,
  [KIND.config]: 20,
  [KIND.time]: 13,
  [KIND.alarm]: 9,
  [KIND.gap]: 12,
};

export const RECORD_HEADER_LEN = 6; // seq u32, kind u8, len u8
export const UPTIME_LEN = 4;
/** 0xFFFFFFFF means "none" in an ack, so no record can carry it. */
export const MAX_SEQ = 0xfffffffe;

export const SFLAG_NO_READING = 0x01;
export const SFLAG_CONFIG_MISMATCH = 0x02;

export const BOOT_REASON = { powerOn: 0, softRestart: 1, watchdog: 2 } as const;
export const TIME_SOURCE = { gps: 1, network: 2, simulator: 3 } as const;
export const ALARM_TYPE = { aboveBand: 1, belowBand: 2, backInBand: 3 } as const;

interface RecordBase {
  seq: number;
  /** ms since this boot (device clock) */
  uptime: number;
}
export interface SampleRecord extends RecordBase {
  kind: typeof KIND.sample;
  /** thermocouple, 1/128 C per count (19-bit signed) */
  tc: number;
  /** cold junction, 1/64 C per count (14-bit signed) */
  cj: number;
  /** MAX31856 fault status register */
  sr: number;
  sflags: number;
}
export interface BootRecord extends RecordBase {
  kind: typeof KIND.boot;
  boot: number;
  reason: number;
}
export interface ConfigRecord extends RecordBase {
  kind: typeof KIND.config;
  /** first 16 bytes of SHA-256 of the configuration text */
  hash: Buffer;
}
export interface TimeRecord extends RecordBase {
  kind: typeof KIND.time;
  /** UTC ms since 1970 at `uptime` (utc_hi:utc_lo on the wire) */
  utc: number;
  source: number;
}
export interface AlarmRecord extends RecordBase {
  kind: typeof KIND.alarm;
  type: number;
  tc: number;
}
export interface GapRecord extends RecordBase {
  kind: typeof KIND.gap;
  first: number;
  last: number;
}
/** A kind this reader does not know: kept whole so it can be stored and re-hashed. */
export interface UnknownRecord extends RecordBase {
  kind: number;
  /** payload bytes after `uptime` */
  payload: Buffer;
}

export type KnownRecord =
  | SampleRecord
  | BootRecord
  | ConfigRecord
  | TimeRecord
  | AlarmRecord
  | GapRecord;
export type LogRecord = KnownRecord | UnknownRecord;

export function isKnown(r: LogRecord): r is KnownRecord {
  return PAYLOAD_LEN[r.kind] !== undefined && !("payload" in r);
}
export function isSample(r: LogRecord): r is SampleRecord {
  return r.kind === KIND.sample && !("payload" in r);
}

/** A sample with any fault bit is shown as a fault, never as a temperature. */
export function isFaulted(s: Pick<SampleRecord, "sr" | "sflags">): boolean {
  return s.sr !== 0 || s.sflags !== 0;
}
export function tcToCelsius(tc: number): number {
  return tc / 128;
}
export function cjToCelsius(cj: number): number {
  return cj / 64;
}
/** Thermocouple temperature in C, or null when the sample is faulted. */
export function sampleCelsius(s: SampleRecord): number | null {
  return isFaulted(s) ? null : tcToCelsius(s.tc);
}

function checkInt(v: number, min: number, max: number, name: string): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  }
}
const U8 = 0xff;
const U32 = 0xffffffff;

export function encodeRecord(r: LogRecord): Buffer {
  checkInt(r.seq, 0, MAX_SEQ, "seq");
  checkInt(r.kind, 0, U8, "kind");
  checkInt(r.uptime, 0, U32, "uptime");
  let body: Buffer; // payload after uptime
  if ("payload" in r) {
    body = r.payload;
  } else {
    const k = r as KnownRecord;
    body = Buffer.alloc(PAYLOAD_LEN[k.kind] - UPTIME_LEN);
    switch (k.kind) {
      case KIND.sample:
        checkInt(k.tc, -0x80000000, 0x7fffffff, "tc");
        checkInt(k.cj, -0x8000, 0x7fff, "cj");
        checkInt(k.sr, 0, U8, "sr");
        checkInt(k.sflags, 0, U8, "sflags");
        body.writeInt32LE(k.tc, 0);
        body.writeInt16LE(k.cj, 4);
        body.writeUInt8(k.sr, 6);
        body.writeUInt8(k.sflags, 7);
        break;
      case KIND.boot:
        checkInt(k.boot, 0, U32, "boot");
        checkInt(k.reason, 0, U8, "reason");
        body.writeUInt32LE(k.boot, 0);
        body.writeUInt8(k.reason, 4);
        break;
      case KIND.config:
        if (k.hash.length !== 16) throw new RangeError(`config hash must be 16 bytes, got ${k.hash.length}`);
        k.hash.copy(body, 0);
        break;
      case KIND.time:
        checkInt(k.utc, 0, Number.MAX_SAFE_INTEGER, "utc");
        checkInt(k.source, 0, U8, "source");
        body.writeUInt32LE(k.utc % 0x100000000, 0);
        body.writeUInt32LE(Math.floor(k.utc / 0x100000000), 4);
        body.writeUInt8(k.source, 8);
        break;
      case KIND.alarm:
        checkInt(k.type, 0, U8, "type");
        checkInt(k.tc, -0x80000000, 0x7fffffff, "tc");
        body.writeUInt8(k.type, 0);
        body.writeInt32LE(k.tc, 1);
        break;
      case KIND.gap:
        checkInt(k.first, 0, U32, "first");
        checkInt(k.last, 0, U32, "last");
        body.writeUInt32LE(k.first, 0);
        body.writeUInt32LE(k.last, 4);
        break;
    }
  }
  const len = UPTIME_LEN + body.length;
  if (len > U8) throw new RangeError(`payload of ${len} bytes does not fit the u8 len field`);
  const out = Buffer.alloc(RECORD_HEADER_LEN + len);
  out.writeUInt32LE(r.seq, 0);
  out.writeUInt8(r.kind, 4);
  out.writeUInt8(len, 5);
  out.writeUInt32LE(r.uptime, 6);
  body.copy(out, RECORD_HEADER_LEN + UPTIME_LEN);
  return out;
}

/** Decodes exactly one record; `buf` must hold that record and nothing else. */
export function decodeRecord(buf: Buffer): LogRecord {
  const { records } = parseRecords(buf);
  if (records.length !== 1) throw new FormatError(`expected one record, found ${records.length}`);
  return records[0];
}

function decodeFields(seq: number, kind: number, p: Buffer): LogRecord {
  const uptime = p.readUInt32LE(0);
  switch (kind) {
    case KIND.sample:
      return { seq, kind, uptime, tc: p.readInt32LE(4), cj: p.readInt16LE(8), sr: p[10], sflags: p[11] };
    case KIND.boot:
      return { seq, kind, uptime, boot: p.readUInt32LE(4), reason: p[8] };
    case KIND.config:
      return { seq, kind, uptime, hash: Buffer.from(p.subarray(4, 20)) };
    case KIND.time:
      return { seq, kind, uptime, utc: p.readUInt32LE(8) * 0x100000000 + p.readUInt32LE(4), source: p[12] };
    case KIND.alarm:
      return { seq, kind, uptime, type: p[4], tc: p.readInt32LE(5) };
    case KIND.gap:
      return { seq, kind, uptime, first: p.readUInt32LE(4), last: p.readUInt32LE(8) };
    default:
      return { seq, kind, uptime, payload: Buffer.from(p.subarray(UPTIME_LEN)) };
  }
}

export interface ParsedRecords {
  records: LogRecord[];
  /** canonical bytes of each record (copies, safe to keep) */
  raw: Buffer[];
}

/**
 * Walks a records area that must be filled exactly by whole records.
 * With `firstSeq`, the records must also be numbered consecutively from it.
 */
export function parseRecords(buf: Buffer, firstSeq?: number): ParsedRecords {
  const records: LogRecord[] = [];
  const raw: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    const i = records.length;
    const left = buf.length - off;
    if (left < RECORD_HEADER_LEN) {
      throw new FormatError(`record ${i} at offset ${off}: truncated header (${left} of ${RECORD_HEADER_LEN} bytes)`);
    }
    const seq = buf.readUInt32LE(off);
    const kind = buf[off + 4];
    const len = buf[off + 5];
    const where = `record ${i} (seq ${seq}, kind ${kind}) at offset ${off}`;
    if (RECORD_HEADER_LEN + len > left) {
      throw new FormatError(`${where}: payload of ${len} bytes runs past the end (${left - RECORD_HEADER_LEN} left)`);
    }
    if (len < UPTIME_LEN) throw new FormatError(`${where}: payload of ${len} bytes has no uptime`);
    const want = PAYLOAD_LEN[kind];
    // Known kinds have a fixed size in v1: anything else is a writer bug, not an extension.
    if (want !== undefined && len !== want) {
      throw new FormatError(`${where}: payload is ${len} bytes, kind ${kind} needs ${want}`);
    }
    if (seq > MAX_SEQ) throw new FormatError(`${where}: seq 0xffffffff is reserved`);
    if (firstSeq !== undefined && seq !== firstSeq + i) {
      throw new FormatError(`${where}: seq not consecutive, expected ${firstSeq + i}`);
    }
    const end = off + RECORD_HEADER_LEN + len;
    records.push(decodeFields(seq, kind, buf.subarray(off + RECORD_HEADER_LEN, end)));
    raw.push(Buffer.from(buf.subarray(off, end)));
    off = end;
  }
  return { records, raw };
}
