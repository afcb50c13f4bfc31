import type { SettingsClient } from "jacdac-ts"
import { readSetting } from "../provision/settings.js"
import { BLOCK_SLOTS, LOG_ACK_KEY, LOG_META_KEY, STATE_KEY, TAIL_KEY, blockKey, decodeLogMeta, readFlashLog } from "../format/index.js"
import type { ChainEntry } from "../verify/chain.js"

export const EXPORT_FORMAT = "coldtrace-export-v3"

/**
 * A logger's log as read out of its flash (docs/format.md section 5): the raw settings values of the
 * log, nothing secret (no keys: `ep` is never exported). Written as `device-export.json`;
 * `coldtrace verify --export` reads it.
 */
export interface DeviceExportFile {
    format: typeof EXPORT_FORMAT
    devid: string
    /** settings key -> value, hex: lgmeta, lgack, tl, st and the blocks b00..b3f that lgmeta names */
    settings: Record<string, string>
}

export interface DeviceExport {
    boot: number
    ackSeq: number | null
    entries: ChainEntry[]
    /** heads the flash states after a seq (lgmeta's base and open heads, lgack's head) */
    claims: { seq: number; head: Buffer }[]
    /** what did not decode (a block, a bookkeeping value) */
    problems: { seq: number; detail: string }[]
    file: DeviceExportFile
}

/** Decode an export file: the records it holds, in seq order, and the device's ack state (readFlashLog). */
export function decodeExport(file: DeviceExportFile): Omit<DeviceExport, "file"> {
    const get = (k: string) => (file.settings[k] !== undefined ? Buffer.from(file.settings[k], "hex") : undefined)
    const log = readFlashLog(get)
    return {
        boot: log.boot,
        ackSeq: log.ack ? log.ack.ackSeq : null,
        entries: log.entries.map(e => ({ seq: e.seq, bytes: e.bytes })),
        claims: log.claims.map(c => ({ seq: c.seq, head: c.head })),
        problems: log.problems,
    }
}

/**
 * Read the record log out of a logger's flash over Jacdac, the way the firmware finds it after a
 * restart: lgmeta, the blocks it names, the open block's tail, lgack and the wake state.
 */
export async function exportDeviceLog(
    client: SettingsClient,
    devid: string,
    progress?: (blocksRead: number, blocks: number) => void,
): Promise<DeviceExport> {
    const file: DeviceExportFile = { format: EXPORT_FORMAT, devid, settings: {} }
    const put = async (k: string) => {
        const v = await readSetting(client, k)
        if (v) file.settings[k] = v.toString("hex")
        return v
    }
    const metaBuf = await put(LOG_META_KEY)
    await put(TAIL_KEY)
    await put(LOG_ACK_KEY)
    await put(STATE_KEY)
    if (metaBuf) {
        const meta = decodeLogMeta(metaBuf)
        const last = Math.min(meta.lastBlock, meta.firstBlock + BLOCK_SLOTS - 1)
        const blocks = last - meta.firstBlock + 1
        for (let n = meta.firstBlock; n <= last; n++) {
            await put(blockKey(n))
            progress?.(n - meta.firstBlock + 1, blocks)
        }
    }
    return { ...decodeExport(file), file }
}
