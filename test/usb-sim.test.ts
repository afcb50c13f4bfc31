import { describe, it, expect, beforeAll, afterAll } from "vitest"
import path from "node:path"
import os from "node:os"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { runScenario, type RunResult } from "../src/sim/run.js"
import { loadScenario } from "../src/sim/scenario.js"
import { ROOT } from "../src/sim/vm.js"
import { startPtyPair, type PtyPair } from "../src/usb/pty.js"
import { attachSerialBridge, type SerialBridge } from "../src/usb/bridge.js"
import { coldtrace, type CliResult } from "./helpers/coldtrace-cli.js"
import { decodeExport } from "../src/sim/export.js"
import { buildFirmware } from "../src/sim/vm.js"
import { listenJacdacTcp, type TcpLink } from "../src/usb/tcp-link.js"

// Issue 14 on the real firmware: the simulated logger's bus bridged onto a socat pty pair with the
// ESP32's serial framing (src/usb/bridge.ts), and `coldtrace device ...` run as a technician runs it
// (child processes, serialport + jacdac-ts on the other end). The tool provisions the factory-new
// logger (keys, admin registration, settings); the shipment runs and verifies with the keys the tool
// escrowed; on the bench afterwards: status, a read-out that verifies and reports offline, a deploy
// of the image it already runs, and a wipe refused while records are unsent.
describe("a simulated logger over USB (usb-bench scenario, socat pty)", () => {
    const scenario = loadScenario(path.join(ROOT, "src/sim/scenarios/usb-bench.json"))
    const dir = mkdtempSync(path.join(os.tmpdir(), "coldtrace-usb-sim-"))
    const keys = path.join(dir, "escrow", "device-secret.json")
    const tokenFile = path.join(dir, "admin-token")
    const readoutDir = path.join(dir, "readout")
    const cli: Record<string, CliResult> = {}
    // COLDTRACE_TRANSCRIPTS=DIR keeps what each command printed (docs/technician.md quotes them)
    const transcript: string[] = []
    async function step(...args: string[]): Promise<CliResult> {
        const r = await coldtrace({}, ...args)
        const shown = args.map(a => a.replace(dir, "$BENCH"))
        transcript.push(`$ coldtrace ${shown.join(" ")}`, (r.out + r.err).replaceAll(dir, "$BENCH").trimEnd(), `(exit ${r.code})`, "")
        return r
    }
    let pty: PtyPair
    let r: RunResult
    let registered = ""
    let bridge: SerialBridge | undefined
    let tcp: TcpLink | undefined
    // a profile file: the ultra-cold preset's band and rules, 10 s samples (a short bench run)
    const profile = path.join(dir, "bench-profile.json")
    writeFileSync(profile, JSON.stringify({ interval: 10, upload: 600, low: -90, high: -60, alarms: "ultracold-mrna" }))

    beforeAll(async () => {
        pty = await startPtyPair(path.join(dir, "board"), path.join(dir, "laptop"))
        const port = pty.b
        r = await runScenario({
            scenario,
            outDir: path.join(dir, "out"),
            // the device's console goes out on its USB line between frames, as an ESP32's does
            vmLine: line => bridge?.writeConsole(line + "\n"),
            usb: {
                attach: async bus => {
                    bridge = await attachSerialBridge(bus, pty.a)
                    tcp = await listenJacdacTcp(bus)
                    return { close: async () => (await bridge!.close(), await tcp!.close()) }
                },
                provision: async tb => {
                    writeFileSync(tokenFile, tb.adminToken + "\n", { mode: 0o600 })
                    cli.provision = await step(
                        ...["device", "provision", "--port", port, "--profile", profile, "--endpoint", tb.endpoint],
                        ...["--server", tb.adminUrl, "--admin-token-file", tokenFile, "--keys-out", keys, "--label", "bench 1"],
                    )
                    if (cli.provision.code !== 0) throw new Error(`provision failed: ${cli.provision.err}${cli.provision.out}`)
                    registered = tb.ingestLog.filter(l => l.includes("register device")).join("\n")
                    return keys
                },
                atEnd: async () => {
                    cli.statusText = await step("device", "status", "--port", port)
                    cli.status = await step("device", "status", "--port", port, "--json")
                    // the same logger over the simulator's Jacdac TCP link instead of the cable
                    cli.statusTcp = await step("device", "status", "--port", `tcp://127.0.0.1:${tcp!.port}`, "--json")
                    cli.readout = await step("device", "readout", "--port", port, "--out", readoutDir, "--keys", keys)
                    cli.deploy = await step("device", "deploy", "--port", port, "--image", path.join(dir, "out", "firmware-sim.devs"))
                    // the logger samples every 10 s of wall time now (its clock follows the wall clock again)
                    cli.logs = await step("device", "logs", "--port", port, "--for", "12")
                    const devid = JSON.parse(readFileSync(keys, "utf8")).devid
                    cli.wipe = await step("device", "wipe", "--port", port, "--devid", devid)
                    // another of our programs (the cellular build) over the cable: written, and then reported
                    const other = await buildFirmware("src/sim-cell.ts", path.join(dir, "cell.devs"))
                    cli.deployOther = await step("device", "deploy", "--port", port, "--image", other.bytecode)
                    cli.statusAfter = await step("device", "status", "--port", port, "--json")
                },
            },
        })
        if (process.env.COLDTRACE_TRANSCRIPTS)
            writeFileSync(path.join(process.env.COLDTRACE_TRANSCRIPTS, "usb-sim.txt"), transcript.join("\n"))
    }, 300_000)

    afterAll(async () => {
        await pty?.stop()
        rmSync(dir, { recursive: true, force: true })
    })

    it("provisions the factory-new logger: registered through the admin API, keys escrowed 0600, a label printed", () => {
        const secret = JSON.parse(readFileSync(keys, "utf8"))
        const devid = secret.devid as string
        expect(devid).toMatch(/^[0-9a-f]{16}$/)
        expect(statSync(keys).mode & 0o777).toBe(0o600)
        // the label: the device id and the key fingerprint the escrow file names, no key
        expect(cli.provision.out).toContain(`devid  ${devid.replace(/(....)(?=.)/g, "$1 ")}`)
        expect(cli.provision.out).toContain(`key    ${secret.fingerprint}`)
        for (const k of ["k0", "ackkey", "lockey"]) expect(cli.provision.out + cli.provision.err).not.toContain(secret[k])
        expect(registered).toContain(devid)
    })

    it("the shipment runs on those keys and verifies: every record, nothing lost", () => {
        expect(r.summary.chain.status, r.summary.chain.detail).toBe("ok")
        expect(r.summary.samples.lost).toBe(0)
        expect(r.summary.samples.taken).toBeGreaterThan(2800)
    })

    it("status over the cable: our program, identity, provisioning, what is held and unsent, the alarm state, the clock", () => {
        expect(cli.status.code, cli.status.err).toBe(0)
        const st = JSON.parse(cli.status.out)
        const secret = JSON.parse(readFileSync(keys, "utf8"))
        expect(st.program).toBe("coldtrace-logger sim")
        expect(st.devid).toBe(secret.devid)
        expect(st.provisioned).toBe(true)
        expect(JSON.parse(st.config).alarms).toBe("ultracold-mrna")
        // the last 90 minutes were offline: about 540 samples the server has not acknowledged
        expect(st.log.unsent).toBeGreaterThanOrEqual(500)
        expect(st.log.records).toBeGreaterThanOrEqual(st.log.unsent)
        expect(st.alarm).toBe("back in band")
        const end = Date.parse(scenario.start) + scenario.hours * 3_600_000
        expect(Math.abs(Date.parse(st.lastRecordUtc) - end)).toBeLessThan(10 * 60_000)
    })

    it("the same status over the simulator's Jacdac TCP link", () => {
        expect(cli.statusTcp.code, cli.statusTcp.err).toBe(0)
        const [a, b] = [JSON.parse(cli.status.out), JSON.parse(cli.statusTcp.out)]
        for (const k of ["devid", "program", "version", "config", "alarm"]) expect(b[k]).toEqual(a[k])
        expect(b.log.ackSeq).toBe(a.log.ackSeq)
    })

    it("read out over the cable: the export is the flash the harness reads, verified offline, with reports", () => {
        expect(cli.readout.code, cli.readout.err + cli.readout.out).toBe(0)
        const mine = JSON.parse(readFileSync(path.join(readoutDir, "device-export.json"), "utf8"))
        const harness = JSON.parse(readFileSync(path.join(dir, "out", "device-export.json"), "utf8"))
        // the logger samples on while on the bench: what the harness read later holds all of it, byte for byte
        const a = decodeExport(mine).entries
        const b = new Map(decodeExport(harness).entries.map(e => [e.seq, Buffer.from(e.bytes).toString("hex")]))
        expect(a.length).toBeGreaterThan(500)
        for (const e of a) expect(b.get(e.seq), `seq ${e.seq}`).toBe(Buffer.from(e.bytes).toString("hex"))
        expect(existsSync(path.join(readoutDir, "report.html"))).toBe(true)
        // judged against the band the logger was provisioned with (the escrow file keeps it), not a default
        expect(cli.readout.out).toMatch(/EXCURSION: 1 excursion outside [-−]90\.0 to [-−]60\.0 °C/)
    })

    it("logs: the device's console, live over the cable (its samples as they are taken)", () => {
        expect(cli.logs.code, cli.logs.err).toBe(0)
        expect(cli.logs.out).toMatch(/ct:sample seq=\d+/)
    })

    it("deploying another image writes it: the logger then reports that program", () => {
        expect(cli.deployOther.code, cli.deployOther.err).toBe(0)
        expect(cli.deployOther.out).toMatch(/deployed \d+ bytes to [0-9a-f]{16}/)
        expect(JSON.parse(cli.statusAfter.out).program).toBe("coldtrace-logger sim-cell")
    })

    it("deploying the image it runs writes nothing; a wipe is refused while records are unsent", () => {
        expect(cli.deploy.code, cli.deploy.err).toBe(0)
        expect(cli.deploy.out).toContain("already runs this image")
        expect(cli.wipe.code).toBe(2)
        expect(cli.wipe.err).toMatch(/not acknowledged: read them out first .* nothing erased/)
    })
})
