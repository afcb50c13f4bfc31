import { createHash, randomBytes } from "node:crypto"
import type { SettingsClient } from "jacdac-ts"
import { ruleProblems } from "../alarms/validate.js"
import { findPreset } from "../alarms/presets.js"
import { compiledRuleSet } from "../alarms/compiled.js"
import type { AlarmRule } from "../alarms/types.js"

/**
 * What a technician writes into a logger before it ships (docs/provisioning.md). Every value is
 * checked here, before anything is written, and read back after, so a half-provisioned logger is
 * reported, not shipped.
 */
export interface DeviceConfig {
    interval: number
    upload: number
    low: number
    high: number
    tc?: string
    avg?: number
    notch?: number
    /** MAX31856 open-circuit detection mode 0..3 */
    oc?: number
    /** key epoch, seconds */
    epoch?: number
    /** GNSS: seconds between fixes stationary / moving; a stop is below stopv m/s for stopt s */
    fix?: number
    fixmv?: number
    stopv?: number
    stopt?: number
    /** alarm rules (docs/alarms.md): a preset name or a list of rules */
    alarms?: string | unknown[]
}

/** Per-device secrets (docs/format.md section 1); generate with `newDeviceKeys()`. */
export interface DeviceKeys {
    devid: Buffer
    /** initial MAC key k0: to the device (erased there at its first boot) and to the server */
    k0: Buffer
    ackkey: Buffer
    lockey: Buffer
}

export interface ProvisionInput extends DeviceKeys {
    endpoint: string
    config: DeviceConfig
    /** tests only: accept a plain `http://` endpoint (batches and acks are authenticated, but not confidential) */
    allowHttp?: boolean
}

export function newDeviceKeys(devid: Buffer = randomBytes(8)): DeviceKeys {
    return { devid, k0: randomBytes(32), ackkey: randomBytes(32), lockey: randomBytes(32) }
}

/**
 * A short public name for a device's key set (the label's `key` line, the escrow file's
 * `fingerprint`): the first 8 bytes of SHA-256 over a domain string, the device id and the three keys.
 * It lets a person match a logger's label to its escrow file; it reveals nothing of the keys.
 */
export function keyFingerprint(k: DeviceKeys): string {
    const h = createHash("sha256").update("coldtrace-key-fingerprint-v1").update(k.devid).update(k.k0).update(k.ackkey).update(k.lockey)
    return h
        .digest()
        .subarray(0, 8)
        .toString("hex")
        .replace(/(....)(?=.)/g, "$1 ")
}

/**
 * The keys file a verifier needs (`device-secret.json`, written with mode 0600; never logged).
 * With the provisioning it also escrows the configuration: its text, the endpoint and the hash
 * the logger's config records must carry (the verifier checks them against it).
 */
export function deviceSecretJson(k: DeviceKeys, p?: { config: DeviceConfig; endpoint: string }) {
    return {
        devid: k.devid.toString("hex"),
        fingerprint: keyFingerprint(k),
        k0: k.k0.toString("hex"),
        ackkey: k.ackkey.toString("hex"),
        lockey: k.lockey.toString("hex"),
        ...(p ? { config: configText(p.config), endpoint: p.endpoint, configHash: configHash(p.config, p.endpoint).toString("hex") } : {}),
    }
}

/** The `cfg` setting as written: every field, defaults filled in, in the firmware's order (devs/app/config.ts). */
export function configText(c: DeviceConfig): string {
    return JSON.stringify({
        interval: c.interval,
        upload: c.upload,
        low: c.low,
        high: c.high,
        tc: c.tc ?? "T",
        avg: c.avg ?? 1,
        notch: c.notch ?? 50,
        oc: c.oc ?? 1,
        epoch: c.epoch ?? 43200,
        fix: c.fix ?? 900,
        fixmv: c.fixmv ?? 300,
        stopv: c.stopv ?? 1,
        stopt: c.stopt ?? 900,
        // only when given: the configuration text (and its hash) of loggers without rules stays as it was
        ...(c.alarms !== undefined ? { alarms: c.alarms } : {}),
    })
}

/**
 * The rule set the logger runs (docs/alarms.md 5.1): the configuration's `alarms` (a preset's rules,
 * or its own list) compiled for its interval; undefined without `alarms` (or with an unknown preset,
 * which validation refuses).
 */
export function alarmRulesValue(c: DeviceConfig): Buffer | undefined {
    if (c.alarms === undefined) return undefined
    const rules = typeof c.alarms === "string" ? findPreset(c.alarms)?.rules : (c.alarms as AlarmRule[])
    return rules ? compiledRuleSet({ intervalS: c.interval, rules }) : undefined
}

/**
 * What the logger's config record carries for this provisioning: the first 16 bytes of
 * SHA-256(cfg text || endpoint || compiled rules, when there are rules), as the firmware computes it
 * (devs/app/config.ts readProvisioning): the rules the logger runs are part of the configuration.
 */
export function configHash(c: DeviceConfig, endpoint: string): Buffer {
    const h = createHash("sha256").update(configText(c)).update(endpoint)
    const rules = alarmRulesValue(c)
    if (rules) h.update(rules)
    return h.digest().subarray(0, 16)
}

export function parseDeviceSecret(json: { devid: string; k0: string; ackkey: string; lockey?: string }): DeviceKeys {
    const hex = (v: string | undefined, n: number, name: string) => {
        if (typeof v !== "string" || !new RegExp(`^[0-9a-f]{${2 * n}}$`).test(v))
            throw new ProvisionError(`${name} must be ${2 * n} hex digits`)
        return Buffer.from(v, "hex")
    }
    return {
        devid: hex(json.devid, 8, "devid"),
        k0: hex(json.k0, 32, "k0"),
        ackkey: hex(json.ackkey, 32, "ackkey"),
        lockey: json.lockey ? hex(json.lockey, 32, "lockey") : Buffer.alloc(0),
    }
}

export class ProvisionError extends Error {}

/** Validate and encode; throws ProvisionError naming every wrong value. */
export function provisionValues(p: ProvisionInput): Map<string, Buffer> {
    const errs: string[] = []
    if (p.devid.length !== 8) errs.push(`devid must be 8 bytes, got ${p.devid.length}`)
    for (const [name, k] of [
        ["k0", p.k0],
        ["ackkey", p.ackkey],
        ["lockey", p.lockey],
    ] as const) {
        if (k.length !== 32) errs.push(`${name} must be 32 bytes, got ${k.length}`)
        else if (k.every(b => b === k[0])) errs.push(`${name} is a constant pattern; generate a random key`)
    }
    if (p.k0.equals(p.ackkey) || p.k0.equals(p.lockey) || p.ackkey.equals(p.lockey)) errs.push("keys must differ from each other")
    let url: URL | undefined
    try {
        url = new URL(p.endpoint)
    } catch {
        errs.push(`endpoint is not a URL: ${JSON.stringify(p.endpoint)}`)
    }
    if (url && url.protocol !== "https:" && url.protocol !== "http:") errs.push(`endpoint must be http(s), got ${url.protocol}`)
    else if (url && url.protocol === "http:" && !p.allowHttp)
        errs.push("endpoint must be https:// (plain http only with the explicit test flag allowHttp)")
    if (url && (url.username || url.password)) errs.push("endpoint must not carry credentials")
    const c = p.config
    const cfg = JSON.parse(configText(c)) as Record<string, unknown>
    if (!(Number.isInteger(c.interval) && c.interval >= 1 && c.interval <= 86400)) errs.push("config.interval must be 1..86400 s")
    if (!(Number.isInteger(c.upload) && c.upload >= 10 && c.upload <= 604800)) errs.push("config.upload must be 10..604800 s")
    if (!(c.low < c.high)) errs.push("config.low must be below config.high")
    if (!/^[BEJKNRST]$/.test(String(cfg.tc))) errs.push("config.tc must be one of B E J K N R S T")
    if (![1, 2, 4, 8, 16].includes(Number(cfg.avg))) errs.push("config.avg must be 1, 2, 4, 8 or 16")
    if (cfg.notch !== 50 && cfg.notch !== 60) errs.push("config.notch must be 50 or 60")
    if (![0, 1, 2, 3].includes(Number(cfg.oc))) errs.push("config.oc must be 0..3")
    if (!(Number.isInteger(cfg.epoch) && Number(cfg.epoch) >= 60 && Number(cfg.epoch) <= 604800))
        errs.push("config.epoch must be 60..604800 s")
    const [fix, fixmv, stopv, stopt] = [cfg.fix, cfg.fixmv, cfg.stopv, cfg.stopt].map(Number)
    if (!(fixmv >= 10 && fix >= fixmv && fix <= 86400)) errs.push("config.fix/fixmv must be 10 <= fixmv <= fix <= 86400 s")
    if (!(stopv > 0 && stopv < 50 && stopt >= 60 && stopt <= 86400))
        errs.push("config.stopv must be 0..50 m/s and config.stopt 60..86400 s")
    if (typeof c.alarms === "string" && !findPreset(c.alarms)) errs.push(`config.alarms: unknown preset ${JSON.stringify(c.alarms)}`)
    else if (c.alarms !== undefined && typeof c.alarms !== "string") errs.push(...ruleProblems(c.alarms, c.interval, "config.alarms"))
    const cfgText = Buffer.from(configText(c))
    if (cfgText.length > 192) errs.push(`config is ${cfgText.length} bytes; the settings store reads back at most 192`)
    const ep = Buffer.from(p.endpoint)
    if (ep.length > 192) errs.push(`endpoint is ${ep.length} bytes; at most 192`)
    if (errs.length) throw new ProvisionError(errs.join("; "))
    const rules = alarmRulesValue(c)
    // identity and keys first, endpoint and config last
    return new Map([
        ["devid", p.devid],
        ["devkey", p.k0],
        ["ackkey", p.ackkey],
        ["lockey", p.lockey],
        ["cfg", cfgText],
        // the alarm rules compiled to the logger's integers (docs/alarms.md 5.1), with the configuration
        ...(rules ? ([["alarms", rules]] as [string, Buffer][]) : []),
        // the logger refuses a plain http:// endpoint unless this test flag is set as well
        ...(p.allowHttp ? ([["allowhttp", Buffer.from([1])]] as [string, Buffer][]) : []),
        ["endpoint", ep],
    ])
}

/**
 * Write every value and read each back; throws naming the key that did not stick. The logger starts
 * once it sees the endpoint, written last, so it never starts half-provisioned.
 */
export async function writeProvisioning(client: SettingsClient, values: Map<string, Buffer>): Promise<void> {
    // each value is checked before the next is written: once the endpoint lands the logger starts
    // and moves devkey away, so nothing is read back after that
    for (const [k, v] of values) {
        await client.setValue(k, v)
        const back = Buffer.from((await client.getValue(k)) ?? new Uint8Array(0))
        if (!back.equals(v)) throw new ProvisionError(`setting ${k} did not read back as written (store full or link error)`)
    }
}
