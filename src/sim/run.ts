import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import path from "node:path"
import { JacdacHub } from "./hub.js"
import { VmProcess, buildFirmware, DEVS_DIR } from "./vm.js"
import { NetGate } from "./netgate.js"
import { HttpFaultInjector } from "./httpfaults.js"
import { makeTestPki } from "../ingest/tls.js"
import { Scenario, allPowerCuts, inWindow } from "./scenario.js"
import { startNotehub } from "../uplink/notehub.js"
import { encodeSnapshot, WorldTime } from "./world.js"
import { startIngestServer } from "../ingest/server.js"
import { registerDevice, recordsFor } from "../ingest/db.js"
import { findLogger } from "../provision/settings.js"
import { exportDeviceLog } from "./export.js"
import { provisionValues, writeProvisioning, newDeviceKeys, deviceSecretJson } from "../provision/provision.js"
import { verifyChain, mergeLogs, type ChainEntry } from "../verify/chain.js"
import { summarize } from "./summarize.js"
import { inputFromArgs, formatVerdict } from "../verify/cli.js"
import { verifyLog } from "../verify/verify.js"
import { acquireVmLock } from "./vm-lock.js"
import { renderReportHtml } from "../report/html.js"

export interface RunOptions {
    scenario: Scenario
    outDir: string
    /** progress lines for a person; silent when absent */
    progress?: (line: string) => void
    /** every console line of the VM (for tests and --verbose) */
    vmLine?: (line: string) => void
    /** world-hours between progress lines */
    progressEvery?: number
}

export interface RunResult {
    summaryPath: string
    reportPath: string
    dbPath: string
    summary: ReturnType<typeof summarize>
    /** what the run observed, for tests */
    /** vmLinesAt[i]: world ms (since start) when vmLines[i] arrived */
    observed: { boots: number; sampleLines: Map<number, SampleLine>; vmLines: string[]; vmLinesAt: number[] }
    wallMs: number
}

const TICK_MS = 20
/** wall time the world may stay held by a device before the run is declared stuck */
const STALL_MS = 60_000

/** What the firmware printed for one stored sample (`ct:sample ...`). */
export interface SampleLine {
    tc: number
    cj: number
    sr: number
    fl: number
    up: number
    /** VM wall milliseconds of the driver read (conversion wait included) and of the whole cycle */
    rd: number
    ms: number
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))

/** Wait until `cond()` holds, checking every 10 ms; rejects with `what` after `ms`. */
async function until(cond: () => boolean, ms: number, what: string) {
    const t0 = Date.now()
    while (!cond()) {
        if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
        await sleep(10)
    }
}

function fmtWorld(s: Scenario, worldMs: number) {
    const h = worldMs / 3_600_000
    const d = Math.floor(h / 24)
    const hh = Math.floor(h % 24)
    const mm = Math.floor((h * 60) % 60)
    return `day ${d + 1} ${String(hh).padStart(2, "0")}:${String(mm).padStart(2, "0")}`
}

/**
 * One simulated shipment end to end: build the firmware, start the ingest server behind a cuttable
 * network, run the real firmware in the DeviceScript VM against the world, provision it over Jacdac,
 * cut its power with SIGKILL where the scenario says, then read what the device still holds, verify
 * the chain and write summary.json and report.html.
 */
export async function runScenario(opts: RunOptions): Promise<RunResult> {
    const wall0 = performance.now()
    const s = opts.scenario
    const say = opts.progress ?? (() => {})
    const out = path.resolve(opts.outDir)
    rmSync(out, { recursive: true, force: true })
    mkdirSync(out, { recursive: true })

    say(`building firmware (devs/src/sim.ts) ...`)
    const fw = await buildFirmware("src/sim.ts", path.join(out, "firmware-sim.devs"))
    say(`firmware: ${fw.bytes} bytes of bytecode`)

    const releaseVm = await acquireVmLock(undefined, say)
    try {
        return await runLocked(opts, out, fw, wall0)
    } finally {
        releaseVm()
    }
}

async function runLocked(opts: RunOptions, out: string, fw: { bytecode: string; bytes: number }, wall0: number): Promise<RunResult> {
    const s = opts.scenario
    const say = opts.progress ?? (() => {})
    const dbPath = path.join(out, "ingest.sqlite")
    const ingestLog: string[] = []
    const ingest = await startIngestServer({ dbPath, log: l => ingestLog.push(l) })
    // the device's HTTPS ends at a TLS-terminating front (as at a load balancer) that can also inject
    // HTTP faults; the NetGate in front of it is the network that outages cut. A fresh test CA per
    // run; the VM trusts it through Node's TLS (NODE_EXTRA_CA_CERTS), the CA's key never hits disk
    const pki = makeTestPki(path.join(out, "pki"))
    const hf = s.httpFaults
    const faults = new HttpFaultInjector({
        target: { port: ingest.port },
        tls: { cert: pki.certPem, key: pki.keyPem },
        schedule: hf ? { seed: hf.seed, rates: hf.rates } : undefined,
        hangMs: hf?.hangMs ?? 5_000,
    })
    const gate = new NetGate(await faults.listen())
    const gatePort = await gate.listen()
    // cellular: the logger's Notecard syncs with a stand-in for the Notehub cloud, which relays notes
    // to the ingest server (delayed, reordered, duplicated like a real relay) and brings acks back
    const notehubLog: string[] = []
    const notehub = s.cellular
        ? await startNotehub({
              ingestUrl: `${ingest.url}/v1/batch`,
              relay: (s.cellular.relay as never) ?? {
                  seed: 1,
                  delayMs: 0,
                  jitterMs: 100,
                  reorder: 0.2,
                  holdMs: 100,
                  duplicate: 0.3,
                  duplicateLagMs: 50,
              },
              log: l => notehubLog.push(l),
          })
        : undefined
    const keys = newDeviceKeys()
    const devid = keys.devid
    const devidHex = devid.toString("hex")
    registerDevice(ingest.db, { devid: keys.devid, k0: keys.k0, ackkey: keys.ackkey, label: s.name })
    // keys stay out of every log; they are kept for `coldtrace verify` with owner-only access
    writeFileSync(path.join(out, "device-secret.json"), JSON.stringify(deviceSecretJson(keys)), { mode: 0o600 })

    const hub = new JacdacHub(path.join(DEVS_DIR, "services/simworld.md"))
    await hub.listen()
    const world = new WorldTime(s.speed)
    const vm = new VmProcess(path.join(out, "device"), fw.bytecode, { NODE_EXTRA_CA_CERTS: pki.caFile })
    const vmLines: string[] = []
    const sampleLines = new Map<number, SampleLine>()
    const uploads = { attempts: 0, ok: 0, failed: 0 }
    let booted = 0
    let provisioned = 0
    /** world time of the last snapshot the device was shown */
    let lastPublished = -1
    let lastAck = -1
    const vmLinesAt: number[] = []
    vm.on("line", (line: string) => {
        vmLines.push(line)
        vmLinesAt.push(lastPublished)
        opts.vmLine?.(line)
        const m = /^ct:(\S+)\s*(.*)$/.exec(line)
        if (!m) return
        const kv = Object.fromEntries(m[2].split(/\s+/).map(p => p.split("=")))
        if (m[1] === "sample")
            sampleLines.set(+kv.seq, { tc: +kv.tc, cj: +kv.cj, sr: +kv.sr, fl: +kv.fl, up: +kv.up, rd: +kv.rd, ms: +kv.ms })
        else if (m[1] === "boot") booted++
        else if (m[1] === "provisioned") provisioned++
        else if (m[1] === "upload") {
            uploads.attempts++
            if (kv.status === "200") uploads.ok++
            else uploads.failed++
            if (kv.ack !== "none") lastAck = +kv.ack
        } else if (m[1] === "upload-error") {
            uploads.attempts++
            uploads.failed++
        } else if (m[1] === "alarm")
            say(
                `  ${fmtWorld(s, lastPublished)}  ALARM ${kv.type === "3" ? "back in band" : "out of band"} at ${(+kv.tc / 128).toFixed(2)} C`,
            )
        else if (m[1] === "evicted") say(`  ${fmtWorld(s, lastPublished)}  store full: evicted unsent seq ${kv.first}..${kv.last}`)
    })

    const powerCuts: { at: number; until?: number }[] = []
    const endMs = s.hours * 3_600_000
    const startUtc = Date.parse(s.start)
    const cuts = allPowerCuts(s)
    let result: RunResult | undefined
    try {
        // World time as the device sees it (lockstep): free-running at `speed`, but never past the
        // wake-up the device asked for last until it asks for the next one, so work in the VM takes
        // no world time and a busy or CPU-starved VM never has the world run past its timers.
        // Snapshots are monotonic and published exactly at requested wake-ups.
        const worldNow = () => Math.min(world.now(), endMs)
        // a VM that is gone (power cut, crash) holds nothing
        vm.on("exit", () => world.setLimit(undefined))
        const publishAt = (t: number) => {
            if (t <= lastPublished) return
            lastPublished = t
            hub.setWorld(encodeSnapshot(s, t))
        }
        hub.onWake = utc => {
            const t = utc - startUtc
            world.setLimit(t)
            // show the device that instant as soon as the world reaches it, not at the next tick
            setTimeout(() => publishAt(worldNow()), Math.max(0, (t - worldNow()) / s.speed))
        }
        const publish = () => {
            const t = worldNow()
            publishAt(t)
            const h = t / 3_600_000
            gate.setUp(!inWindow(s.outages, h) && (!s.wifi || !!inWindow(s.wifi, h)))
        }
        publish()
        const ticker = setInterval(publish, TICK_MS)
        try {
            say(`world: ${s.name}`)
            say(`  ${s.hours} world-hours at ${s.speed}x; sample every ${s.device.interval} s; out folder ${out}`)
            vm.start()
            const logger = await findLogger(hub.bus, 20_000)
            const values = provisionValues({ ...keys, endpoint: `https://127.0.0.1:${gatePort}/v1/batch`, config: s.device })
            // the logger starts once `endpoint` (written last) lands, so the cellular keys go first
            const extra = new Map<string, Buffer>(
                notehub
                    ? [
                          ["ncproduct", Buffer.from(s.cellular!.product ?? "com.coldtrace.sim:fleet")],
                          ["simhub", Buffer.from(notehub.url)],
                      ]
                    : [],
            )
            await writeProvisioning(logger, new Map([...extra, ...values]))
            say(`  provisioned device ${devidHex} over Jacdac (key not shown)`)
            // the shipment starts once the logger has its provisioning; it boots in world time
            await until(() => provisioned > 0, 20_000, "the logger to read its provisioning")
            world.resume("start")
            await until(() => booted > 0, 20_000, "the logger to boot")

            const every = (opts.progressEvery ?? 6) * 3_600_000
            let nextProgress = every
            let cutIdx = 0
            let stalled = { at: -1, since: Date.now() }
            while (worldNow() < endMs) {
                const now = worldNow()
                // lockstep holds the world while the device works; a device that never sleeps again
                // (hung on a socket, a crashed fiber) would hold it forever: fail loudly instead
                if (now !== stalled.at) stalled = { at: now, since: Date.now() }
                else if (Date.now() - stalled.since > STALL_MS)
                    throw new Error(
                        `world time stuck at ${fmtWorld(s, now)} for ${STALL_MS / 1000} s: the device stopped asking for wake-ups (see device-console.log)`,
                    )
                if (cutIdx < cuts.length && now >= cuts[cutIdx].at * 3_600_000) {
                    const cut = cuts[cutIdx++]
                    await vm.powerCut()
                    const at = startUtc + now
                    say(`  ${fmtWorld(s, now)}  POWER CUT (SIGKILL), device off for ${cut.off} h`)
                    const back = (cut.at + cut.off) * 3_600_000
                    await until(() => worldNow() >= Math.min(back, endMs), 600_000, "power to come back")
                    if (worldNow() >= endMs) break
                    const [before, prov] = [booted, provisioned]
                    powerCuts.push({ at, until: startUtc + worldNow() })
                    // a real logger starts in about a second; the WASM VM needs ~1.5 s wall (an hour
                    // of world time): the world waits until the firmware runs, then it boots in world time
                    world.pause("boot")
                    vm.start()
                    await until(() => provisioned > prov, 30_000, "the logger to restart")
                    world.resume("boot")
                    await until(() => booted > before, 30_000, "the logger to reboot")
                    say(`  ${fmtWorld(s, worldNow())}  power back: boot ${vm.boots}, resumed at seq ${Math.max(...sampleLines.keys()) + 1}`)
                }
                if (now >= nextProgress) {
                    nextProgress += every
                    const taken = sampleLines.size
                    say(
                        `  ${fmtWorld(s, now)}  samples ${taken}  acknowledged up to seq ${lastAck}  uploads ${uploads.ok} ok / ${uploads.failed} failed${gate.up ? "" : "  [network down]"}`,
                    )
                }
                await sleep(TICK_MS)
            }
            // end of the shipment: stop the world (the device's clock stops with it) and read it out
            world.pause("end")
            publish()
            await sleep(300)
        } finally {
            clearInterval(ticker)
        }

        say(`reading the device's flash over Jacdac ...`)
        let deviceEntries: ChainEntry[] = []
        let deviceAck: number | null = null
        if (vm.running) {
            const exp = await exportDeviceLog(await findLogger(hub.bus, 10_000), devidHex)
            deviceEntries = exp.entries
            deviceAck = exp.ackSeq
            writeFileSync(path.join(out, "device-export.json"), JSON.stringify(exp.file, null, 1))
        }
        await vm.powerCut()
        if (notehub) {
            await notehub.drain()
            writeFileSync(path.join(out, "notehub.json"), JSON.stringify({ stats: notehub.stats, relay: notehub.relay.stats }, null, 1))
        }

        const serverEntries: ChainEntry[] = recordsFor(ingest.db, devidHex).map(r => ({ seq: r.seq, bytes: r.bytes, head: r.head }))
        const { merged, conflicts } = mergeLogs(serverEntries, deviceEntries)
        const verdict = verifyChain(devid, merged)
        if (conflicts.length && verdict.ok)
            Object.assign(verdict, { ok: false, firstBad: conflicts[0], reason: "server and device hold different bytes" })
        // the independent verifier, as `coldtrace verify` runs it: the server's database, and the
        // device's own flash against the checkpoints the server acknowledged
        const verification = [
            runVerifier(["--db", dbPath, "--keys", path.join(out, "device-secret.json")], "server database"),
            existsSync(path.join(out, "device-export.json"))
                ? runVerifier(
                      [
                          "--export",
                          path.join(out, "device-export.json"),
                          "--keys",
                          path.join(out, "device-secret.json"),
                          "--checkpoints-from",
                          dbPath,
                      ],
                      "device flash",
                  )
                : undefined,
        ].filter(v => v !== undefined)
        const notes: string[] = []
        if (deviceAck === null && lastAck >= 0) notes.push("device acknowledgement state could not be read")
        const summary = summarize({
            scenario: s.name,
            deviceId: devidHex,
            band: { low: s.device.low, high: s.device.high },
            merged,
            stored: new Set(serverEntries.map(e => e.seq)),
            ackSeq: deviceAck,
            onDevice: new Set(deviceEntries.map(e => e.seq)),
            reportedSamples: new Set(sampleLines.keys()),
            verdict,
            powerCuts,
            lockey: keys.lockey,
            uploads,
            notes,
        })
        // the verdict shown is the verifier's; the harness's own merged-chain check must agree
        const verified = verification.every(v => v.verdict.ok)
        summary.chain = {
            status: verified && verdict.ok ? "ok" : "broken",
            detail:
                verification.map(v => v.text).join("\n") +
                (verdict.ok ? "" : `\nmerged log: first bad seq ${verdict.firstBad}: ${verdict.reason}`),
        }
        const summaryPath = path.join(out, "summary.json")
        const reportPath = path.join(out, "report.html")
        const verifierJson = verification.map(v => ({
            what: v.what,
            ok: v.verdict.ok,
            status: v.verdict.status,
            firstBad: v.verdict.firstBad,
            reason: v.verdict.reason,
            records: v.verdict.records,
            sealedThrough: v.verdict.sealedThrough,
            epochs: v.verdict.epochs,
            unsealed: v.verdict.unsealed,
            problems: v.verdict.problems,
        }))
        writeFileSync(
            summaryPath,
            JSON.stringify(
                { ...summary, verification: verifierJson, firmwareBytes: fw.bytes, wallSeconds: (performance.now() - wall0) / 1000 },
                null,
                2,
            ),
        )
        writeFileSync(reportPath, renderReportHtml(summary))
        writeFileSync(path.join(out, "http-faults.json"), JSON.stringify({ counts: faults.counts, tlsErrors: faults.tlsErrors }, null, 1))
        result = {
            summaryPath,
            reportPath,
            dbPath,
            summary,
            observed: { boots: vm.boots, sampleLines, vmLines, vmLinesAt },
            wallMs: performance.now() - wall0,
        }
    } finally {
        await vm.powerCut()
        // the logs are written whatever happened: they are what explains a failed run
        writeFileSync(path.join(out, "device-console.log"), vmLines.join("\n") + "\n")
        writeFileSync(path.join(out, "ingest.log"), ingestLog.join("\n") + "\n")
        await hub.close()
        await gate.close()
        await faults.close()
        await notehub?.close()
        await ingest.close()
    }
    return result!
}

/** Run the verifier exactly as `coldtrace verify ARGS` would, on this run's files. */
function runVerifier(args: string[], what: string) {
    const { input, close } = inputFromArgs(args)
    try {
        const verdict = verifyLog(input)
        return { what, verdict, text: formatVerdict(verdict, what) }
    } finally {
        close()
    }
}
