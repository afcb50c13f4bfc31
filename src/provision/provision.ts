import type { SettingsClient } from "jacdac-ts"

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
}

export interface ProvisionInput {
    devid: Buffer
    devkey: Buffer
    endpoint: string
    config: DeviceConfig
}

export class ProvisionError extends Error {}

/** Validate and encode; throws ProvisionError naming every wrong value. */
export function provisionValues(p: ProvisionInput): Map<string, Buffer> {
    const errs: string[] = []
    if (p.devid.length !== 8) errs.push(`devid must be 8 bytes, got ${p.devid.length}`)
    if (p.devkey.length !== 32) errs.push(`devkey must be 32 bytes, got ${p.devkey.length}`)
    else if (p.devkey.every(b => b === p.devkey[0])) errs.push("devkey is a constant pattern; generate a random key")
    let url: URL | undefined
    try {
        url = new URL(p.endpoint)
    } catch {
        errs.push(`endpoint is not a URL: ${JSON.stringify(p.endpoint)}`)
    }
    if (url && url.protocol !== "https:" && url.protocol !== "http:") errs.push(`endpoint must be http(s), got ${url.protocol}`)
    if (url && (url.username || url.password)) errs.push("endpoint must not carry credentials")
    const c = p.config
    const cfg: Record<string, unknown> = {
        interval: c.interval,
        upload: c.upload,
        low: c.low,
        high: c.high,
        tc: c.tc ?? "T",
        avg: c.avg ?? 1,
        notch: c.notch ?? 50,
    }
    if (!(Number.isInteger(c.interval) && c.interval >= 1 && c.interval <= 86400)) errs.push("config.interval must be 1..86400 s")
    if (!(Number.isInteger(c.upload) && c.upload >= 10 && c.upload <= 604800)) errs.push("config.upload must be 10..604800 s")
    if (!(c.low < c.high)) errs.push("config.low must be below config.high")
    if (!/^[BEJKNRST]$/.test(String(cfg.tc))) errs.push("config.tc must be one of B E J K N R S T")
    if (![1, 2, 4, 8, 16].includes(Number(cfg.avg))) errs.push("config.avg must be 1, 2, 4, 8 or 16")
    if (cfg.notch !== 50 && cfg.notch !== 60) errs.push("config.notch must be 50 or 60")
    const cfgText = Buffer.from(JSON.stringify(cfg))
    if (cfgText.length > 192) errs.push(`config is ${cfgText.length} bytes; the settings store reads back at most 192`)
    const ep = Buffer.from(p.endpoint)
    if (ep.length > 192) errs.push(`endpoint is ${ep.length} bytes; at most 192`)
    if (errs.length) throw new ProvisionError(errs.join("; "))
    return new Map([
        ["devid", p.devid],
        ["devkey", p.devkey],
        ["endpoint", ep],
        ["cfg", cfgText],
    ])
}

/** Write every value and read each back; throws naming the key that did not stick. */
export async function writeProvisioning(client: SettingsClient, values: Map<string, Buffer>): Promise<void> {
    // identity and key first, config last: the logger starts once devid, devkey and endpoint are all there
    for (const [k, v] of values) await client.setValue(k, v)
    for (const [k, v] of values) {
        const back = Buffer.from((await client.getValue(k)) ?? new Uint8Array(0))
        if (!back.equals(v)) throw new ProvisionError(`setting ${k} did not read back as written (store full or link error)`)
    }
}
