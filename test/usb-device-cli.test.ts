import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { coldtrace } from "./helpers/coldtrace-cli.js"
import { startPtyPair, type PtyPair } from "../src/usb/pty.js"
import { startIngestServer, type IngestServer } from "../src/ingest/server.js"
import { standInBoard, type Board, type StandIn } from "./helpers/usb-standin.js"
import { LogWriter, SHIPMENT_T0, flashExport, shipmentLog } from "./helpers/shipment-log.js"
import { BLOCK_SLOTS } from "../src/format/index.js"

// `coldtrace device ...` as a technician types it (child processes of bin/coldtrace.js), each over
// the real serial code path: the command opens the host end of a socat pty pair with serialport and
// jacdac-ts; this test process serves a stand-in logger on the board end (test/helpers/usb-standin.ts).

let dir: string
const cleanups: (() => Promise<unknown>)[] = []
beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "coldtrace-usb-cli-"))
})
afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
async function logger(devices: StandIn[]): Promise<{ p: PtyPair; board: Board }> {
    n++
    const p = await startPtyPair(path.join(dir, `board${n}`), path.join(dir, `host${n}`))
    cleanups.push(() => p.stop())
    const board = await standInBoard(p, devices)
    cleanups.push(board.close)
    return { p, board }
}

const ADMIN_TOKEN = "usb-test-admin-token-0123456789abcdef"

async function ingest(): Promise<IngestServer> {
    const server = await startIngestServer({
        dbPath: path.join(dir, `ingest${++n}.sqlite`),
        port: 0,
        adminToken: ADMIN_TOKEN,
        log: () => {},
    })
    cleanups.push(() => server.close())
    return server
}

describe("coldtrace device status and list", () => {
    it("status --json: the logger's identity and provisioning, found through COLDTRACE_USB_PORTS", async () => {
        const { p } = await logger([
            {
                settings: {
                    devid: Buffer.from("c01d7aceb0000001", "hex"),
                    endpoint: Buffer.from("https://in.example/v1/batch"),
                },
            },
        ])
        const r = await coldtrace({ COLDTRACE_USB_PORTS: p.b }, "device", "status", "--json")
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(JSON.parse(r.out)).toMatchObject({
            port: p.b,
            program: "coldtrace-logger",
            version: "v0.3.0",
            devid: "c01d7aceb0000001",
            provisioned: true,
            endpoint: "https://in.example/v1/batch",
            log: { records: 0, ackSeq: null, unsent: 0 },
            alarm: "none",
            battery: null,
        })
        const l = await coldtrace({ COLDTRACE_USB_PORTS: `${p.b},${p.a}` }, "device", "list")
        expect(l).toEqual({ code: 0, out: `${p.b}  COLDTRACE_USB_PORTS\n${p.a}  COLDTRACE_USB_PORTS\n`, err: "" })
    })

    it("two ports offered, no port, a device that is not a logger: one line, exit 2", async () => {
        const { p } = await logger([{ buttonOnly: true }])
        const hint = (m: string) => `coldtrace device status: ${m}\n(coldtrace device status --help for usage)\n`
        expect(await coldtrace({ COLDTRACE_USB_PORTS: "/dev/a,/dev/b" }, "device", "status")).toEqual({
            code: 2,
            out: "",
            err: hint("2 possible loggers connected (/dev/a, /dev/b): give --port"),
        })
        expect(await coldtrace({ COLDTRACE_USB_PORTS: "" }, "device", "status")).toMatchObject({ code: 2, out: "" })
        const r = await coldtrace({}, "device", "status", "--port", p.b)
        expect(r.code).toBe(2)
        expect(r.err).toMatch(/^coldtrace device status: not a coldtrace logger: the device on .* has no settings service/)
    })
})

describe("coldtrace device readout", () => {
    it("reads the flash log over USB into device-export.json and, with the keys, writes a verified report", async () => {
        const log = shipmentLog()
        const exp = flashExport(log.w, 100)
        const { p } = await logger([{ settings: { ...exp.settings, devid: log.w.devid } }])
        const keys = path.join(dir, "readout-secret.json")
        writeFileSync(keys, JSON.stringify(log.w.secretJson()))
        const out = path.join(dir, "readout")
        const r = await coldtrace({}, "device", "readout", "--port", p.b, "--out", out, "--keys", keys, "--format", "csv")
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        // progress while the blocks come over the cable, then what was read
        expect(r.out).toMatch(/^ {2}reading the flash: (\d+) of \1 blocks$/m)
        expect(r.out).toMatch(new RegExp(`^read out device ${log.w.devid}: ${log.w.seq} records \\(seq 0\\.\\.${log.w.seq - 1}\\)`, "m"))
        const file = JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8"))
        expect(file).toEqual(exp)
        expect(existsSync(path.join(out, "report.csv"))).toBe(true)
    })

    it("a full flash (the whole ring of blocks): every block read over the cable, with progress, verified", async () => {
        // a noisy week at 5-min samples fills the ring: wide deltas pack poorly
        const w = new LogWriter("c01d7aceb0000077").start(SHIPMENT_T0)
        let full: ReturnType<typeof flashExport> | undefined
        for (let n = 0; ; n++) {
            w.advanceTo(SHIPMENT_T0 + (n + 1) * 300_000).sample(5 + ((n * 7919) % 41) / 4 - 5)
            if (n % 100 !== 99) continue
            try {
                const exp = flashExport(w, null)
                const blocks = Object.keys(exp.settings).filter(k => /^b[0-9a-f]{2}$/.test(k)).length
                full = exp
                if (blocks >= BLOCK_SLOTS - 2) break
            } catch (e) {
                if (!(e instanceof RangeError) || !full) throw e
                break // one more record than the ring holds: keep the last image that fit
            }
        }
        const blocks = Object.keys(full!.settings).filter(k => /^b[0-9a-f]{2}$/.test(k)).length
        expect(blocks).toBeGreaterThanOrEqual(BLOCK_SLOTS - 2)
        const { p } = await logger([{ settings: { ...full!.settings, devid: w.devid } }])
        const keys = path.join(dir, "full-secret.json")
        writeFileSync(keys, JSON.stringify(w.secretJson()))
        const out = path.join(dir, "full")
        const r = await coldtrace({}, "device", "readout", "--port", p.b, "--out", out, "--keys", keys, "--format", "csv")
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(r.out).toContain(`reading the flash: ${blocks} of ${blocks} blocks`)
        expect(r.out).toMatch(/VERIFIED/)
        expect(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8")).settings).toEqual(full!.settings)
    })

    it("a corrupted block: the export keeps every byte read, the verdict names the damage, exit 1", async () => {
        const log = shipmentLog()
        const exp = flashExport(log.w, 100)
        // one bit flipped in the first block the log names: what the chain would catch, not the read
        const blockKey = Object.keys(exp.settings).filter(k => /^b[0-9a-f]{2}$/.test(k))[0]
        const block = Buffer.from(exp.settings[blockKey], "hex")
        block[block.length - 3] ^= 0x10
        const settings = { ...exp.settings, [blockKey]: block.toString("hex") }
        const { p } = await logger([{ settings: { ...settings, devid: log.w.devid } }])
        const keys = path.join(dir, "corrupt-secret.json")
        writeFileSync(keys, JSON.stringify(log.w.secretJson()))
        const out = path.join(dir, "corrupt")
        const r = await coldtrace({}, "device", "readout", "--port", p.b, "--out", out, "--keys", keys, "--format", "csv")
        expect(r.code).toBe(1)
        expect(r.out + r.err).toMatch(/FAIL|BROKEN|first offending seq|does not verify/i)
        // the raw flash as read, kept for the investigation: nothing repaired, nothing dropped
        expect(JSON.parse(readFileSync(path.join(out, "device-export.json"), "utf8")).settings).toEqual(settings)
    })

    it("a blank logger has nothing to read out", async () => {
        const { p } = await logger([{}])
        const r = await coldtrace({}, "device", "readout", "--port", p.b, "--out", path.join(dir, "blank"))
        expect(r.code).toBe(2)
        expect(r.err).toContain(`the logger on ${p.b} is blank (no devid): nothing to read out`)
    })
})

/** `device provision` of the logger on `port` with the who-30dtr profile, uploading to `server`, keys to `keysOut`; `extra` after */
function provisionArgs(port: string, server: string, keysOut: string, ...extra: string[]): string[] {
    return ["device", "provision", "--port", port, "--profile", "who-30dtr", "--endpoint", `${server}/v1/batch`, "--keys-out", keysOut]
        .concat(extra)
        .concat("--allow-http")
}

describe("coldtrace device provision", () => {
    it("registers the device, writes and reads back every setting, escrows the keys 0600, prints a label", async () => {
        const server = await ingest()
        const { p, board } = await logger([{ settings: {} }])
        const keysOut = path.join(dir, "prov-secret.json")
        const token = path.join(dir, "admin-token")
        writeFileSync(token, ADMIN_TOKEN)
        const r = await coldtrace({}, ...provisionArgs(p.b, server.url, keysOut, "--admin-token-file", token, "--label", "fridge 7"))
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        const secret = JSON.parse(readFileSync(keysOut, "utf8"))
        expect(statSync(keysOut).mode & 0o777).toBe(0o600)
        expect(r.out).toContain("| coldtrace logger")
        expect(r.out).toContain(`devid  ${secret.devid.replace(/(....)(?=.)/g, "$1 ")}`)
        const store = board.stores[0]
        expect(store.value("devid")?.toString("hex")).toBe(secret.devid)
        expect(store.value("devkey")?.toString("hex")).toBe(secret.k0)
        expect(store.value("lockey")?.toString("hex")).toBe(secret.lockey)
        expect(store.value("cfg")?.toString()).toBe(secret.config)
        expect(store.value("endpoint")?.toString()).toBe(`${server.url}/v1/batch`)
        const dev = server.db.prepare("SELECT * FROM devices WHERE devid = ?").get(secret.devid) as Record<string, unknown> | undefined
        expect(dev).toBeDefined()
        // provisioning it again is refused: it has an identity and an endpoint
        const again = await coldtrace(
            { COLDTRACE_ADMIN_TOKEN: ADMIN_TOKEN },
            ...provisionArgs(p.b, server.url, path.join(dir, "again.json")),
        )
        expect(again.code).toBe(2)
        expect(again.err).toContain(`is already provisioned as ${secret.devid}: read it out and wipe it first, or --force`)
        // --force: new keys (never the old ones), the old settings erased first, the old identity retired
        const forcedKeys = path.join(dir, "forced.json")
        const forced = await coldtrace({ COLDTRACE_ADMIN_TOKEN: ADMIN_TOKEN }, ...provisionArgs(p.b, server.url, forcedKeys, "--force"))
        expect(forced.err).toBe("")
        expect(forced.code).toBe(0)
        const next = JSON.parse(readFileSync(forcedKeys, "utf8"))
        expect(next.devid).not.toBe(secret.devid)
        for (const k of ["k0", "ackkey", "lockey"]) expect(next[k]).not.toBe(secret[k])
        expect(store.value("devid")?.toString("hex")).toBe(next.devid)
        expect(forced.out).toContain(`previous identity ${secret.devid} is retired at the server`)
        const old = server.db.prepare("SELECT * FROM devices WHERE devid = ?").get(secret.devid) as Record<string, unknown>
        expect(old.retired).toBeTruthy()
    })

    it("a server that cannot be reached or refuses: nothing written to the logger, the keys set aside", async () => {
        const { p, board } = await logger([{ settings: {} }])
        const token = path.join(dir, "admin-token-2")
        writeFileSync(token, ADMIN_TOKEN)
        const args = (server: string, keysOut: string) => provisionArgs(p.b, server, keysOut, "--admin-token-file", token)
        // nothing listens there
        const gone = path.join(dir, "gone-secret.json")
        const r1 = await coldtrace({}, ...args("http://127.0.0.1:9", gone))
        expect(r1.code).toBe(2)
        expect(r1.err).toContain("cannot reach the ingest server's admin API")
        expect(existsSync(gone)).toBe(false)
        expect(existsSync(`${gone}.unused`)).toBe(true)
        // a server that refuses the token
        const server = await ingest()
        writeFileSync(token, "not-the-token")
        const refused = path.join(dir, "refused-secret.json")
        const r2 = await coldtrace({}, ...args(server.url, refused))
        expect(r2.code).toBe(2)
        expect(r2.err).toMatch(/refused the registration \(401\)/)
        expect(existsSync(refused)).toBe(false)
        expect(board.stores[0].value("devid")).toBeUndefined()
        expect(board.stores[0].value("endpoint")).toBeUndefined()
    })

    it("the cable pulled mid-way: the registration is retired, the keys file set aside, exit 1", async () => {
        const server = await ingest()
        let board: Board | undefined
        const { p, board: b } = await logger([{ onSet: key => key === "lockey" && void board?.bridge.close() }])
        board = b
        const keysOut = path.join(dir, "pulled-secret.json")
        const r = await coldtrace({ COLDTRACE_ADMIN_TOKEN: ADMIN_TOKEN }, ...provisionArgs(p.b, server.url, keysOut))
        expect(r.code).toBe(1)
        expect(r.err).toMatch(/^provisioning [0-9a-f]{16} failed while writing the logger: /)
        expect(r.err).toContain("rolled back: the registration is retired")
        expect(existsSync(keysOut)).toBe(false)
        const secret = JSON.parse(readFileSync(`${keysOut}.unused`, "utf8"))
        const res = await fetch(`${server.url}/v1/admin/devices/${secret.devid}`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })
        expect(res.status).toBe(404) // already retired
        expect(board.stores[0].value("endpoint")).toBeUndefined()
    })
})

describe("coldtrace device wipe", () => {
    it("refuses another devid; erases everything for the right one", async () => {
        const { p, board } = await logger([{ settings: { devid: Buffer.from("c01d7aceb0000009", "hex"), cfg: Buffer.from("{}") } }])
        const wrong = await coldtrace({}, "device", "wipe", "--port", p.b, "--devid", "c01d7aceb0000001")
        expect(wrong.code).toBe(2)
        expect(wrong.err).toContain(`is c01d7aceb0000009, not c01d7aceb0000001: nothing erased`)
        expect(board.stores[0].value("devid")).toBeDefined()
        const r = await coldtrace({}, "device", "wipe", "--port", p.b, "--devid", "c01d7aceb0000009")
        expect(r).toMatchObject({ code: 0, out: `wiped c01d7aceb0000009 on ${p.b}: no settings remain\n` })
        expect(board.stores[0].value("devid")).toBeUndefined()
    })
})

describe("coldtrace device deploy", () => {
    it("sends an image through the DeviceScript manager's pipe, checks the hash it reports; the same image again writes nothing", async () => {
        const image = Buffer.concat([Buffer.from("446576530a6e29f1", "hex"), randomBytes(3000)])
        const file = path.join(dir, "new.devs")
        writeFileSync(file, image)
        const { p, board } = await logger([{ settings: {}, image: Buffer.from("old program") }])
        const r = await coldtrace({}, "device", "deploy", "--port", p.b, "--image", file)
        expect(r.err).toBe("")
        expect(r.code).toBe(0)
        expect(r.out).toContain(`deployed ${image.length} bytes`)
        expect(board.deployed[0]).toHaveLength(1)
        expect(board.deployed[0][0].equals(image)).toBe(true)
        const again = await coldtrace({}, "device", "deploy", "--port", p.b, "--image", file)
        expect(again.code).toBe(0)
        expect(again.out).toContain("already runs this image")
        expect(board.deployed[0]).toHaveLength(1)
    })

    it("refuses a file that is not a DeviceScript image before touching the cable", async () => {
        const notImage = path.join(dir, "not-an-image.devs")
        writeFileSync(notImage, Buffer.alloc(4096, 0x41))
        const r = await coldtrace({}, "device", "deploy", "--port", path.join(dir, "no-such-port"), "--image", notImage)
        expect(r.code).toBe(2)
        expect(r.err).toContain(`${notImage}: not a DeviceScript image (no DevS header)`)
        const missing = await coldtrace({}, "device", "deploy", "--image", path.join(dir, "missing.devs"))
        expect(missing.code).toBe(2)
        expect(missing.err).toContain("cannot read")
    })
})
