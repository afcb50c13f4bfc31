/**
 * The logger's console, as the harness and the tests read it: every line the firmware prints with a
 * `ct:` tag is `ct:<tag> key=value key=value ...` (values without spaces, except a free text tail
 * after the fields, e.g. an error). One parser for all of them.
 */
export interface ConsoleLine {
    tag: string
    fields: Record<string, string>
}

export function parseConsoleLine(line: string): ConsoleLine | undefined {
    if (!line.startsWith("ct:")) return undefined
    const sp = line.indexOf(" ")
    const tag = line.slice(3, sp < 0 ? undefined : sp)
    const fields: Record<string, string> = {}
    if (sp >= 0)
        for (const tok of line.slice(sp + 1).split(/\s+/)) {
            const eq = tok.indexOf("=")
            if (eq > 0) fields[tok.slice(0, eq)] = tok.slice(eq + 1)
        }
    return { tag, fields }
}

/** What the firmware printed for one stored sample (`ct:sample ...`). */
export interface SampleLine {
    tc: number
    cj: number
    sr: number
    fl: number
    up: number
    /** device (world) milliseconds of the driver read (conversion wait included) and of the whole cycle */
    rd: number
    ms: number
    /** world UTC ms when it was printed */
    utc: number
}

/**
 * Everything the harness learns from the console during a run: each line with the world instant
 * it was printed at, the samples the device says it stored, boots, uploads.
 */
export class ConsoleLog {
    readonly lines: string[] = []
    /** world UTC ms of each line */
    readonly at: number[] = []
    readonly samples = new Map<number, SampleLine>()
    boots = 0
    provisioned = 0
    readonly uploads = { attempts: 0, ok: 0, failed: 0 }
    lastAck = -1
    /** a tagged line, after it was counted (progress, tests) */
    onLine?: (l: ConsoleLine, utc: number) => void

    add(text: string, utc: number) {
        this.lines.push(text)
        this.at.push(utc)
        const l = parseConsoleLine(text)
        if (!l) return
        const f = l.fields
        switch (l.tag) {
            case "sample":
                this.samples.set(+f.seq, { tc: +f.tc, cj: +f.cj, sr: +f.sr, fl: +f.fl, up: +f.up, rd: +f.rd, ms: +f.ms, utc })
                break
            case "boot":
                this.boots++
                break
            case "provisioned":
                this.provisioned++
                break
            case "upload":
                this.uploads.attempts++
                if (f.status === "200") this.uploads.ok++
                else this.uploads.failed++
                if (f.ack !== undefined && f.ack !== "none") this.lastAck = +f.ack
                break
            case "upload-error":
                this.uploads.attempts++
                this.uploads.failed++
                break
        }
        this.onLine?.(l, utc)
    }

    /** the lines with a tag, with their world instants */
    tagged(tag: string): { line: ConsoleLine; utc: number }[] {
        const out: { line: ConsoleLine; utc: number }[] = []
        this.lines.forEach((t, i) => {
            const l = parseConsoleLine(t)
            if (l?.tag === tag) out.push({ line: l, utc: this.at[i] })
        })
        return out
    }
}
