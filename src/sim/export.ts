import type { SettingsClient } from "jacdac-ts"
import { readSetting } from "../provision/settings.js"
import { blockKey, decodeBlock, decodeLogAck, decodeLogMeta, LOG_ACK_KEY, LOG_META_KEY } from "../format/index.js"
import type { ChainEntry } from "../verify/chain.js"

/**
 * A logger's log as read out of its flash (docs/format.md section 5): the raw settings values of the
 * log, nothing secret (no keys). Written as `device-export.json`; `coldtrace verify --export` reads it.
 */
export interface DeviceExportFile {
    format: "coldtrace-export-v2"
    devid: string
    /** settings key -> value, hex: lgmeta, lgack and the blocks lgXXXXXXXX */
    settings: Record<string, string>
}

export interface DeviceExport {
    boot: number
    ackSeq: number | null
    entries: ChainEntry[]
    file: DeviceExportFile
}

/** Decode an export file: the records it holds, in seq order, and the device's ack state. */
export function decodeExport(file: DeviceExportFile): Omit<DeviceExport, "file"> {
    const get = (k: string) => (file.settings[k] !== undefined ? Buffer.from(file.settings[k], "hex") : undefined)
    const metaBuf = get(LOG_META_KEY)
    const ackBuf = get(LOG_ACK_KEY)
    const entries: ChainEntry[] = []
    if (!metaBuf) return { boot: 0, ackSeq: null, entries }
    const meta = decodeLogMeta(metaBuf)
    for (let n = meta.firstBlock; n <= meta.lastBlock + 1; n++) {
        const v = get(blockKey(n))
        if (!v) continue
        const blk = decodeBlock(v)
        // the slot after last_block counts only if it continues the log (block keys are a ring)
        if (n > meta.lastBlock && entries.length && blk.firstSeq !== entries[entries.length - 1].seq + 1) continue
        blk.recordBytes.forEach((bytes, i) => entries.push({ seq: blk.firstSeq + i, bytes }))
    }
    return { boot: meta.boot, ackSeq: ackBuf ? decodeLogAck(ackBuf).ackSeq : null, entries }
}

/**
 * Read the record log out of a logger's flash over Jacdac, the way the firmware finds it after a
 * restart: lgmeta, then the blocks it names (and one past it), then lgack.
 */
export async function exportDeviceLog(client: SettingsClient, devid: string): Promise<DeviceExport> {
    const file: DeviceExportFile = { format: "coldtrace-export-v2", devid, settings: {} }
    const put = async (k: string) => {
        const v = await readSetting(client, k)
        if (v) file.settings[k] = v.toString("hex")
        return v
    }
    const metaBuf = await put(LOG_META_KEY)
    await put(LOG_ACK_KEY)
    if (metaBuf) {
        const meta = decodeLogMeta(metaBuf)
        for (let n = meta.firstBlock; n <= meta.lastBlock + 1; n++) await put(blockKey(n))
    }
    return { ...decodeExport(file), file }
}
