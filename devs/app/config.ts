import * as ds from "@devicescript/core"
import { digest } from "@devicescript/crypto"
import { kvGet } from "../flash/kv"

/**
 * Provisioning and configuration, from the settings store (written over USB by `coldtrace provision`).
 *   devid    8 bytes     device identity
 *   devkey   32 bytes    initial MAC key k0; moved to `ep` and erased at the first boot; never logged
 *   ackkey   32 bytes    authenticates the server's acknowledgements
 *   lockey   32 bytes    AES-256-CCM key for positions
 *   endpoint utf-8 URL   ingest server, e.g. https://ingest.example/v1/batch (https only, unless:)
 *   allowhttp 1 byte     tests only: a plain http:// endpoint is taken
 *   cfg      JSON        LoggerConfig (< 192 bytes)
 *   alarms   bytes       the alarm rules compiled by the host (docs/alarms.md 5.1), when `cfg` names rules
 * There are no defaults for identity, keys or endpoint: an unprovisioned logger waits and says so.
 */
export interface LoggerConfig {
    /** sampling interval, seconds */
    interval: number
    /** upload period, seconds */
    upload: number
    /** alarm band, degrees C */
    low: number
    high: number
    /** thermocouple type letter */
    tc: string
    /** MAX31856 averaging (1, 2, 4, 8, 16) */
    avg: number
    /** mains notch, 50 or 60 Hz */
    notch: number
    /** open-circuit detection mode (MAX31856 OCFAULT, 0..3) */
    oc: number
    /** key epoch, seconds of device time (docs/format.md 3.2) */
    epoch: number
    /** GNSS: seconds between fixes stationary / moving; stop = below stopv m/s for stopt s */
    fix: number
    fixmv: number
    stopv: number
    stopt: number
}

export const DEFAULT_CONFIG: LoggerConfig = {
    interval: 300,
    upload: 3600,
    low: -80,
    high: -60,
    tc: "T",
    avg: 1,
    notch: 50,
    oc: 1,
    epoch: 43200,
    fix: 900,
    fixmv: 300,
    stopv: 1,
    stopt: 900,
}

export interface Provisioning {
    devid: Buffer
    ackkey: Buffer
    lockey: Buffer
    endpoint: string
    config: LoggerConfig
    /** the first 16 bytes of SHA-256 over the configuration text, for the config record */
    configHash: Buffer
    /** the epoch key's value (`ep`) as read here, so the key chain need not read it again (undefined before the first boot) */
    epochKey?: Buffer
    /** the compiled alarm rules (docs/alarms.md 5.1) when the configuration has `alarms` */
    alarmRules?: Buffer
}

function validConfig(c: LoggerConfig): string {
    if (!(c.interval >= 1 && c.interval <= 86400)) return "interval must be 1..86400 s"
    if (!(c.upload >= 10 && c.upload <= 7 * 86400)) return "upload must be 10..604800 s"
    if (!(c.low < c.high)) return "alarm band: low must be below high"
    if ("BEJKNRST".indexOf(c.tc) < 0 || c.tc.length !== 1) return "tc must be one of B E J K N R S T"
    if ([1, 2, 4, 8, 16].indexOf(c.avg) < 0) return "avg must be 1, 2, 4, 8 or 16"
    if (c.notch !== 50 && c.notch !== 60) return "notch must be 50 or 60"
    if ([0, 1, 2, 3].indexOf(c.oc) < 0) return "oc must be 0..3"
    if (!(c.epoch >= 60 && c.epoch <= 7 * 86400)) return "epoch must be 60..604800 s"
    if (!(c.fixmv >= 10 && c.fix >= c.fixmv && c.fix <= 86400)) return "fix/fixmv must be 10 <= fixmv <= fix <= 86400 s"
    if (!(c.stopv > 0 && c.stopv < 50 && c.stopt >= 60 && c.stopt <= 86400)) return "stopv must be 0..50 m/s, stopt 60..86400 s"
    return undefined
}

/** Reads provisioning once; undefined (with the reason logged) when incomplete or invalid. */
export async function readProvisioning(quiet = false): Promise<Provisioning> {
    const devid = await kvGet("devid")
    const epochKey = await kvGet("ep")
    const haveKey = epochKey || (await kvGet("devkey"))
    const ackkey = await kvGet("ackkey")
    const lockey = await kvGet("lockey")
    const ep = await kvGet("endpoint")
    if (!devid || devid.length !== 8 || !haveKey || !ackkey || ackkey.length !== 32 || !lockey || lockey.length !== 32 || !ep) {
        if (!quiet) console.log("ct:unprovisioned need devid (8 B), devkey, ackkey, lockey (32 B) and endpoint")
        return undefined
    }
    const cfgBuf = await kvGet("cfg")
    const cfgText = cfgBuf ? cfgBuf.toString("utf-8") : ""
    const config: LoggerConfig = Object.assign({}, DEFAULT_CONFIG)
    if (cfgText) {
        let parsed: any
        try {
            parsed = JSON.parse(cfgText)
        } catch (e) {
            console.log("ct:config-error cfg is not JSON; using defaults")
        }
        if (parsed) {
            const merged = Object.assign(Object.assign({}, DEFAULT_CONFIG), parsed)
            const why = validConfig(merged)
            if (why) console.log("ct:config-error " + why + "; using defaults")
            else Object.assign(config, merged)
        }
    }
    const endpoint = ep.toString("utf-8")
    // batches and acks are authenticated either way, but the records are only confidential over TLS
    if (!endpoint.startsWith("https://") && !(await kvGet("allowhttp"))) {
        if (!quiet) console.log("ct:unprovisioned endpoint must be https:// (plain http only with the test flag allowhttp)")
        return undefined
    }
    // the rules the logger runs are part of its configuration: the config record's hash covers them
    const alarmRules = (config as any).alarms !== undefined ? await kvGet("alarms") : undefined
    const parts = [Buffer.from(JSON.stringify(config)), Buffer.from(endpoint)]
    if (alarmRules) parts.push(alarmRules)
    const configHash = digest("sha256", ...parts).slice(0, 16)
    return { devid, ackkey, lockey, endpoint, config, configHash, epochKey, alarmRules }
}

/** A factory-new logger waits here until a technician provisions it. */
export async function waitForProvisioning(): Promise<Provisioning> {
    let quiet = false
    for (;;) {
        const p = await readProvisioning(quiet)
        if (p) {
            console.log("ct:provisioned")
            return p
        }
        quiet = true
        await ds.sleep(500)
    }
}
