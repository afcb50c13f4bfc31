// Host format code against the shared vectors (docs/vectors/format-v1.json).
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import {
  ACK_NONE, FormatError, KIND, blockKey, chainHeads, cjToCelsius, decodeAck, decodeBatch, decodeBlock,
  decodeLogAck, decodeLogMeta, decodeRecord, deriveAckKey, encodeAck, encodeBatch, encodeBlock, encodeLogAck,
  encodeLogMeta, encodeRecord, genesisHead, hashRun, isFaulted, isKnown, isSample, nextHead, parseRecords,
  sampleCelsius, tcToCelsius, verifyBatchMac, type LogRecord, type SampleRecord,
} from "../src/format/index.js";
import { DS_PATH, JSON_PATH, buildVectors } from "../src/tools/gen-vectors.js";

const root = new URL("../", import.meta.url);
const V = JSON.parse(readFileSync(new URL(JSON_PATH, root), "utf8"));
const hex = (s: string) => Buffer.from(s, "hex");
const devkey = hex(V.devkey);

/** A vector record as the typed object the host API uses. */
function typed(v: Record<string, unknown>): LogRecord {
  const { hex: _h, head: _hd, utcLo: _lo, utcHi: _hi, ...r } = v;
  if (typeof r.hash === "string") r.hash = hex(r.hash);
  if (typeof r.payload === "string") r.payload = hex(r.payload);
  return r as unknown as LogRecord;
}

describe("generated files", () => {
  test("both vector files are up to date (run: npx tsx src/tools/gen-vectors.ts)", () => {
    const { json, ds } = buildVectors();
    expect(readFileSync(new URL(JSON_PATH, root), "utf8")).toBe(json);
    expect(readFileSync(new URL(DS_PATH, root), "utf8")).toBe(ds);
    expect(Buffer.byteLength(ds)).toBeLessThan(6000);
  });
});

describe("records", () => {
  test("covers every kind, negative values and faults", () => {
    const kinds = new Set(V.records.map((r: { kind: number }) => r.kind));
    for (const k of Object.values(KIND)) expect(kinds).toContain(k);
    expect(V.records.some((r: SampleRecord) => r.kind === 1 && r.tc < 0 && r.cj < 0)).toBe(true);
    expect(V.records.some((r: SampleRecord) => r.kind === 1 && isFaulted(r))).toBe(true);
  });

  const rows: [number, Record<string, unknown> & { hex: string }][] = V.records.map((r: { seq: number }) => [r.seq, r]);
  test.each(rows)("seq %i encodes and decodes", (_seq, v) => {
    const rec = typed(v);
    expect(encodeRecord(rec).toString("hex")).toBe(v.hex);
    expect(decodeRecord(hex(v.hex))).toEqual(rec);
  });

  test("parseRecords walks the whole chain and checks seq", () => {
    const all = Buffer.concat(V.records.map((r: { hex: string }) => hex(r.hex)));
    const { records, raw } = parseRecords(all, 0);
    expect(records.map((r) => r.seq)).toEqual(V.records.map((r: { seq: number }) => r.seq));
    expect(raw.map((b) => b.toString("hex"))).toEqual(V.records.map((r: { hex: string }) => r.hex));
    expect(() => parseRecords(all, 1)).toThrow(/seq not consecutive, expected 1/);
  });

  test("unknown kinds are skipped by len and kept whole", () => {
    const unknown = decodeRecord(hex(V.records[16].hex));
    expect(isKnown(unknown)).toBe(false);
    expect(encodeRecord(unknown).toString("hex")).toBe(V.records[16].hex);
  });

  test("truncation and bad lengths throw a one-line FormatError", () => {
    const s = hex(V.records[3].hex);
    const cases: [Buffer, RegExp][] = [
      [s.subarray(0, 4), /truncated header/],
      [s.subarray(0, s.length - 1), /runs past the end/],
      [Buffer.concat([s, s.subarray(0, 3)]), /truncated header/],
      [Buffer.from("0000000001020000", "hex"), /no uptime/],
      [Buffer.from("00000000010b0000000000000000000000", "hex"), /needs 12/],
      [Buffer.from("ffffffff090400000000", "hex"), /reserved/],
    ];
    for (const [buf, re] of cases) {
      let err: unknown;
      try {
        parseRecords(buf);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).status).toBe(400);
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain("\n");
    }
  });

  test("Celsius and faults", () => {
    expect(tcToCelsius(3200)).toBe(25);
    expect(cjToCelsius(1600)).toBe(25);
    expect(tcToCelsius(-2624)).toBe(-20.5);
    expect(cjToCelsius(-336)).toBe(-5.25);
    const [ok, , , nr] = [3, 4, 5, 7].map((i) => decodeRecord(hex(V.records[i].hex)));
    expect(isSample(ok) && sampleCelsius(ok)).toBe(25);
    expect(isSample(nr) && isFaulted(nr)).toBe(true);
    expect(isSample(nr) && sampleCelsius(nr)).toBe(null);
    expect(isFaulted({ sr: 1, sflags: 0 })).toBe(true);
    expect(isFaulted({ sr: 0, sflags: 2 })).toBe(true);
  });

  test("encoder refuses values that do not fit", () => {
    const base = { seq: 0, kind: KIND.sample, uptime: 0, tc: 0, cj: 0, sr: 0, sflags: 0 } as const;
    expect(() => encodeRecord({ ...base, cj: 40000 })).toThrow(RangeError);
    expect(() => encodeRecord({ ...base, seq: 0xffffffff })).toThrow(RangeError);
    expect(() => encodeRecord({ ...base, uptime: -1 })).toThrow(RangeError);
  });
});

describe("chain", () => {
  test("genesis and heads", () => {
    expect(genesisHead(V.devid).toString("hex")).toBe(V.genesis);
    expect(genesisHead(hex(V.devid)).toString("hex")).toBe(V.genesis);
    const bytes = V.records.map((r: { hex: string }) => hex(r.hex));
    const heads = chainHeads(hex(V.genesis), bytes).map((h) => h.toString("hex"));
    expect(heads).toEqual(V.records.map((r: { head: string }) => r.head));
    expect(nextHead(hex(V.genesis), bytes[0]).toString("hex")).toBe(V.records[0].head);
    expect(hashRun(hex(V.records[2].head), bytes.slice(3, 6)).toString("hex")).toBe(V.records[5].head);
    expect(hashRun(hex(V.genesis), []).toString("hex")).toBe(V.genesis);
  });
});

describe("flash block", () => {
  test("encodes, decodes and re-hashes", () => {
    const { firstSeq, lastSeq } = V.block;
    const records = V.records.slice(firstSeq, lastSeq + 1).map((r: { hex: string }) => hex(r.hex));
    const prevHead = hex(V.records[firstSeq - 1].head);
    expect(blockKey(V.block.n)).toBe(V.block.key);
    expect(encodeBlock({ firstSeq, prevHead, records }).toString("hex")).toBe(V.block.hex);
    const b = decodeBlock(hex(V.block.hex));
    expect(b.firstSeq).toBe(firstSeq);
    expect(b.lastSeq).toBe(lastSeq);
    expect(b.prevHead.toString("hex")).toBe(V.records[firstSeq - 1].head);
    expect(b.head.toString("hex")).toBe(V.records[lastSeq].head);
    expect(() => encodeBlock({ firstSeq, prevHead, records: [...records, records[0]] })).toThrow(/exceeds 192/);
  });

  test("lgmeta and lgack", () => {
    const { firstBlock, lastBlock, boot } = V.meta;
    expect(encodeLogMeta({ firstBlock, lastBlock, boot }).toString("hex")).toBe(V.meta.hex);
    expect(decodeLogMeta(hex(V.meta.hex))).toEqual({ firstBlock, lastBlock, boot });
    const head = hex(V.records[V.lgack.ackSeq].head);
    expect(encodeLogAck({ ackSeq: V.lgack.ackSeq, head }).toString("hex")).toBe(V.lgack.hex);
    expect(decodeLogAck(hex(V.lgack.hex))).toEqual({ ackSeq: V.lgack.ackSeq, head });
  });
});

describe("batch", () => {
  const { firstSeq, count } = V.batch;
  const records = V.records.slice(firstSeq, firstSeq + count).map((r: { hex: string }) => hex(r.hex));
  const prevHead = hex(V.records[firstSeq - 1].head);

  test("encodes to the vector", () => {
    expect(encodeBatch({ devid: V.devid, devkey, firstSeq, prevHead, records }).toString("hex")).toBe(V.batch.hex);
  });

  test("decodes and verifies", () => {
    const b = decodeBatch(hex(V.batch.hex));
    expect(b.devid).toBe(V.devid);
    expect(b.firstSeq).toBe(firstSeq);
    expect(b.count).toBe(count);
    expect(b.lastSeq).toBe(firstSeq + count - 1);
    expect(b.prevHead).toEqual(prevHead);
    expect(b.recordBytes).toEqual(records);
    expect(verifyBatchMac(b, devkey)).toBe(true);
    expect(verifyBatchMac(b, Buffer.alloc(32))).toBe(false);
  });

  test("refuses malformed bodies with 400 and a reason", () => {
    const good = hex(V.batch.hex);
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x58;
    const badCount = Buffer.from(good);
    badCount.writeUInt16LE(count + 1, 16);
    const zeroCount = Buffer.from(good);
    zeroCount.writeUInt16LE(0, 16);
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(0), /empty body/],
      [badMagic, /bad magic/],
      [good.subarray(0, good.length - 1), /wrong length/],
      [Buffer.concat([good, Buffer.alloc(1)]), /wrong length/],
      [good.subarray(0, 40), /wrong length/],
      [badCount, /count says 7/],
      [zeroCount, /count 0 out of range/],
      [Buffer.from('{"seq":1}'), /bad magic/],
    ];
    for (const [body, re] of cases) {
      expect(() => decodeBatch(body)).toThrow(re);
      try {
        decodeBatch(body);
      } catch (e) {
        expect((e as FormatError).status).toBe(400);
      }
    }
  });
});

describe("ack", () => {
  test("ackkey derivation", () => {
    expect(deriveAckKey(devkey).toString("hex")).toBe(V.ackkey);
  });

  test("encodes, decodes and verifies", () => {
    const head = hex(V.records[V.ack.ackSeq].head);
    expect(encodeAck({ devid: V.devid, devkey, ackSeq: V.ack.ackSeq, head }).toString("hex")).toBe(V.ack.hex);
    const a = decodeAck(hex(V.ack.hex), devkey);
    expect(a).toMatchObject({ devid: V.devid, ackSeq: V.ack.ackSeq, verified: true });
    expect(a.head).toEqual(head);
  });

  test("none", () => {
    expect(encodeAck({ devid: V.devid, devkey, ackSeq: null }).toString("hex")).toBe(V.ackNone.hex);
    const a = decodeAck(hex(V.ackNone.hex), devkey);
    expect(a.ackSeq).toBe(null);
    expect(a.head).toBe(null);
    expect(hex(V.ackNone.hex).readUInt32LE(12)).toBe(ACK_NONE);
  });

  test("a forged or damaged ack does not verify", () => {
    const forged = hex(V.ack.hex);
    forged[13] ^= 1;
    expect(() => decodeAck(forged, devkey)).toThrow(/mac does not verify/);
    expect(decodeAck(forged).verified).toBe(false);
    expect(() => decodeAck(hex(V.ack.hex), Buffer.alloc(32, 7))).toThrow(/mac does not verify/);
    expect(() => decodeAck(hex(V.ack.hex).subarray(1))).toThrow(/wrong length/);
  });
});
