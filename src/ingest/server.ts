// The ingest HTTP server: receives batches (docs/format.md section 5), keeps each
// device's chain append-only and answers with signed acks (section 6).
//
// Every reply carries Content-Length and `Connection: close`: the device's fetch
// cannot read chunked bodies, and its VM has one socket at a time anyway.
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  FormatError, chainHeads, decodeBatch, encodeAck, genesisHead, verifyBatchMac, type DecodedBatch,
} from "../format/index.js";
import { getDevice, headAt, lastStored, openDb, recordsFor, type Db } from "./db.js";

/** Far above the largest valid batch (84 + 65535 bytes), small enough to refuse floods early. */
export const MAX_BODY = 256 * 1024;

export interface IngestServerOptions {
  dbPath: string;
  host?: string;
  /** 0 picks a free port */
  port?: number;
  /** receives one JSON line per request; defaults to stdout */
  log?: (line: string) => void;
  maxBody?: number;
}

export interface IngestServer {
  url: string;
  port: number;
  db: Db;
  close(): Promise<void>;
}

/** What a request ended with; also the fields of its log line (never keys or bodies). */
interface Reply {
  status: number;
  body: Buffer | string;
  type: string;
  reason?: string;
  devid?: string;
  first?: number;
  last?: number;
  stored?: number;
  ackSeq?: number | null;
  /** log only, never sent */
  detail?: string;
}

function text(status: number, reason: string, extra: Partial<Reply> = {}): Reply {
  return { status, body: reason + "\n", type: "text/plain; charset=utf-8", reason, ...extra };
}

/**
 * Checks a batch against the device's stored chain and stores its new records.
 * Runs inside one IMMEDIATE transaction, so the check and the insert see the same
 * state even with several server processes on one database file.
 */
function ingest(db: Db, batch: DecodedBatch, devkey: Buffer, remote: string): Reply {
  const { devid, firstSeq, lastSeq } = batch;
  const base = { devid, first: firstSeq, last: lastSeq };
  const last = lastStored(db, devid);
  const next = last ? last.seq + 1 : 0;
  const receipt = db.prepare(
    "INSERT INTO batches (devid, first_seq, count, received_at, remote, outcome) VALUES (?, ?, ?, ?, ?, ?)",
  );
  const note = (outcome: string) =>
    Number(receipt.run(devid, firstSeq, batch.count, new Date().toISOString(), remote, outcome).lastInsertRowid);
  const ackFor = (seq: number | null, head: Buffer | null) => encodeAck({ devid, devkey, ackSeq: seq, head });

  // 409 tells the device where the server stands, so the body is the ack, not text.
  const conflict = (reason: string): Reply => {
    note(`409 ${reason}`);
    const ackSeq = last ? last.seq : null;
    return { ...base, status: 409, reason, body: ackFor(ackSeq, last?.head ?? null), type: "application/octet-stream", ackSeq };
  };

  if (firstSeq > next) {
    return conflict(last ? `gap: first_seq ${firstSeq} after last stored seq ${last.seq}` : `gap: nothing stored yet, first_seq must be 0, got ${firstSeq}`);
  }
  const expected = firstSeq === 0 ? genesisHead(devid) : headAt(db, devid, firstSeq - 1);
  if (!expected || !expected.equals(batch.prevHead)) {
    return conflict(`prev_head does not match the stored head[${firstSeq - 1}]`);
  }
  // Records already stored must come back byte for byte; anything else is a fork.
  const overlapEnd = Math.min(lastSeq, next - 1);
  if (overlapEnd >= firstSeq) {
    for (const row of recordsFor(db, devid, firstSeq, overlapEnd)) {
      if (!row.bytes.equals(batch.recordBytes[row.seq - firstSeq])) {
        const reason = `record ${row.seq} differs from the stored one (forked chain)`;
        note(`422 ${reason}`);
        return { ...text(422, reason), ...base };
      }
    }
  }
  const heads = chainHeads(batch.prevHead, batch.recordBytes);
  const fresh = Math.max(0, lastSeq - next + 1);
  const batchId = note(fresh > 0 ? `200 stored ${fresh}` : "200 duplicate");
  const insert = db.prepare("INSERT INTO records (devid, seq, kind, bytes, head, batch_id) VALUES (?, ?, ?, ?, ?, ?)");
  for (let i = batch.count - fresh; i < batch.count; i++) {
    insert.run(devid, firstSeq + i, batch.records[i].kind, batch.recordBytes[i], heads[i], batchId);
  }
  const ackSeq = Math.max(lastSeq, next - 1);
  const ackHead = ackSeq === lastSeq ? heads[batch.count - 1] : last!.head;
  return { ...base, status: 200, body: ackFor(ackSeq, ackHead), type: "application/octet-stream", stored: fresh, ackSeq };
}

function handleBatch(db: Db, body: Buffer, remote: string): Reply {
  let batch: DecodedBatch;
  try {
    batch = decodeBatch(body);
  } catch (err) {
    if (err instanceof FormatError) return text(err.status, err.message);
    throw err;
  }
  const base = { devid: batch.devid, first: batch.firstSeq, last: batch.lastSeq };
  const device = getDevice(db, batch.devid);
  if (!device) return { ...text(401, `unknown device ${batch.devid}`), ...base };
  if (!verifyBatchMac(batch, device.key)) return { ...text(401, "mac does not verify"), ...base };
  return db.transaction(() => ingest(db, batch, device.key, remote)).immediate();
}

/** The client went away before its body arrived: nothing to answer, only to log. */
class ClientGone extends Error {}

type BodyResult = { ok: true; body: Buffer } | { ok: false; reply: Reply };

function readBody(req: http.IncomingMessage, max: number): Promise<BodyResult> {
  const tooLarge = (): BodyResult => ({ ok: false, reply: text(413, `body larger than ${max} bytes`) });
  const declared = Number(req.headers["content-length"]);
  if (declared > max) return Promise.resolve(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        done = true;
        resolve(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!done) resolve({ ok: true, body: Buffer.concat(chunks) });
    });
    req.on("error", () => reject(new ClientGone()));
  });
}

/** Header values must be plain ASCII; reasons are ours but may quote odd input. */
function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

function send(res: http.ServerResponse, r: Reply): void {
  const body = typeof r.body === "string" ? Buffer.from(r.body, "utf8") : r.body;
  const headers: http.OutgoingHttpHeaders = {
    "Content-Type": r.type,
    "Content-Length": body.length,
    Connection: "close",
    "Cache-Control": "no-store",
  };
  if (r.reason) headers["X-Coldtrace-Reason"] = headerSafe(r.reason);
  res.writeHead(r.status, headers);
  res.end(body);
}

export async function startIngestServer(opts: IngestServerOptions): Promise<IngestServer> {
  const { dbPath, host = "127.0.0.1", port = 0, maxBody = MAX_BODY } = opts;
  const log = opts.log ?? ((line: string) => process.stdout.write(line + "\n"));
  const db = openDb(dbPath);

  const route = async (req: http.IncomingMessage, path: string, remote: string): Promise<Reply> => {
    if (path === "/v1/health") {
      if (req.method !== "GET") return text(405, "use GET");
      const { n } = db.prepare("SELECT count(*) AS n FROM devices").get() as { n: number };
      return { status: 200, type: "application/json", body: JSON.stringify({ status: "ok", format: 1, devices: n }) };
    }
    if (path === "/v1/batch") {
      if (req.method !== "POST") return text(405, "use POST");
      const got = await readBody(req, maxBody);
      return got.ok ? handleBatch(db, got.body, remote) : got.reply;
    }
    return text(404, `no such endpoint: ${path}`);
  };

  const server = http.createServer((req, res) => {
    const start = Date.now();
    const remote = req.socket.remoteAddress ?? "";
    const path = (req.url ?? "").split("?")[0];
    route(req, path, remote)
      .catch((err: unknown): Reply => {
        if (err instanceof ClientGone) return text(499, "client closed the connection mid-body");
        // The client gets no internals; the log line gets the cause.
        const msg = err instanceof Error ? err.message : String(err);
        return { ...text(500, "internal error"), detail: msg.split("\n")[0] };
      })
      .then((r) => {
        try {
          if (!res.headersSent) send(res, r);
        } catch {
          res.destroy(); // socket already gone: nothing left to tell the client
        }
        // Drop whatever the client is still sending (e.g. after a 413).
        req.resume();
        const line = {
          t: new Date(start).toISOString(), remote, method: req.method, path, status: r.status, reason: r.reason,
          devid: r.devid, first: r.first, last: r.last, stored: r.stored, ackSeq: r.ackSeq, detail: r.detail,
          ms: Date.now() - start,
        };
        try {
          log(JSON.stringify(line));
        } catch {
          // a broken logger must not take the server down
        }
      })
      .catch(() => res.destroy());
  });
  // Slow or stuck clients must not hold the (single-threaded) server.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${actual}`,
    port: actual,
    db,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          db.close();
          resolve();
        });
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
