// The shipment file (docs/reports.md): what the log does not know about the shipment it travelled
// with: its id, GS1 identifiers, product, lot, sender, receiver and the alarm preset to judge it by.
import { readFileSync } from "node:fs"

/** A shipment file that cannot be used: the report command exits with 2. */
export class ShipmentError extends Error {}

export interface Party {
    name: string
    /** GS1 Global Location Number, 13 digits with its check digit */
    gln?: string
}

export interface Shipment {
    shipmentId: string
    /** GS1 Serial Shipping Container Code, 18 digits with its check digit */
    sscc?: string
    product?: { name: string; gtin?: string }
    lot?: string
    sender?: Party
    receiver?: Party
    /** a preset name (ALARM_PRESETS) or a band of its own */
    alarmPreset?: string | { low: number; high: number; name?: string }
}

export interface AlarmPreset {
    id: string
    name: string
    low: number
    high: number
}

/**
 * Temperature bands by name. Today a preset is a band: the host marks every non-faulted reading
 * outside it as an excursion. The rule engine (WHO alarm presets with durations) will add rules
 * to a preset; a report then lists one outcome per rule (ReportModel.alarms).
 */
export const ALARM_PRESETS: readonly AlarmPreset[] = [
    { id: "refrigerated", name: "refrigerated, +2 to +8 °C", low: 2, high: 8 },
    { id: "frozen", name: "frozen, −25 to −15 °C", low: -25, high: -15 },
    { id: "ultra-cold", name: "ultra-cold, −90 to −60 °C", low: -90, high: -60 },
    { id: "room", name: "controlled room temperature, +15 to +25 °C", low: 15, high: 25 },
]

/** The band used when no shipment file (or no preset in it) is given. */
export const DEFAULT_PRESET = ALARM_PRESETS[0]

export type PresetSource = "shipment" | "provisioning" | "default"

/**
 * The preset a shipment names; without one, the band the logger was provisioned with (the escrow
 * keys file keeps its configuration); DEFAULT_PRESET without either. `source` says which.
 */
export function resolvePreset(
    s: Shipment | null,
    provisioned?: { low: number; high: number } | null,
): AlarmPreset & { source: PresetSource } {
    const p = s?.alarmPreset
    if (p === undefined) {
        if (provisioned)
            return {
                id: "provisioned",
                name: `as provisioned, ${provisioned.low} to ${provisioned.high} °C`,
                ...provisioned,
                source: "provisioning",
            }
        return { ...DEFAULT_PRESET, source: "default" }
    }
    if (typeof p === "string") {
        const known = ALARM_PRESETS.find(x => x.id === p)
        if (!known) throw new ShipmentError(`unknown alarm preset ${JSON.stringify(p)} (known: ${ALARM_PRESETS.map(x => x.id).join(", ")})`)
        return { ...known, source: "shipment" }
    }
    return { id: "custom", name: p.name ?? `custom, ${p.low} to ${p.high} °C`, low: p.low, high: p.high, source: "shipment" }
}

/** GS1 modulo-10 check digit over all digits but the last. */
export function gs1CheckDigitOk(digits: string): boolean {
    if (!/^\d+$/.test(digits)) return false
    let sum = 0
    const body = digits.slice(0, -1)
    for (let i = 0; i < body.length; i++) {
        // weights 3, 1, 3, ... from the digit next to the check digit
        const w = (body.length - i) % 2 === 1 ? 3 : 1
        sum += Number(body[i]) * w
    }
    return (10 - (sum % 10)) % 10 === Number(digits.at(-1))
}

const KNOWN_KEYS = ["shipmentId", "sscc", "product", "lot", "sender", "receiver", "alarmPreset"]

function str(v: unknown, what: string, max = 200): string {
    if (typeof v !== "string" || v.trim() === "" || v.length > max)
        throw new ShipmentError(`${what} must be a text of 1..${max} characters`)
    return v
}

function gs1Key(v: unknown, what: string, lengths: number[]): string {
    if (typeof v !== "string" || !/^\d+$/.test(v) || !lengths.includes(v.length))
        throw new ShipmentError(`${what} must be ${lengths.join(" or ")} digits`)
    if (!gs1CheckDigitOk(v)) throw new ShipmentError(`${what} ${v}: wrong check digit`)
    return v
}

function party(v: unknown, what: string): Party {
    if (!v || typeof v !== "object") throw new ShipmentError(`${what} must be {"name": ..., "gln"?: ...}`)
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) if (k !== "name" && k !== "gln") throw new ShipmentError(`${what}: unknown field ${JSON.stringify(k)}`)
    return { name: str(o.name, `${what}.name`), ...(o.gln !== undefined ? { gln: gs1Key(o.gln, `${what}.gln`, [13]) } : {}) }
}

function preset(v: unknown): Shipment["alarmPreset"] {
    if (typeof v === "string") {
        resolvePreset({ shipmentId: "-", alarmPreset: v }) // throws for an unknown name
        return v
    }
    if (!v || typeof v !== "object") throw new ShipmentError(`alarmPreset must be a preset name or {"low": C, "high": C}`)
    const o = v as Record<string, unknown>
    const ok = (x: unknown) => typeof x === "number" && Number.isFinite(x) && x >= -273 && x <= 1000
    if (!ok(o.low) || !ok(o.high) || (o.low as number) >= (o.high as number))
        throw new ShipmentError(`alarmPreset: low and high must be temperatures in °C with low < high`)
    return { low: o.low as number, high: o.high as number, ...(o.name !== undefined ? { name: str(o.name, "alarmPreset.name") } : {}) }
}

/** Check a parsed shipment file; throws ShipmentError naming the first wrong field. */
export function parseShipment(j: unknown): Shipment {
    if (!j || typeof j !== "object" || Array.isArray(j)) throw new ShipmentError("a shipment file is a JSON object")
    const o = j as Record<string, unknown>
    for (const k of Object.keys(o))
        if (!KNOWN_KEYS.includes(k)) throw new ShipmentError(`unknown field ${JSON.stringify(k)} (known: ${KNOWN_KEYS.join(", ")})`)
    const s: Shipment = { shipmentId: str(o.shipmentId, "shipmentId", 80) }
    if (o.sscc !== undefined) s.sscc = gs1Key(o.sscc, "sscc", [18])
    if (o.product !== undefined) {
        const p = o.product as Record<string, unknown>
        if (!p || typeof p !== "object") throw new ShipmentError(`product must be {"name": ..., "gtin"?: ...}`)
        for (const k of Object.keys(p))
            if (k !== "name" && k !== "gtin") throw new ShipmentError(`product: unknown field ${JSON.stringify(k)}`)
        // GTIN-8, -12, -13 or -14; kept as GTIN-14 (zeros in front), the form GS1 Digital Link uses
        s.product = {
            name: str(p.name, "product.name"),
            ...(p.gtin !== undefined ? { gtin: gs1Key(p.gtin, "product.gtin", [8, 12, 13, 14]).padStart(14, "0") } : {}),
        }
    }
    if (o.lot !== undefined) {
        // GS1 AI (10): up to 20 characters of the GS1 character set (a safe subset here)
        if (typeof o.lot !== "string" || !/^[A-Za-z0-9\-./_]{1,20}$/.test(o.lot))
            throw new ShipmentError(`lot must be 1..20 letters, digits or - . / _`)
        s.lot = o.lot
    }
    if (o.sender !== undefined) s.sender = party(o.sender, "sender")
    if (o.receiver !== undefined) s.receiver = party(o.receiver, "receiver")
    if (o.alarmPreset !== undefined) s.alarmPreset = preset(o.alarmPreset)
    return s
}

export function loadShipment(file: string): Shipment {
    let text: string
    try {
        text = readFileSync(file, "utf8")
    } catch (e) {
        throw new ShipmentError(`cannot read shipment file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    let j: unknown
    try {
        j = JSON.parse(text)
    } catch (e) {
        throw new ShipmentError(`${file} is not JSON: ${(e as Error).message}`)
    }
    try {
        return parseShipment(j)
    } catch (e) {
        if (e instanceof ShipmentError) throw new ShipmentError(`${file}: ${e.message}`)
        throw e
    }
}
