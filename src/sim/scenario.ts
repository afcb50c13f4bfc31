import { readFileSync } from "node:fs"
import path from "node:path"
import type { DeviceConfig } from "../provision/provision.js"

/**
 * A scenario is the simulated world of one shipment (docs/scenario.md). Times are hours from `start`.
 */
export interface Scenario {
    name: string
    /** world start, ISO 8601 UTC */
    start: string
    /** world length, hours */
    hours: number
    /** device configuration written at provisioning (the firmware's LoggerConfig), validated there */
    device: DeviceConfig
    /** piecewise-linear temperatures, [hour, degrees C] keyframes */
    probe: [number, number][]
    board: [number, number][]
    /** deterministic measurement noise on the probe, peak degrees C (0 = none) */
    noise?: number
    faults?: { from: number; to: number; kind: FaultKind }[]
    /** network outages: uploads fail inside them */
    outages?: { from: number; to: number }[]
    /** Wi-Fi reaches the server only inside these windows (absent: always); outages cut every link */
    wifi?: { from: number; to: number }[]
    /** the logger has a Notecard (cellular): relay behaviour of the simulated cloud */
    cellular?: { product?: string; relay?: Record<string, number> }
    /** radio-off windows (flights): the logger must not transmit inside them */
    radioOff?: { from: number; to: number }[]
    /**
     * I2C bus hangs (a chip holding SDA low): a transaction started inside a window never completes;
     * only a reset frees the bus (docs/scenario.md). The logger's watchdog must bring it back.
     */
    busHangs?: { from: number; to: number }[]
    /** uplink hangs: an upload started inside a window never returns (below every deadline); the watchdog must reset */
    uplinkHangs?: { from: number; to: number }[]
    /**
     * the shipper's lid (a lid sensor is fitted when present, even empty): openings at `at` hours, each
     * open `openS` seconds (docs/scenario.md)
     */
    lid?: { at: number; openS: number }[]
    /**
     * power cuts: the VM is killed with SIGKILL at `at` and powered again `off` hours later;
     * `rtcLost`: the real-time clock's backup supply did not last (it starts over, time lost)
     */
    powerCuts?: { at: number; off: number; rtcLost?: boolean }[]
    /**
     * the ingest server's database restored from an older backup (ransomware recovery): a backup
     * taken at `backup` hours, the server stopped and started again on it at `restore` hours
     */
    serverRestores?: { backup: number; restore: number }[]
    /** an independent witness (`coldtrace witness`, its own process) cosigns the server's checkpoints */
    witness?: boolean
    /** the server's TLS certificate is signed by a CA the logger does not trust: it must not send */
    untrustedServer?: boolean
    /** the real-time clock (RV-3028): its drift in ppm (factory-new at the start: time not set) */
    rtc?: { driftPpm?: number }
    /** HTTP faults between the device and the server (seeded): rates per request of each fault */
    httpFaults?: { seed: number; rates: Partial<Record<"error500" | "hang" | "dropMidBody" | "dropAck", number>> }
    /** crash consistency: `kills` extra SIGKILLs at random world moments (seeded), power back at once */
    chaos?: { kills: number; seed: number }
    /**
     * a recorded receiver byte stream (raw UBX with NMEA text and noise) that the u-blox model plays
     * instead of its live output, one NAV-PVT per poll: `capture` is a file path (relative to the
     * scenario file), read at load time into `bytes`; `loop` starts it over at its end
     */
    gnss?: { capture: string; loop?: boolean; bytes?: Buffer }
    /** route waypoints [hour, lat, lon] (position is interpolated; equal consecutive positions = stopped) */
    route?: [number, number, number][]
    /** GNSS fix-loss windows (warehouse, tunnel, inside a container) */
    gpsLoss?: { from: number; to: number }[]
    /** legs and places for the report */
    legs?: { from: number; label: string }[]
    /**
     * the logger runs on its cell (hardware/power.json): the world's energy ledger gives the battery
     * sense the cell's voltage from the charge drawn so far (at the board temperature); `startMah`:
     * charge already drawn at the start, `board`: whose currents (v1 devkit, v2 carrier; default v1).
     * Absent: no cell is modelled (the sense reads 0); the energy is still accounted in the summary.
     */
    battery?: { board?: "v1" | "v2"; startMah?: number }
    /**
     * How a deep sleep loses the ESP32's RAM (docs/simulator.md, "Sleep"): "program" (default) the
     * runtime restarts the firmware's program in the same VM process; "process" the world kills the
     * VM's process at the sleep and starts a new one at the wake, as a reset of the board would (about
     * a second of wall time per wake: for short runs that check the fast path).
     */
    sleep?: "program" | "process"
}

export type FaultKind = "open" | "short_vcc" | "short_gnd" | "dead" | "stuck0"
export const FAULT_CODES: Record<FaultKind, number> = { open: 1, short_vcc: 2, short_gnd: 3, dead: 4, stuck0: 5 }

export class ScenarioError extends Error {}

function check(cond: unknown, msg: string): asserts cond {
    if (!cond) throw new ScenarioError(msg)
}

function checkKeyframes(name: string, k: unknown, hours: number) {
    check(Array.isArray(k) && k.length > 0, `${name}: needs at least one [hour, value] keyframe`)
    let prev = -Infinity
    for (const f of k as unknown[]) {
        check(
            Array.isArray(f) && f.length >= 2 && f.every(x => typeof x === "number" && Number.isFinite(x)),
            `${name}: keyframe ${JSON.stringify(f)} is not [hour, value...]`,
        )
        const t = (f as number[])[0]
        check(t >= prev, `${name}: keyframes must be in time order (${t} after ${prev})`)
        check(t >= 0 && t <= hours, `${name}: keyframe hour ${t} is outside 0..${hours}`)
        prev = t
    }
}

function checkWindows(name: string, w: unknown, hours: number) {
    if (w === undefined) return
    check(Array.isArray(w), `${name}: must be a list`)
    for (const x of w as { from: number; to: number }[]) {
        check(typeof x.from === "number" && typeof x.to === "number" && x.from < x.to, `${name}: ${JSON.stringify(x)} needs from < to`)
        check(x.from >= 0 && x.to <= hours, `${name}: ${JSON.stringify(x)} is outside 0..${hours}`)
    }
}

const KEYS = {
    scenario: [
        "name",
        "start",
        "hours",
        "device",
        "probe",
        "board",
        "noise",
        "faults",
        "outages",
        "wifi",
        "cellular",
        "radioOff",
        "busHangs",
        "uplinkHangs",
        "lid",
        "powerCuts",
        "httpFaults",
        "chaos",
        "gnss",
        "route",
        "gpsLoss",
        "legs",
        "rtc",
        "serverRestores",
        "witness",
        "untrustedServer",
        "battery",
        "sleep",
    ],
    device: ["interval", "upload", "low", "high", "tc", "avg", "notch", "oc", "epoch", "fix", "fixmv", "stopv", "stopt", "alarms"],
    window: ["from", "to"],
    fault: ["from", "to", "kind"],
    powerCut: ["at", "off", "rtcLost"],
    lid: ["at", "openS"],
    rtc: ["driftPpm"],
    serverRestore: ["backup", "restore"],
    httpFaults: ["seed", "rates"],
    chaos: ["kills", "seed"],
    cellular: ["product", "relay"],
    relay: ["seed", "delayMs", "jitterMs", "reorder", "holdMs", "duplicate", "duplicateLagMs", "retryMs"],
    gnss: ["capture", "loop"],
    leg: ["from", "label"],
    battery: ["board", "startMah"],
}

/** A field nobody reads is a mistake (a typo, or a field of an older format): an error, not ignored. */
function checkKeys(name: string, o: unknown, allowed: readonly string[]) {
    if (o === undefined) return
    check(o !== null && typeof o === "object" && !Array.isArray(o), `${name}: must be an object`)
    for (const k of Object.keys(o as object)) check(allowed.includes(k), `${name}: unknown field "${k}" (known: ${allowed.join(", ")})`)
}

function checkEach(name: string, list: unknown, allowed: readonly string[]) {
    if (Array.isArray(list)) list.forEach((x, i) => checkKeys(`${name}[${i}]`, x, allowed))
}

/** Parse and validate; every problem is reported with the field it concerns. */
export function parseScenario(json: unknown): Scenario {
    const s = json as Scenario
    check(s && typeof s === "object", "scenario: not a JSON object")
    checkKeys("scenario", s, KEYS.scenario)
    checkKeys("device", s.device, KEYS.device)
    checkEach("faults", s.faults, KEYS.fault)
    for (const w of ["outages", "wifi", "radioOff", "busHangs", "uplinkHangs", "gpsLoss"] as const) checkEach(w, s[w], KEYS.window)
    checkEach("powerCuts", s.powerCuts, KEYS.powerCut)
    checkEach("lid", s.lid, KEYS.lid)
    checkKeys("httpFaults", s.httpFaults, KEYS.httpFaults)
    checkKeys("chaos", s.chaos, KEYS.chaos)
    checkKeys("cellular", s.cellular, KEYS.cellular)
    checkKeys("cellular.relay", s.cellular?.relay, KEYS.relay)
    checkKeys("gnss", s.gnss, KEYS.gnss)
    checkKeys("rtc", s.rtc, KEYS.rtc)
    checkEach("serverRestores", s.serverRestores, KEYS.serverRestore)
    checkEach("legs", s.legs, KEYS.leg)
    checkKeys("battery", s.battery, KEYS.battery)
    check(typeof s.name === "string" && s.name.length > 0, "name: required")
    check(typeof s.start === "string" && !Number.isNaN(Date.parse(s.start)), "start: must be an ISO 8601 date")
    check(typeof s.hours === "number" && s.hours > 0 && s.hours <= 24 * 90, "hours: must be 0 < hours <= 2160")
    check(s.device && typeof s.device.interval === "number" && s.device.interval >= 1, "device.interval: seconds >= 1")
    check(typeof s.device.upload === "number" && s.device.upload >= 10, "device.upload: seconds >= 10")
    check(
        typeof s.device.low === "number" && typeof s.device.high === "number" && s.device.low < s.device.high,
        "device.low/high: low < high",
    )
    checkKeyframes("probe", s.probe, s.hours)
    checkKeyframes("board", s.board, s.hours)
    checkWindows("faults", s.faults, s.hours)
    for (const f of s.faults ?? []) check(f.kind in FAULT_CODES, `faults: unknown kind ${f.kind} (${Object.keys(FAULT_CODES).join(", ")})`)
    checkWindows("outages", s.outages, s.hours)
    checkWindows("radioOff", s.radioOff, s.hours)
    checkWindows("busHangs", s.busHangs, s.hours)
    checkWindows("uplinkHangs", s.uplinkHangs, s.hours)
    checkWindows("wifi", s.wifi, s.hours)
    check(s.lid === undefined || Array.isArray(s.lid), "lid: must be a list of openings")
    let lidFree = 0
    for (const o of s.lid ?? []) {
        check(
            typeof o.at === "number" && typeof o.openS === "number" && o.openS > 0 && o.at >= lidFree && o.at + o.openS / 3600 <= s.hours,
            `lid: ${JSON.stringify(o)} needs openS > 0, inside 0..hours, after the previous opening closed`,
        )
        lidFree = o.at + o.openS / 3600
    }
    for (const p of s.powerCuts ?? [])
        check(
            typeof p.at === "number" && p.at > 0 && p.at < s.hours && typeof p.off === "number" && p.off >= 0,
            `powerCuts: ${JSON.stringify(p)} needs 0 < at < hours and off >= 0`,
        )
    if (s.chaos)
        check(
            Number.isInteger(s.chaos.kills) && s.chaos.kills >= 0 && s.chaos.kills <= 10000 && Number.isInteger(s.chaos.seed),
            "chaos: needs integer kills (0..10000) and seed",
        )
    let lastRestore = 0
    for (const r of s.serverRestores ?? []) {
        check(
            typeof r.backup === "number" &&
                typeof r.restore === "number" &&
                lastRestore <= r.backup &&
                r.backup < r.restore &&
                r.restore < s.hours,
            `serverRestores: ${JSON.stringify(r)} needs backup < restore < hours, after the previous restore`,
        )
        lastRestore = r.restore
    }
    check(s.witness === undefined || typeof s.witness === "boolean", "witness: true or false")
    check(s.untrustedServer === undefined || typeof s.untrustedServer === "boolean", "untrustedServer: true or false")
    if (s.rtc?.driftPpm !== undefined)
        check(typeof s.rtc.driftPpm === "number" && Math.abs(s.rtc.driftPpm) <= 1000, "rtc.driftPpm: a number within +-1000")
    check(s.sleep === undefined || s.sleep === "program" || s.sleep === "process", 'sleep: "program" or "process"')
    if (s.battery) {
        check(s.battery.board === undefined || ["v1", "v2"].includes(s.battery.board), "battery.board: v1 or v2")
        const m = s.battery.startMah
        check(m === undefined || (typeof m === "number" && m >= 0 && m < 2000), "battery.startMah: mAh already drawn, 0 <= startMah < 2000")
    }
    if (s.route) checkKeyframes("route", s.route, s.hours)
    // one program cannot hold both the receiver's and the modem's models (docs/devicescript-traps.md)
    check(!(s.cellular && (s.route || s.gnss)), "cellular: cannot run with a GNSS route or capture in one simulator build")
    // the hanging uplink lives in the Wi-Fi build (devs/src/sim.ts): a cellular run would ignore it
    check(!(s.cellular && s.uplinkHangs), "uplinkHangs: only without cellular (the Wi-Fi simulator build)")
    checkWindows("gpsLoss", s.gpsLoss, s.hours)
    check(!s.gpsLoss || s.route, "gpsLoss: needs a route")
    if (s.gnss) {
        check(typeof s.gnss.capture === "string" && s.gnss.capture.length > 0, "gnss.capture: the path of a recorded receiver stream")
        check(s.gnss.loop === undefined || typeof s.gnss.loop === "boolean", "gnss.loop: true or false")
    }
    return s
}

/** the largest capture accepted: the receiver model (on the host) holds the whole file */
export const MAX_CAPTURE_BYTES = 1024 * 1024

/** Read `gnss.capture` (a path relative to `baseDir`) into `gnss.bytes`. */
export function loadCapture(s: Scenario, baseDir: string): Scenario {
    if (!s.gnss) return s
    const file = path.resolve(baseDir, s.gnss.capture)
    let bytes: Buffer
    try {
        bytes = readFileSync(file)
    } catch (e) {
        throw new ScenarioError(`gnss.capture: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    check(
        bytes.length > 0 && bytes.length <= MAX_CAPTURE_BYTES,
        `gnss.capture: ${bytes.length} bytes; 1..${MAX_CAPTURE_BYTES} are accepted`,
    )
    return { ...s, gnss: { ...s.gnss, bytes } }
}

export function loadScenario(file: string): Scenario {
    let json: unknown
    try {
        json = JSON.parse(readFileSync(file, "utf8"))
    } catch (e) {
        throw new ScenarioError(`${file}: ${(e as Error).message}`)
    }
    try {
        return loadCapture(parseScenario(json), path.dirname(file))
    } catch (e) {
        throw new ScenarioError(`${file}: ${(e as Error).message}`)
    }
}

/** Linear interpolation in [hour, ...values] keyframes; held constant outside them. */
export function interpolate(k: number[][], h: number, col = 1): number {
    if (h <= k[0][0]) return k[0][col]
    for (let i = 1; i < k.length; i++) {
        if (h <= k[i][0]) {
            const [t0, t1] = [k[i - 1][0], k[i][0]]
            const a = t1 === t0 ? 1 : (h - t0) / (t1 - t0)
            return k[i - 1][col] + a * (k[i][col] - k[i - 1][col])
        }
    }
    return k[k.length - 1][col]
}

export function inWindow<W extends { from: number; to: number }>(w: W[] | undefined, h: number): W | undefined {
    return (w ?? []).find(x => h >= x.from && h < x.to)
}

/** Deterministic noise: a hash of the hour bucket, so reruns see the same world. */
function noiseAt(h: number, peak: number): number {
    if (!peak) return 0
    let x = Math.floor(h * 60) * 2654435761
    x = (x ^ (x >>> 16)) >>> 0
    x = Math.imul(x, 0x45d9f3b) >>> 0
    return ((x % 2001) / 1000 - 1) * peak
}

/** Great-circle distance in metres (haversine, mean Earth radius). */
export function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
    const r = (d: number) => (d * Math.PI) / 180
    const a = Math.sin(r(lat2 - lat1) / 2) ** 2 + Math.cos(r(lat1)) * Math.cos(r(lat2)) * Math.sin(r(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * Math.asin(Math.min(1, Math.sqrt(a)))
}

/** Ground speed (m/s) on the route segment containing hour `h`: 0 where the waypoints coincide. */
export function speedAt(route: number[][], h: number): number {
    for (let i = 1; i < route.length; i++) {
        if (h < route[i][0] || (h === route[i][0] && i === route.length - 1)) {
            const [t0, la0, lo0] = route[i - 1]
            const [t1, la1, lo1] = route[i]
            if (h < t0 || t1 <= t0) return 0
            return distanceM(la0, lo0, la1, lo1) / ((t1 - t0) * 3600)
        }
    }
    return 0
}

/** How fast column `col` of the route changes at hour `h` (per second): the slope of its segment, 0 when stopped. */
export function routeRateAt(route: number[][], h: number, col: number): number {
    for (let i = 1; i < route.length; i++) {
        if (h < route[i][0]) {
            const [t0, t1] = [route[i - 1][0], route[i][0]]
            if (h < t0 || t1 <= t0) return 0
            return (route[i][col] - route[i - 1][col]) / ((t1 - t0) * 3600)
        }
    }
    return 0
}

/** The lid's openings as world ms from the start: [opened, closed] (whole ms). */
export function lidOpenings(s: Scenario): [number, number][] {
    return (s.lid ?? []).map(o => [Math.round(o.at * 3_600_000), Math.round(o.at * 3_600_000) + Math.round(o.openS * 1000)])
}

/** whether the lid is open at world ms `ms` */
export function lidOpenAt(s: Scenario, ms: number): boolean {
    return lidOpenings(s).some(([a, b]) => ms >= a && ms < b)
}

/** The physical world at hour `h`. */
export function worldAt(s: Scenario, h: number) {
    const fault = inWindow(s.faults, h)
    return {
        probeC: interpolate(s.probe, h) + noiseAt(h, s.noise ?? 0),
        boardC: interpolate(s.board, h),
        fault: fault ? fault.kind : undefined,
        networkUp: !inWindow(s.outages, h),
        radioOff: !!inWindow(s.radioOff, h),
        busHang: !!inWindow(s.busHangs, h),
        uplinkHang: !!inWindow(s.uplinkHangs, h),
        gps: !!s.route || !!s.gnss,
        gpsFix: !!s.route && !inWindow(s.gpsLoss, h),
        lat: s.route ? interpolate(s.route, h, 1) : 0,
        lon: s.route ? interpolate(s.route, h, 2) : 0,
        /** degrees per second */
        latRate: s.route ? routeRateAt(s.route, h, 1) : 0,
        lonRate: s.route ? routeRateAt(s.route, h, 2) : 0,
        speed: s.route ? speedAt(s.route, h) : 0,
    }
}

/** Every power cut of the run, in time order: the scripted ones and the seeded random SIGKILLs. */
export function allPowerCuts(s: Scenario): { at: number; off: number; rtcLost?: boolean }[] {
    const cuts = [...(s.powerCuts ?? [])]
    if (s.chaos?.kills) {
        // mulberry32: deterministic, so a failing crash run can be replayed
        let a = s.chaos.seed >>> 0
        const rnd = () => {
            a = (a + 0x6d2b79f5) >>> 0
            let t = a
            t = Math.imul(t ^ (t >>> 15), t | 1)
            t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
            return ((t ^ (t >>> 14)) >>> 0) / 4294967296
        }
        for (let i = 0; i < s.chaos.kills; i++) cuts.push({ at: 0.05 + rnd() * (s.hours - 0.1), off: 0 })
    }
    return cuts.sort((x, y) => x.at - y.at)
}
