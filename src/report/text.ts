// Numbers, temperatures, durations and times as every human-facing report writes them.
import { timeMs, type TimeValue } from "./summary.js"
import { bothText } from "./time.js"

export function isNum(v: unknown): v is number {
    return typeof v === "number" && Number.isFinite(v)
}

export function fmtNum(v: unknown, digits = 0): string {
    return isNum(v) ? v.toFixed(digits) : "—"
}

/** "−78.50 °C": a real minus sign (U+2212), as typeset text wants it. */
export function fmtC(v: unknown): string {
    return isNum(v) ? `${minus(v.toFixed(2))} °C` : "—"
}

/** Replace a leading hyphen-minus by the minus sign. */
export function minus(text: string): string {
    return text.replace(/^-/, "−")
}

export function fmtBand(b: { low: number; high: number } | undefined): string {
    return b && isNum(b.low) && isNum(b.high) ? `${minus(b.low.toFixed(1))} to ${minus(b.high.toFixed(1))} °C` : "— °C"
}

export function fmtDuration(ms: number): string {
    if (!Number.isFinite(ms) || ms < 0) return "—"
    const s = Math.round(ms / 1000)
    const d = Math.floor(s / 86400)
    const h = Math.floor((s % 86400) / 3600)
    const m = Math.floor((s % 3600) / 60)
    if (d > 0) return `${d} d ${h} h ${m} min`
    if (h > 0) return `${h} h ${m} min`
    if (m > 0) return `${m} min ${s % 60} s`
    return `${s} s`
}

/** Local time in `zone` with UTC; the raw text when it is not a readable time; "—" when absent. */
export function fmtTime(t: TimeValue | null | undefined, zone = "UTC"): string {
    const ms = timeMs(t)
    if (!Number.isFinite(ms)) return t === null || t === undefined || t === "" ? "—" : String(t)
    return bothText(ms, zone)
}

export function plural(n: number, word: string, many = `${word}s`): string {
    return `${n} ${n === 1 ? word : many}`
}

/** Charge for a reader: "2779.9 mAh", "2.50 mAh", "0.0001 mAh" (a sample's conversion is a tenth of a uAh). */
export function fmtMah(v: unknown): string {
    if (!isNum(v)) return "—"
    const digits = Math.abs(v) >= 100 ? 1 : Math.abs(v) >= 1 ? 2 : 4
    return `${v.toFixed(digits)} mAh`
}
