// `coldtrace device deploy`: our firmware's bytecode onto a logger over its cable, through the
// DeviceScript manager service the runtime hosts (as the DeviceScript CLI deploys): stop the program,
// send the image through a Jacdac pipe, start it again. The logger's chain says which program made
// each boot's records (the boot record's `fw`), so a deploy shows in the verdict (docs/security.md).
import { createHash } from "node:crypto"
import { DeviceScriptManagerCmd, DeviceScriptManagerReg, OutPipe, type JDService } from "jacdac-ts"

/** a DeviceScript image starts with these 8 bytes (magic "DevS" then 0xf1296e0a, little-endian) */
const IMAGE_MAGIC = Buffer.from("446576530a6e29f1", "hex")
/** the runtime refuses images whose code runs past 64 KB (runtime/devicescript/verify.c, 1051) */
const MAX_IMAGE = 128 * 1024

export class DeployError extends Error {}

/** after a deploy, how often and how long to ask for the new program's hash (20 x 250 ms) */
const HASH_POLLS = 20
const HASH_POLL_MS = 250

/** Why `bytes` is not a DeviceScript image we would send, or undefined when it looks like one. */
export function imageProblem(bytes: Uint8Array): string | undefined {
    if (bytes.length < 64) return `${bytes.length} bytes: too short for a DeviceScript image`
    if (!Buffer.from(bytes.subarray(0, 8)).equals(IMAGE_MAGIC))
        return "not a DeviceScript image (no DevS header): build it with `devs build`"
    if (bytes.length > MAX_IMAGE) return `${bytes.length} bytes: larger than any logger's program space`
    return undefined
}

export interface DeployResult {
    /** false: the logger already runs exactly this image (nothing written: no flash wear) */
    written: boolean
    sha256: string
}

/**
 * Deploy `image` to the DeviceScript manager `service`. The program is stopped while the image goes
 * over and started again after (also when the transfer fails, with whatever the runtime kept).
 */
export async function deployImage(service: JDService, image: Uint8Array, progress?: (fraction: number) => void): Promise<DeployResult> {
    const problem = imageProblem(image)
    if (problem) throw new DeployError(problem)
    const sha256 = createHash("sha256").update(image).digest()
    const running = service.register(DeviceScriptManagerReg.Running)
    const current = service.register(DeviceScriptManagerReg.ProgramSha256)
    await current.refresh()
    if (current.data && Buffer.from(current.data).equals(sha256)) return { written: false, sha256: sha256.toString("hex") }
    await running.sendSetBoolAsync(false)
    try {
        await OutPipe.sendBytes(service, DeviceScriptManagerCmd.DeployBytecode, image, progress)
    } finally {
        await running.sendSetBoolAsync(true)
    }
    // the runtime writes the image to flash and restarts the program before it reports the new hash
    // (and a report may be lost on a busy link): ask again for a while
    for (let i = 0; i < HASH_POLLS; i++) {
        await current.refresh()
        if (current.data && Buffer.from(current.data).equals(sha256)) return { written: true, sha256: sha256.toString("hex") }
        await new Promise(r => setTimeout(r, HASH_POLL_MS))
    }
    throw new DeployError("the logger does not report the new program's hash after the deploy: run `coldtrace device status`")
}
