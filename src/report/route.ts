// The route as a small map without tiles: the decrypted positions as a polyline in an
// equirectangular projection (longitude scaled by the cosine of the middle latitude, so shapes are
// right at shipment scale), stops as numbered circles, start and end marked. Drawn as SVG for the
// HTML report and with the same numbers in the PDF.
import type { RoutePoint } from "./model.js"
import type { Stop } from "./summary.js"
import { escapeHtml as esc } from "./escape.js"
import { n1 } from "./chart.js"

export const ROUTE_BOX = { width: 1000, height: 520, pad: 40 } as const

export interface RouteGeometry {
    width: number
    height: number
    /** the polyline through every position in seq order */
    path: string
    start: { x: number; y: number } | null
    end: { x: number; y: number } | null
    stops: { x: number; y: number; n: number; title: string }[]
    /** corner labels: the extent in degrees */
    north: number
    south: number
    west: number
    east: number
    /** length of a scale bar and what it stands for */
    scale: { w: number; km: number }
}

const KM_PER_DEG_LAT = 111.32

function niceKm(km: number): number {
    const p = Math.pow(10, Math.floor(Math.log10(km)))
    for (const m of [1, 2, 5, 10]) if (m * p >= km) return m * p
    return 10 * p
}

/** Project the positions into the box; null without any position. */
export function computeRoute(points: RoutePoint[], stops: Stop[], stopTitle: (s: Stop, n: number) => string): RouteGeometry | null {
    if (!points.length) return null
    const lats = points.map(p => p.lat)
    const lons = points.map(p => p.lon)
    const south = Math.min(...lats)
    const north = Math.max(...lats)
    const west = Math.min(...lons)
    const east = Math.max(...lons)
    const k = Math.cos((((north + south) / 2) * Math.PI) / 180)
    const { width, height, pad } = ROUTE_BOX
    // at least ~1 km of extent, so a logger that never moved is a dot in the middle
    const spanX = Math.max((east - west) * k, 0.01)
    const spanY = Math.max(north - south, 0.01)
    const scale = Math.min((width - 2 * pad) / spanX, (height - 2 * pad) / spanY)
    const cx = (west + east) / 2
    const cy = (north + south) / 2
    const xy = (lat: number, lon: number) => ({ x: width / 2 + (lon - cx) * k * scale, y: height / 2 - (lat - cy) * scale })
    const path = points.map((p, i) => `${i ? "L" : "M"}${n1(xy(p.lat, p.lon).x)} ${n1(xy(p.lat, p.lon).y)}`).join("")
    const located = stops.filter(s => typeof s.lat === "number" && typeof s.lon === "number")
    const barKm = niceKm((width / 5 / scale) * KM_PER_DEG_LAT)
    return {
        width,
        height,
        path,
        start: xy(points[0].lat, points[0].lon),
        end: xy(points[points.length - 1].lat, points[points.length - 1].lon),
        stops: located.map((s, i) => ({ ...xy(s.lat!, s.lon!), n: i + 1, title: stopTitle(s, i + 1) })),
        north,
        south,
        west,
        east,
        scale: { w: (barKm / KM_PER_DEG_LAT) * scale, km: barKm },
    }
}

const deg = (v: number, pos: string, neg: string) => `${Math.abs(v).toFixed(4)}° ${v >= 0 ? pos : neg}`

export function routeSvg(g: RouteGeometry): string {
    const parts: string[] = []
    parts.push(
        `<svg class="route" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${g.width} ${g.height}" role="img" aria-label="Route map">`,
    )
    parts.push(`<rect class="route-bg" x="0" y="0" width="${g.width}" height="${g.height}"/>`)
    parts.push(`<path class="route-line" d="${g.path}"/>`)
    if (g.start) parts.push(`<circle class="route-start" cx="${n1(g.start.x)}" cy="${n1(g.start.y)}" r="9"><title>start</title></circle>`)
    if (g.end)
        parts.push(`<rect class="route-end" x="${n1(g.end.x - 8)}" y="${n1(g.end.y - 8)}" width="16" height="16"><title>end</title></rect>`)
    for (const s of g.stops)
        parts.push(
            `<g class="route-stop"><title>${esc(s.title)}</title><circle cx="${n1(s.x)}" cy="${n1(s.y)}" r="13"/>` +
                `<text x="${n1(s.x)}" y="${n1(s.y + 5)}">${s.n}</text></g>`,
        )
    parts.push(`<text class="route-lab" x="8" y="18">${esc(`${deg(g.north, "N", "S")}, ${deg(g.west, "E", "W")}`)}</text>`)
    parts.push(
        `<text class="route-lab end" x="${g.width - 8}" y="${g.height - 10}">${esc(`${deg(g.south, "N", "S")}, ${deg(g.east, "E", "W")}`)}</text>`,
    )
    const y = g.height - 16
    parts.push(
        `<g class="route-scale"><line x1="12" x2="${n1(12 + g.scale.w)}" y1="${y}" y2="${y}"/>` +
            `<text x="12" y="${y - 6}">${g.scale.km} km</text></g>`,
    )
    parts.push(`</svg>`)
    return parts.join("\n")
}
