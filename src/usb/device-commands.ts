// `coldtrace device list|status|logs|readout|provision|wipe`: a technician's commands over a
// logger's USB cable (docs/technician.md). Each connects with src/usb/connect.ts (serialport +
// jacdac-ts, as the DeviceScript CLI does) and then uses the same code as the simulator: the
// settings client (src/provision), the flash export (src/sim/export.ts), the report (src/report).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import path from "node:path"
import { LoggerPriority, LoggerCmd, PACKET_REPORT, SRV_DEVICE_SCRIPT_MANAGER, SRV_LOGGER, type JDBus, type Packet } from "jacdac-ts"
import { UsageError, runCommand, type CommandSpec, type Values } from "../cli/args.js"
import {
    DEVICE_LIST_SPEC,
    DEVICE_LOGS_SPEC,
    DEVICE_PROVISION_SPEC,
    DEVICE_READOUT_SPEC,
    DEVICE_STATUS_SPEC,
    DEVICE_WIPE_SPEC,
    DEVICE_DEPLOY_SPEC,
} from "../cli/commands.js"
import { PRESETS } from "../alarms/presets.js"
import {
    ProvisionError,
    configHash,
    deviceSecretJson,
    keyFingerprint,
    newDeviceKeys,
    provisionValues,
    writeProvisioning,
    type DeviceConfig,
} from "../provision/provision.js"
import { readSetting } from "../provision/settings.js"
import { exportDeviceLog } from "../sim/export.js"
import {
    ALARM_TYPE,
    BATTERY_LEVEL_NAME,
    KIND,
    decodeRecord,
    type AlarmRecord,
    type BatteryRecord,
    type LogRecord,
} from "../format/index.js"
import { placeRecords } from "../verify/timeline.js"
import { DiscoveryError, LOGGER_VENDORS, PORTS_ENV, choosePort, listCandidates } from "./discover.js"
import { UsbError, connectLogger, type LoggerLink } from "./connect.js"
import { DeployError, deployImage, imageProblem } from "./deploy.js"

/** bad input for a device command: a usage error, or no/two/wrong devices: one line, exit 2 */
const isInputError = (e: unknown) => e instanceof UsbError || e instanceof DiscoveryError || e instanceof ProvisionError

/** jacdac-ts writes its transport chatter with console.debug: silence it (device console lines excepted, see logs) */
function quietJacdac(onDev?: (line: string) => void): () => void {
    const orig = console.debug
    console.debug = (...args: unknown[]) => {
        if (onDev && args.length === 1 && typeof args[0] === "string" && args[0].startsWith("DEV: ")) onDev(args[0].slice(5))
    }
    return () => {
        console.debug = orig
    }
}

async function withLogger<T>(port: string | undefined, body: (link: LoggerLink) => Promise<T>, onDev?: (line: string) => void): Promise<T> {
    const restore = quietJacdac(onDev)
    try {
        const chosen = await choosePort(port)
        const link = await connectLogger(chosen)
        try {
            return await body(link)
        } finally {
            await link.close()
        }
    } finally {
        restore()
    }
}

// ---- list

async function list(): Promise<number> {
    const c = await listCandidates()
    if (c.length === 0) {
        console.log(`no logger-like USB serial port (vendors: ${Object.values(LOGGER_VENDORS).join(", ")}; ${PORTS_ENV} offers others)`)
        return 0
    }
    for (const p of c)
        console.log(`${p.path}  ${[p.why, p.vendorId && `${p.vendorId}:${p.productId ?? "?"}`, p.serialNumber].filter(Boolean).join("  ")}`)
    return 0
}

// ---- status

export interface DeviceStatus {
    port: string
    deviceId: string
    /** the program and version the DeviceScript manager reports */
    program: string
    version: string
    devid: string | null
    provisioned: boolean
    endpoint: string | null
    config: string | null
    /** what the flash holds (read the way `readout` does, nothing secret) */
    log: {
        records: number
        firstSeq: number | null
        lastSeq: number | null
        /** the last seq the server acknowledged, null: none yet */
        ackSeq: number | null
        /** records not yet acknowledged (they are why the logger must not be wiped) */
        unsent: number
        boots: number
        problems: string[]
    }
    /** the alarm state the last alarm record left (none: no alarm record held) */
    alarm: "none" | "out of band (above)" | "out of band (below)" | "back in band"
    /** UTC of the newest record held that the log's time records place, ISO; null when none is placed */
    lastRecordUtc: string | null
    /** the last battery record held: this firmware writes none yet (issue 10) */
    battery: { mv: number; level: number; utc: string | null } | null
}

const ALARM_STATE: Record<number, DeviceStatus["alarm"]> = {
    [ALARM_TYPE.aboveBand]: "out of band (above)",
    [ALARM_TYPE.belowBand]: "out of band (below)",
    [ALARM_TYPE.backInBand]: "back in band",
}

export async function readStatus(link: LoggerLink): Promise<DeviceStatus> {
    const s = link.settings
    const endpoint = await readSetting(s, "endpoint")
    const cfg = await readSetting(s, "cfg")
    const exp = await exportDeviceLog(s, link.devid ?? "")
    const records: LogRecord[] = []
    const problems = exp.problems.map(p => `seq ${p.seq}: ${p.detail}`)
    for (const e of exp.entries)
        try {
            records.push(decodeRecord(e.bytes))
        } catch (err) {
            problems.push(`seq ${e.seq}: ${(err as Error).message}`)
        }
    const placed = new Map(placeRecords(records).map(p => [p.seq, p.utc]))
    const iso = (seq: number) => {
        const utc = placed.get(seq)
        return utc === null || utc === undefined ? null : new Date(utc).toISOString()
    }
    const alarm = records.filter(r => r.kind === KIND.alarm).pop() as AlarmRecord | undefined
    const battery = records.filter(r => r.kind === KIND.battery).pop() as BatteryRecord | undefined
    const placedSeqs = records.filter(r => placed.get(r.seq) !== null && placed.get(r.seq) !== undefined)
    const last = records.length ? records[records.length - 1].seq : null
    return {
        port: link.port,
        deviceId: link.device.deviceId,
        program: link.program,
        version: link.version,
        devid: link.devid ?? null,
        provisioned: !!link.devid && !!endpoint,
        endpoint: endpoint?.toString("utf8") ?? null,
        config: cfg?.toString("utf8") ?? null,
        log: {
            records: records.length,
            firstSeq: records.length ? records[0].seq : null,
            lastSeq: last,
            ackSeq: exp.ackSeq,
            unsent: last === null ? 0 : last - (exp.ackSeq ?? -1),
            boots: exp.boot,
            problems,
        },
        alarm: alarm ? (ALARM_STATE[alarm.type] ?? "none") : "none",
        lastRecordUtc: placedSeqs.length ? iso(placedSeqs[placedSeqs.length - 1].seq) : null,
        battery: battery ? { mv: battery.mv, level: battery.level, utc: iso(battery.seq) } : null,
    }
}

async function status(v: Values<typeof DEVICE_STATUS_SPEC>): Promise<number> {
    const st = await withLogger(v.port, readStatus)
    if (v.json) console.log(JSON.stringify(st, null, 1))
    else for (const line of statusLines(st)) console.log(line)
    return 0
}

/** The status as a technician reads it. */
export function statusLines(st: DeviceStatus): string[] {
    const l = st.log
    const held = l.records
        ? `${l.records} records (seq ${l.firstSeq}..${l.lastSeq}), ${l.unsent} not yet acknowledged by the server` +
          (l.ackSeq === null ? " (no ack yet)" : ` (acknowledged up to seq ${l.ackSeq})`)
        : "empty"
    const out = [
        `logger on ${st.port} (Jacdac device ${st.deviceId})`,
        `  firmware     ${st.program}${st.version ? ` ${st.version}` : ""}`,
        `  devid        ${st.devid ?? "(none: blank)"}`,
        `  provisioned  ${st.provisioned ? "yes" : "no"}${st.endpoint ? `, uploads to ${st.endpoint}` : ""}`,
    ]
    if (st.config) out.push(`  config       ${st.config}`)
    out.push(
        `  log          ${held}`,
        `  boots        ${l.boots}`,
        `  alarm        ${st.alarm}`,
        `  clock        ${st.lastRecordUtc ? `newest record at ${st.lastRecordUtc} (UTC, from the log's time records)` : "no record placed in UTC yet"}`,
        `  battery      ${st.battery ? `${(st.battery.mv / 1000).toFixed(2)} V, level ${BATTERY_LEVEL_NAME[st.battery.level] ?? st.battery.level}${st.battery.utc ? ` at ${st.battery.utc}` : ""}` : "no battery record (nothing measures the cell: no divider reading)"}`,
    )
    for (const p of l.problems) out.push(`  PROBLEM      ${p}`)
    return out
}

// ---- logs

const PRIORITY = ["debug", "log", "warn", "error"]

/** Logger-service reports of every device on the bus, as lines (what DeviceScript's console.log sends). */
export function onLoggerReports(bus: JDBus, line: (text: string) => void): () => void {
    bus.minLoggerPriority = LoggerPriority.Debug
    return bus.subscribe(PACKET_REPORT, (pkt: Packet) => {
        if (pkt.serviceClass !== SRV_LOGGER || pkt.serviceCommand < LoggerCmd.Debug || pkt.serviceCommand > LoggerCmd.Error) return
        const [text] = pkt.jdunpack<[string]>("s")
        line(`${PRIORITY[pkt.serviceCommand - LoggerCmd.Debug]}: ${text.trimEnd()}`)
    })
}

async function logs(v: Values<typeof DEVICE_LOGS_SPEC>): Promise<number> {
    const forS = v.for === undefined ? undefined : Number(v.for)
    if (forS !== undefined && !(forS > 0)) throw new UsageError("--for must be a number of seconds above 0")
    return withLogger(
        v.port,
        async link => {
            console.error(`logs of ${link.devid ?? link.device.deviceId} on ${link.port} (Ctrl-C stops)`)
            const off = onLoggerReports(link.bus, l => console.log(l))
            await new Promise<void>(resolve => {
                const done = () => resolve()
                process.once("SIGINT", done)
                if (forS !== undefined) setTimeout(done, forS * 1000)
            })
            off()
            return 0
        },
        line => console.log(line),
    )
}

// ---- readout

async function readout(v: Values<typeof DEVICE_READOUT_SPEC>): Promise<number> {
    const out = path.resolve(v.out)
    if (existsSync(path.join(out, "device-export.json")))
        throw new UsageError(`${path.join(out, "device-export.json")} exists: choose another --out`)
    const exp = await withLogger(v.port, async link => {
        if (!link.devid) throw new UsbError(`the logger on ${link.port} is blank (no devid): nothing to read out`)
        let shown = 0
        return exportDeviceLog(link.settings, link.devid, (done, all) => {
            // a line at each quarter: a full store takes a few seconds over the cable
            const quarter = Math.floor((4 * done) / all)
            if (quarter > shown) console.log(`  reading the flash: ${done} of ${all} blocks`)
            shown = Math.max(shown, quarter)
        })
    })
    mkdirSync(out, { recursive: true })
    const file = path.join(out, "device-export.json")
    writeFileSync(file, JSON.stringify(exp.file, null, 1) + "\n")
    const seqs = exp.entries.map(e => e.seq)
    console.log(
        `read out device ${exp.file.devid}: ${exp.entries.length} records${seqs.length ? ` (seq ${seqs[0]}..${seqs[seqs.length - 1]})` : ""}, boot ${exp.boot}, acknowledged up to ${exp.ackSeq ?? "-"}`,
    )
    for (const p of exp.problems) console.log(`  problem at seq ${p.seq}: ${p.detail}`)
    console.log(`  wrote ${file}`)
    if (!v.keys) {
        console.log(`verify it offline: coldtrace report --export ${file} --keys device-secret.json --out ${out}`)
        return 0
    }
    // the same code path as `coldtrace report --export FILE --keys FILE --out DIR`
    const { reportCommand } = await import("../report/cli.js")
    return reportCommand(["--export", file, "--keys", v.keys, "--out", out, "--format", v.format, "--tz", v.tz])
}

// ---- provision

/** A profile: an alarm preset with a band (5 min samples, hourly uploads), or a JSON file of cfg fields. */
export function loadProfile(name: string): DeviceConfig {
    if (/\.json$/i.test(name) || name.includes("/")) {
        let j: unknown
        try {
            j = JSON.parse(readFileSync(name, "utf8"))
        } catch (e) {
            throw new UsageError(`cannot read profile ${name}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
        }
        if (!j || typeof j !== "object" || Array.isArray(j)) throw new UsageError(`profile ${name} must be a JSON object of cfg fields`)
        return j as DeviceConfig
    }
    const p = PRESETS.find(x => x.id === name)
    const usable = PRESETS.filter(x => x.band).map(x => x.id)
    if (!p || !p.band) throw new UsageError(`unknown profile ${JSON.stringify(name)}: one of ${usable.join(", ")}, or a JSON file`)
    return { interval: 300, upload: 3600, low: p.band.low, high: p.band.high, alarms: p.id }
}

interface AdminTarget {
    base: string
    token: string
}

async function admin(
    t: AdminTarget,
    method: string,
    p: string,
    body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
    let res: Response
    try {
        res = await fetch(new URL(p, t.base), {
            method,
            headers: { authorization: `Bearer ${t.token}`, ...(body ? { "content-type": "application/json" } : {}) },
            body: body ? JSON.stringify(body) : undefined,
            signal: AbortSignal.timeout(15_000),
        })
    } catch (e) {
        throw new UsbError(`cannot reach the ingest server's admin API at ${t.base}: ${(e as Error).cause ?? (e as Error).message}`)
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>
    return { status: res.status, json }
}

function adminToken(file: string | undefined): string {
    if (file) {
        try {
            return readFileSync(file, "utf8").trim()
        } catch (e) {
            throw new UsageError(`cannot read admin token file ${file}: ${(e as NodeJS.ErrnoException).code}`)
        }
    }
    const t = process.env.COLDTRACE_ADMIN_TOKEN
    if (!t) throw new UsageError("the admin API needs a token: --admin-token-file FILE or COLDTRACE_ADMIN_TOKEN")
    return t
}

async function provision(v: Values<typeof DEVICE_PROVISION_SPEC>): Promise<number> {
    const config = loadProfile(v.profile)
    const keysOut = path.resolve(v["keys-out"])
    if (existsSync(keysOut)) throw new UsageError(`${keysOut} exists: the escrow keys file is never overwritten`)
    // its folder is made owner-only when the tool makes it (an existing one is left as it is)
    mkdirSync(path.dirname(keysOut), { recursive: true, mode: 0o700 })
    let server: string
    try {
        server = new URL(v.server ?? new URL(v.endpoint).origin).toString()
    } catch {
        throw new UsageError(`not a URL: ${v.server ?? v.endpoint}`)
    }
    const target: AdminTarget = { base: server, token: adminToken(v["admin-token-file"]) }
    const keys = newDeviceKeys()
    const devid = keys.devid.toString("hex")
    // everything is checked before the cable is touched
    const values = provisionValues({ ...keys, endpoint: v.endpoint, config, allowHttp: v["allow-http"] })
    return withLogger(v.port, async link => {
        const endpoint = await readSetting(link.settings, "endpoint")
        const previous = link.devid && endpoint ? link.devid : undefined
        if (previous && !v.force)
            throw new UsbError(
                `the logger on ${link.port} is already provisioned as ${previous}: read it out and wipe it first, or --force`,
            )
        if (previous) {
            const st = await readStatus(link)
            if (st.log.unsent > 0)
                throw new UsbError(
                    `the logger ${previous} holds ${st.log.unsent} records the server has not acknowledged: read them out first (coldtrace device readout): nothing changed`,
                )
        }
        // 1. the escrow copy first: a registered key must never exist without it
        writeFileSync(keysOut, JSON.stringify(deviceSecretJson(keys, { config, endpoint: v.endpoint }), null, 1) + "\n", {
            mode: 0o600,
            flag: "wx",
        })
        // 2. registration (a server that cannot be reached leaves the keys unused, like a refusal)
        const reg = await admin(target, "POST", "/v1/admin/devices", {
            devid,
            k0: keys.k0.toString("hex"),
            ackkey: keys.ackkey.toString("hex"),
            label: v.label,
            configHash: configHash(config, v.endpoint).toString("hex"),
        }).catch((e: Error) => {
            renameSync(keysOut, `${keysOut}.unused`)
            throw new UsbError(`${e.message}; nothing was written to the logger, the keys file is now ${keysOut}.unused`)
        })
        if (reg.status !== 201) {
            renameSync(keysOut, `${keysOut}.unused`)
            throw new UsbError(
                `the ingest server refused the registration (${reg.status}): ${reg.json.error ?? "no reason given"}; nothing was written to the logger, the keys file is now ${keysOut}.unused`,
            )
        }
        // 3. settings, each read back, endpoint last (a forced re-provision erases the old ones first)
        try {
            if (previous) await link.settings.clear()
            await writeProvisioning(link.settings, values)
        } catch (e) {
            const why = e instanceof ProvisionError ? e.message : `link lost: ${(e as Error).message}`
            const undo = await admin(target, "DELETE", `/v1/admin/devices/${devid}`).catch(err => ({
                status: 0,
                json: { error: String(err) },
            }))
            renameSync(keysOut, `${keysOut}.unused`)
            console.error(`provisioning ${devid} failed while writing the logger: ${why}`)
            console.error(
                undo.status === 200
                    ? `  rolled back: the registration is retired, the keys file is now ${keysOut}.unused; the logger has no endpoint and stays unprovisioned: run provision again`
                    : `  the registration could NOT be retired (${undo.status}: ${undo.json.error}): retire ${devid} with DELETE /v1/admin/devices/${devid}; keys file now ${keysOut}.unused`,
            )
            return 1
        }
        if (previous) {
            // the old identity is gone from the logger: the server refuses its batches from now on
            const gone = await admin(target, "DELETE", `/v1/admin/devices/${previous}`).catch((e: Error) => ({
                status: 0,
                json: { error: e.message },
            }))
            console.log(
                gone.status === 200
                    ? `  the logger's previous identity ${previous} is retired at the server`
                    : `  the previous identity ${previous} was NOT retired (${gone.status}: ${gone.json.error ?? ""}): retire it with DELETE /v1/admin/devices/${previous}`,
            )
        }
        printLabel(devid, keyFingerprint(keys), config, v.endpoint, v.label)
        console.log(`  escrow keys: ${keysOut} (mode 0600; keep it offline, it verifies this logger's records)`)
        return 0
    })
}

function printLabel(devid: string, fingerprint: string, c: DeviceConfig, endpoint: string, label?: string) {
    const rows = [
        "coldtrace logger",
        `devid  ${devid.replace(/(....)(?=.)/g, "$1 ")}`,
        `key    ${fingerprint}`,
        ...(label ? [`label  ${label}`] : []),
        `band   ${c.low} .. ${c.high} °C${typeof c.alarms === "string" ? `  (${c.alarms})` : ""}`,
        `every  ${c.interval} s, upload ${c.upload} s`,
        `to     ${new URL(endpoint).host}`,
    ]
    const w = Math.max(...rows.map(r => r.length))
    console.log(`+${"-".repeat(w + 2)}+`)
    for (const r of rows) console.log(`| ${r.padEnd(w)} |`)
    console.log(`+${"-".repeat(w + 2)}+`)
}

// ---- wipe

async function wipe(v: Values<typeof DEVICE_WIPE_SPEC>): Promise<number> {
    const target = v.server ? { base: adminBase(v.server), token: adminToken(v["admin-token-file"]) } : undefined
    return withLogger(v.port, async link => {
        const is = link.devid ?? "blank"
        if (v.devid.toLowerCase() !== is) throw new UsbError(`the logger on ${link.port} is ${is}, not ${v.devid}: nothing erased`)
        const st = await readStatus(link)
        if (st.log.unsent > 0 && !v.force)
            throw new UsbError(
                `the logger ${is} holds ${st.log.unsent} records the server has not acknowledged: read them out first (coldtrace device readout), or --force: nothing erased`,
            )
        await link.settings.clear()
        const keys = await link.settings.listKeys()
        if (keys.length) {
            console.error(`wipe of ${is}: these settings remain: ${keys.join(", ")}`)
            return 1
        }
        console.log(`wiped ${is} on ${link.port}: no settings remain`)
        if (!target || !link.devid) return 0
        const r = await admin(target, "DELETE", `/v1/admin/devices/${link.devid}`)
        if (r.status !== 200) {
            console.error(
                `not retired at ${target.base}: ${r.status} ${r.json.error ?? ""}; retire ${link.devid} with DELETE /v1/admin/devices/${link.devid}`,
            )
            return 1
        }
        console.log(`retired ${link.devid} at ${target.base}: its batches are refused from now on`)
        return 0
    })
}

function adminBase(url: string): string {
    try {
        return new URL(url).toString()
    } catch {
        throw new UsageError(`not a URL: ${url}`)
    }
}

async function deploy(v: Values<typeof DEVICE_DEPLOY_SPEC>): Promise<number> {
    let image: Buffer
    try {
        image = readFileSync(v.image)
    } catch (e) {
        throw new UsageError(`cannot read ${v.image}: ${(e as NodeJS.ErrnoException).code}`)
    }
    const problem = imageProblem(image)
    if (problem) throw new UsageError(`${v.image}: ${problem}`)
    return withLogger(v.port, async link => {
        const manager = link.device.services({ serviceClass: SRV_DEVICE_SCRIPT_MANAGER })[0]
        let shown = -1
        let r
        try {
            r = await deployImage(manager, image, f => {
                const pct = Math.floor(f * 10) * 10
                if (pct > shown) process.stdout.write(`  ${pct}%${pct === 100 ? "\n" : ""}`)
                shown = pct
            })
        } catch (e) {
            if (!(e instanceof DeployError)) throw e
            console.error(`deploy to ${link.port} failed: ${e.message}`)
            return 1
        }
        if (!r.written) console.log(`${link.port}: the logger already runs this image (sha256 ${r.sha256}): nothing written`)
        else console.log(`deployed ${image.length} bytes to ${link.devid ?? "a blank logger"} on ${link.port} (sha256 ${r.sha256})`)
        return 0
    })
}

const SUB: Record<string, { spec: CommandSpec; run: (v: never) => Promise<number> }> = {
    list: { spec: DEVICE_LIST_SPEC, run: list },
    status: { spec: DEVICE_STATUS_SPEC, run: status },
    logs: { spec: DEVICE_LOGS_SPEC, run: logs },
    readout: { spec: DEVICE_READOUT_SPEC, run: readout },
    provision: { spec: DEVICE_PROVISION_SPEC, run: provision },
    wipe: { spec: DEVICE_WIPE_SPEC, run: wipe },
    deploy: { spec: DEVICE_DEPLOY_SPEC, run: deploy },
}

export const DEVICE_VERBS = Object.keys(SUB)

/** `coldtrace device VERB ...` */
export async function deviceCommand(args: string[]): Promise<number> {
    const [verb, ...rest] = args
    const sub = verb !== undefined && Object.hasOwn(SUB, verb) ? SUB[verb] : undefined
    if (!sub) {
        console.error(
            `coldtrace device: ${verb === undefined ? "which one?" : `unknown command ${JSON.stringify(verb)}`} (${DEVICE_VERBS.join(", ")})\n(coldtrace help lists the commands)`,
        )
        return 2
    }
    return runCommand(sub.spec, rest, sub.run as (v: Values<CommandSpec>) => Promise<number>, isInputError)
}
