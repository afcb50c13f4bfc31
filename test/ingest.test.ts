// The ingest server end to end: real HTTP on 127.0.0.1, real SQLite file.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  KIND, chainHeads, decodeAck, encodeBatch, encodeRecord, genesisHead,
} from "../src/format/index.js";
import { lastStored, recordsFor, registerDevice, type Db } from "../src/ingest/db.js";
import { startIngestServer, type IngestServer } from "../src/ingest/server.js";

const DEVID = "0123456789abcdef";
const KEY = createHash("sha256").update("ingest test key").digest();
const OTHER_KEY = createHash("sha256").update("someone else").digest();
const GENESIS = genesisHead(DEVID);

/** A device's chain: samples 0..n-1, canonical bytes and heads. */
function makeChain(n: number, variant = 0) {
  const bytes = Array.from({ length: n }, (_, seq) =>
    encodeRecord({ seq, kind: KIND.sample, uptime: seq * 60_000, tc: 640 + seq + variant, cj: 1500, sr: 0, sflags: 0 }),
  );
  return { bytes, heads: chainHeads(GENESIS, bytes) };
}
const CHAIN = makeChain(30);
const headBefore = (seq: number, heads = CHAIN.heads) => (seq === 0 ? GENESIS : heads[seq - 1]);

function batchOf(from: number, to: number, o: { devkey?: Buffer; prevHead?: Buffer; devid?: string; bytes?: Buffer[] } = {}) {
  const bytes = o.bytes ?? CHAIN.bytes;
  return encodeBatch({
    devid: o.devid ?? DEVID,
    devkey: o.devkey ?? KEY,
    firstSeq: from,
    prevHead: o.prevHead ?? headBefore(from),
    records: bytes.slice(from, to + 1),
  });
}

interface Res {
  status: number;
  type: string | null;
  length: string | null;
  chunked: boolean;
  connection: string | null;
  /** X-Coldtrace-Reason: the reason of a 409, whose body is the ack */
  reason: string | null;
  body: Buffer;
  text: string;
}

async function post(url: string, body: Buffer | string, path = "/v1/batch"): Promise<Res> {
  const r = await fetch(url + path, {
    method: "POST",
    body: typeof body === "string" ? body : new Uint8Array(body),
    headers: { "content-type": "application/octet-stream" },
  });
  const buf = Buffer.from(await r.arrayBuffer());
  return {
    status: r.status,
    type: r.headers.get("content-type"),
    length: r.headers.get("content-length"),
    chunked: r.headers.get("transfer-encoding") !== null,
    connection: r.headers.get("connection"),
    reason: r.headers.get("x-coldtrace-reason"),
    body: buf,
    text: buf.toString("utf8"),
  };
}

/** Everything a rejected batch must leave untouched. */
function dbState(db: Db) {
  const count = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
  const h = createHash("sha256");
  for (const r of db.prepare("SELECT devid, seq, kind, bytes, head, batch_id FROM records ORDER BY devid, seq").iterate()) {
    h.update(JSON.stringify(r, (_k, v) => (v && v.type === "Buffer" ? Buffer.from(v.data).toString("hex") : v)));
  }
  return { devices: count("devices"), records: count("records"), batches: count("batches"), hash: h.digest("hex") };
}

/** Deterministic "random" bytes (xorshift), so a failure can be replayed. */
function noise(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

let dir: string;
let srv: IngestServer;
let logs: Record<string, unknown>[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "coldtrace-ingest-"));
  logs = [];
  srv = await startIngestServer({ dbPath: join(dir, "ingest.db"), log: (l) => logs.push(JSON.parse(l)) });
  registerDevice(srv.db, DEVID, KEY, "test logger");
});

afterEach(async () => {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

function expectAck(r: Res, ackSeq: number | null) {
  expect(r.type).toBe("application/octet-stream");
  const ack = decodeAck(r.body, KEY); // throws unless the mac verifies under ackkey
  expect(ack.devid).toBe(DEVID);
  expect(ack.ackSeq).toBe(ackSeq);
  expect(ack.head).toEqual(ackSeq === null ? null : CHAIN.heads[ackSeq]);
}

function expectText(r: Res, status: number, reason: RegExp) {
  expect(r.status).toBe(status);
  expect(r.type).toMatch(/^text\/plain/);
  expect(r.text).toMatch(reason);
  expect(r.text.trimEnd()).not.toContain("\n");
}

describe("accepting batches", () => {
  test("happy path: stores records and heads, acks the last seq", async () => {
    const r1 = await post(srv.url, batchOf(0, 9));
    expect(r1.status).toBe(200);
    expectAck(r1, 9);
    const r2 = await post(srv.url, batchOf(10, 19));
    expect(r2.status).toBe(200);
    expectAck(r2, 19);

    const rows = recordsFor(srv.db, DEVID);
    expect(rows.map((r) => r.seq)).toEqual([...Array(20).keys()]);
    rows.forEach((r) => {
      expect(r.bytes).toEqual(CHAIN.bytes[r.seq]);
      expect(r.head).toEqual(CHAIN.heads[r.seq]);
      expect(r.kind).toBe(KIND.sample);
    });
    expect(recordsFor(srv.db, DEVID, 5, 7).map((r) => r.seq)).toEqual([5, 6, 7]);
    expect(lastStored(srv.db, DEVID)).toEqual({ seq: 19, head: CHAIN.heads[19] });

    expect(logs).toHaveLength(2);
    expect(logs[1]).toMatchObject({ status: 200, devid: DEVID, first: 10, last: 19, stored: 10, ackSeq: 19 });
    const all = JSON.stringify(logs);
    expect(all).not.toContain(KEY.toString("hex"));
    expect(all).not.toContain(KEY.toString("base64"));
  });

  test("every reply has Content-Length, no chunking, Connection: close", async () => {
    for (const r of [await post(srv.url, batchOf(0, 2)), await post(srv.url, Buffer.alloc(0)), await post(srv.url, batchOf(9, 9))]) {
      expect(r.length).toBe(String(r.body.length));
      expect(r.chunked).toBe(false);
      expect(r.connection).toBe("close");
    }
  });

  test("a re-sent batch is idempotent: same ack, no duplicate rows", async () => {
    const a = await post(srv.url, batchOf(0, 9));
    const before = dbState(srv.db);
    const b = await post(srv.url, batchOf(0, 9));
    expect(b.status).toBe(200);
    expect(b.body).toEqual(a.body);
    const after = dbState(srv.db);
    expect(after.records).toBe(10);
    expect(after.hash).toBe(before.hash);
  });

  test("an overlapping batch stores only the new records", async () => {
    await post(srv.url, batchOf(0, 9));
    const firstBatch = recordsFor(srv.db, DEVID, 5, 9).map((r) => r.batchId);
    const r = await post(srv.url, batchOf(5, 14));
    expect(r.status).toBe(200);
    expectAck(r, 14);
    expect(recordsFor(srv.db, DEVID)).toHaveLength(15);
    expect(recordsFor(srv.db, DEVID, 5, 9).map((x) => x.batchId)).toEqual(firstBatch);
    // a batch entirely inside what is stored acks the server's last seq
    const old = await post(srv.url, batchOf(2, 4));
    expect(old.status).toBe(200);
    expectAck(old, 14);
  });
});

describe("refusing batches", () => {
  beforeEach(async () => {
    expect((await post(srv.url, batchOf(0, 9))).status).toBe(200);
  });

  /** Posts, checks status and reason, and that nothing in the database moved. */
  async function refused(body: Buffer | string, status: number, reason: RegExp, batchesToo = true) {
    const before = dbState(srv.db);
    const r = await post(srv.url, body);
    if (status === 409) {
      expect(r.status).toBe(409);
      expectAck(r, 9);
    } else {
      expectText(r, status, reason);
    }
    const after = dbState(srv.db);
    if (batchesToo) expect(after).toEqual(before);
    else expect({ ...after, batches: 0 }).toEqual({ ...before, batches: 0 });
    const line = logs[logs.length - 1];
    expect(line.status).toBe(status);
    expect(line.reason).toMatch(reason);
    return r;
  }

  test.each<[string, () => Buffer | string, RegExp]>([
    ["empty body", () => Buffer.alloc(0), /empty body/],
    ["random binary", () => noise(300), /bad magic/],
    ["JSON text", () => JSON.stringify({ devid: DEVID, seq: 10, tc: 640 }), /bad magic/],
    ["truncated", () => batchOf(10, 12).subarray(0, -1), /wrong length/],
    ["extra byte", () => Buffer.concat([batchOf(10, 12), Buffer.from([0])]), /wrong length/],
    ["header only", () => batchOf(10, 12).subarray(0, 52), /wrong length/],
    ["bad magic", () => Buffer.concat([Buffer.from("CTB2"), batchOf(10, 12).subarray(4)]), /bad magic/],
    [
      "non-consecutive seq",
      () => encodeBatch({ devid: DEVID, devkey: KEY, firstSeq: 10, prevHead: CHAIN.heads[9], records: [CHAIN.bytes[10], CHAIN.bytes[12]] }),
      /seq not consecutive, expected 11/,
    ],
    [
      "count does not match the records",
      () => {
        const b = batchOf(10, 12);
        b.writeUInt16LE(2, 16);
        return b;
      },
      /count says 2/,
    ],
  ])("400: %s", async (_name, body, reason) => {
    await refused(body(), 400, reason);
  });

  test("401: a mac made with another key", async () => {
    await refused(batchOf(10, 12, { devkey: OTHER_KEY }), 401, /mac does not verify/);
  });

  test("401: a tampered record", async () => {
    const b = batchOf(10, 12);
    b[60] ^= 0x01;
    await refused(b, 401, /mac does not verify/);
  });

  test("401: an unknown device", async () => {
    await refused(batchOf(0, 3, { devid: "ffffffffffffffff" }), 401, /unknown device ffffffffffffffff/);
  });

  test("409: wrong prev_head, with the server's ack", async () => {
    const r = await refused(batchOf(10, 12, { prevHead: CHAIN.heads[8] }), 409, /prev_head does not match/, false);
    expect(r.length).toBe("80");
    expect(r.reason).toMatch(/prev_head does not match the stored head\[9\]/);
  });

  test("409: a gap after the last stored record", async () => {
    await refused(batchOf(12, 14), 409, /gap: first_seq 12 after last stored seq 9/, false);
  });

  test("422: an overlap with different bytes (forked chain)", async () => {
    const fork = makeChain(15, 1000); // same seqs, other temperatures
    const bytes = [...CHAIN.bytes.slice(0, 7), ...fork.bytes.slice(7)];
    await refused(batchOf(5, 12, { bytes }), 422, /record 7 differs from the stored one/, false);
  });

  test("413: an oversized body", async () => {
    await refused(Buffer.alloc(1024 * 1024), 413, /larger than/);
  });

  test("413: an oversized chunked body (no Content-Length)", async () => {
    const before = dbState(srv.db);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(srv.url + "/v1/batch", { method: "POST" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 20; i++) req.write(Buffer.alloc(64 * 1024));
      req.end();
    });
    expect(status).toBe(413);
    expect(dbState(srv.db)).toEqual(before);
  });

  test("a client that hangs up mid-body does not hurt the server", async () => {
    await new Promise<void>((resolve) => {
      const req = request(srv.url + "/v1/batch", { method: "POST", headers: { "content-length": "5000" } });
      req.on("error", () => resolve());
      req.write(Buffer.alloc(100), () => setTimeout(() => { req.destroy(); resolve(); }, 20));
    });
    const r = await post(srv.url, batchOf(10, 12));
    expect(r.status).toBe(200);
  });

  test("mutated batches get 400 or 401, never a crash or a stored record", async () => {
    const good = batchOf(10, 14);
    const rnd = noise(600, 42);
    const before = dbState(srv.db);
    const seen = new Set<number>();
    for (let i = 0; i < 150; i++) {
      const b = Buffer.from(good);
      const r = rnd[i * 4];
      if (i % 3 === 0) b[(rnd[i * 4 + 1] << 8 | rnd[i * 4 + 2]) % b.length] ^= 1 << (r & 7); // one bit flip
      else if (i % 3 === 1) b.writeUInt16LE(rnd.readUInt16LE(i * 4 + 1) % 400, 16 + (r & 1) * 2); // count / rec_len
      else b[52 + 5 + (r % 5) * 18] = rnd[i * 4 + 1]; // a record's len byte
      if (b.equals(good)) continue; // the mutation happened to write the original value
      const res = await post(srv.url, b);
      seen.add(res.status);
      expect([400, 401]).toContain(res.status);
    }
    expect(seen).toEqual(new Set([400, 401]));
    expect(dbState(srv.db)).toEqual(before);
  });

  test("the server keeps serving after all that", async () => {
    await post(srv.url, noise(5000, 7));
    const r = await post(srv.url, batchOf(10, 12));
    expect(r.status).toBe(200);
    expectAck(r, 12);
  });
});

describe("a device with nothing stored", () => {
  test("409 unless the first batch starts at 0 from the genesis head", async () => {
    const gap = await post(srv.url, batchOf(3, 5));
    expect(gap.status).toBe(409);
    expectAck(gap, null);
    const wrongGenesis = await post(srv.url, batchOf(0, 2, { prevHead: Buffer.alloc(32) }));
    expect(wrongGenesis.status).toBe(409);
    expectAck(wrongGenesis, null);
    expect(dbState(srv.db).records).toBe(0);
    // both are recorded as authenticated receipts
    expect(dbState(srv.db).batches).toBe(2);
  });
});

describe("other endpoints", () => {
  test("health", async () => {
    const r = await fetch(srv.url + "/v1/health");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).not.toBeNull();
    expect(await r.json()).toMatchObject({ status: "ok", devices: 1 });
  });

  test("unknown path and wrong method", async () => {
    expectText(await post(srv.url, "x", "/v2/batch"), 404, /no such endpoint/);
    const r = await fetch(srv.url + "/v1/batch");
    expect(r.status).toBe(405);
  });
});

describe("registerDevice", () => {
  test("refuses a duplicate devid and a bad key", () => {
    expect(() => registerDevice(srv.db, DEVID, OTHER_KEY)).toThrow(/already registered/);
    expect(() => registerDevice(srv.db, "0123", KEY)).toThrow(/16 lower-case hex/);
    expect(() => registerDevice(srv.db, "1111111111111111", KEY.subarray(1))).toThrow(/32 bytes/);
  });
});
