// @ts-check
"use strict"
/**
 * Virtual time for the DeviceScript VM (docs/simulator.md, "Time"). Loaded with `node --require`
 * into the `devs run firmware.devs --tcp` process that src/sim/vm.ts starts, before the CLI runs.
 *
 * The VM's only clock is `Date.now()` (the runtime's em_time_now) and its only scheduler is one
 * `setTimeout(process2, us / 1000)` at a time. This file replaces both, so the VM's clock IS world
 * time (UTC ms) and it moves only as follows:
 *  - jumps granted by the world (the harness, src/sim/driver.ts) over the hub link: to the
 *    firmware's earliest wake-up when every firmware fiber waits on the clock, or to a world event;
 *  - on its own, while a firmware fiber is busy: straight to the VM's next timer (the runtime's own
 *    waits: packet throttle, settings store, conversion polls), never past the firmware's earliest
 *    wake-up or the world's next event (both known here), so such work costs the world time the
 *    runtime's timers say and no wall time;
 *  - not at all while the device waits for real network I/O (a socket to the local servers is open
 *    and the network model does not hold it): the exchange takes no world time; a held connection
 *    (an injected hang) lets the clock run on to the device's own deadline.
 *  - in `free` mode (a factory-new logger being provisioned, the read-out at the end) with the wall
 *    clock, so the Jacdac tools on the host see a normal device;
 *  - in `alone` mode (the firmware's unit tests, `devs run --test`: no world at all) straight to the
 *    VM's next timer, always, except while a socket is open (then with the wall clock).
 *
 * The firmware's clock (devs/sim/world.ts) states whether its fibers are busy and its earliest
 * wake-up in console lines `ct:clk seq=N busy=B wake=MILLIS`, which this file reads (and does not
 * print): console output leaves the VM synchronously inside the loop call that wrote it, so the
 * state here is always the firmware's state after that call, with no packet and no delay. Every
 * other console line is printed with the world instant as a prefix (`@UTCMS `).
 *
 * Hub link control messages (both directions, between Jacdac frames, which start with a length byte
 * >= 12): 0x01, u16 LE length, UTF-8 JSON.
 *   VM -> hub: {t:"need", now, to, idle, why}   the VM cannot go on alone: it needs world time `to`
 *              {t:"clk", now, idle, wake}       the firmware's state (in free mode, for the harness)
 *              {t:"ev", at, line}               a console line that costs energy (sample, upload, fix, standby, sleep)
 *   hub -> VM: {t:"jump", to, horizon}          move the clock to `to`; go on alone up to `horizon`
 *              {t:"mode", mode}                 "lockstep" or "free"
 *              {t:"held", on}                   the open connection is held by the network model
 *              {t:"kill", at}                   SIGKILL this process when the clock reaches `at`
 *              {t:"bus-reply", seq, status, data}  a host chip model's answer (see "the bus bridge")
 *   VM -> hub: {t:"bus", seq, addr, rx, tx, at}  an I2C transaction to a chip modelled on the host
 */
const net = require("node:net")
const tls = require("node:tls")
const fs = require("node:fs")

// ---- the flash file ---------------------------------------------------------------------------------
// The CLI saves the whole flash image with fs.writeFileSync at every flash operation: a SIGKILL (a power
// cut) inside that call would leave a truncated file, which the runtime then takes for blank flash: a
// loss no real flash has (a cut there loses at most the operation under way, which the store's twin
// headers are for). So the image is replaced atomically: written beside it, then renamed over it.
const FLASH_FILE = /(^|[\\/])\.devicescript[\\/]flash[\\/][^\\/]+\.bin$/
const realWriteFileSync = fs.writeFileSync
fs.writeFileSync = /** @type {any} */ (
    function (file, data, ...rest) {
        if (typeof file !== "string" || !FLASH_FILE.test(file)) return realWriteFileSync(file, data, ...rest)
        realWriteFileSync(file + ".new", data, ...rest)
        fs.renameSync(file + ".new", file)
    }
)

const HUB_PORT = Number(process.env.COLDTRACE_HUB_PORT || 8082)
const START = Number(process.env.COLDTRACE_VM_UTC)
if (!Number.isFinite(START)) throw new Error("vm-clock: COLDTRACE_VM_UTC (world UTC ms at power-on) is required")
/** jacdac-c's microsecond clock is a u32: a single step of more than 71 minutes would wrap it */
const MAX_STEP_MS = 3_600_000
/** on its own the VM may run at most this far past the last world instant it was given */
const MAX_ALONE_MS = 600_000
/** a connection with no event for this long (wall) and not held is reported (the harness's bug) */
const IO_STUCK_MS = 30_000
const CONTROL = 0x01
/** COLDTRACE_VM_CLOCK_DEBUG=1: every clock decision on stderr (with the world instant) */
const DEBUG = !!process.env.COLDTRACE_VM_CLOCK_DEBUG

const realDateNow = Date.now
const realSetTimeout = global.setTimeout
const realClearTimeout = global.clearTimeout
const realClearInterval = global.clearInterval

// ---- the clock -----------------------------------------------------------------------------------
/** @type {"free" | "lockstep" | "alone"} */
let mode = process.env.COLDTRACE_VM_MODE === "free" ? "free" : process.env.COLDTRACE_VM_MODE === "alone" ? "alone" : "lockstep"
let vnow = START
let freeV0 = START
let freeR0 = realDateNow()
let loopStarted = false
/** Date.now() calls since the last loop turn: a busy-wait on the clock must not spin forever */
let callsThisTurn = 0

function now() {
    // free mode follows the wall clock from the VM loop's first turn on: the runtime's millis() is
    // counted from its first clock read, which must be this process's start instant exactly
    if (mode === "free") return loopStarted ? freeV0 + (realDateNow() - freeR0) : freeV0
    if (++callsThisTurn > 100_000) vnow += 0.001 // a runtime busy-wait (target_wait_us) sees time pass
    return vnow
}
Date.now = now

function setMode(m) {
    if (m === mode) return
    if (m === "free") {
        freeV0 = vnow
        freeR0 = realDateNow()
    } else vnow = now()
    mode = m
}

// ---- the VM loop: one pending continuation -------------------------------------------------------
const LOOP_HANDLE = { vmLoop: true }
/** @type {{ fn: () => void, due: number } | null} */
let loop = null
/** @type {NodeJS.Timeout | null} */
let realTimer = null
let turnQueued = false

global.setTimeout = /** @type {any} */ (
    function (fn, ms, ...rest) {
        if (typeof fn === "function" && fn.name === "process2") {
            if (!loopStarted) {
                loopStarted = true
                freeR0 = realDateNow()
            }
            loop = { fn, due: now() + Math.max(0, Number(ms) || 0) }
            decideSoon()
            return LOOP_HANDLE
        }
        return realSetTimeout.call(this, fn, ms, ...rest)
    }
)
function clearLoop(h) {
    if (h !== LOOP_HANDLE) return false
    loop = null
    if (realTimer) realClearTimeout(realTimer)
    realTimer = null
    return true
}
global.clearTimeout = /** @type {any} */ (h => clearLoop(h) || realClearTimeout(h))
global.clearInterval = /** @type {any} */ (h => clearLoop(h) || realClearInterval(h))

/** run the VM's pending loop turn now, at the current instant */
function runLoop() {
    const l = loop
    if (!l) return
    loop = null
    if (realTimer) realClearTimeout(realTimer)
    realTimer = null
    callsThisTurn = 0
    l.fn()
    // the CLI's loop turn catches an exit of the WASM runtime (`ds.reboot()`, the runtime's own
    // reset, a crash), prints it and stops without scheduling another turn; emscripten keeps Node
    // running. A board resets then: end this process, so the harness starts the VM again.
    if (!loop) process.exit(typeof process.exitCode === "number" ? process.exitCode : 1)
}

/** run every turn that is due at the current instant (a bounded number: a spinning VM goes on later) */
function settle() {
    for (let i = 0; i < 10_000 && loop && loop.due <= vnow; i++) runLoop()
}

function decideSoon() {
    if (turnQueued) return
    turnQueued = true
    setImmediate(() => {
        turnQueued = false
        decide()
    })
}

// ---- what the firmware says (console lines) ------------------------------------------------------
const fw = { seq: -1, idle: false, wake: /** @type {number | null} */ (null) }
const ANSI = /\x1b\[[0-9;]*m/g
/** the firmware's lines the world's energy ledger books (src/sim/energy.ts) */
const ENERGY_LINE = /\bct:(sample|upload|upload-error|fix|standby|sleep)\b/
for (const k of /** @type {const} */ (["log", "info", "debug", "warn", "error"])) {
    const orig = console[k].bind(console)
    console[k] = (...args) => {
        if (typeof args[0] === "string" && args[0].includes("ct:clk ")) {
            firmwareSaid(args[0].replace(ANSI, ""))
            return
        }
        if (typeof args[0] === "string" && args[0].includes("ct:bus ")) {
            busRequest(args[0].replace(ANSI, ""))
            return
        }
        // what costs energy goes to the world too, on the hub link, ordered before the next `need`:
        // the cell's voltage at the next jump then counts it on any machine (docs/simulator.md)
        // (the colours go first: a colour code ends in a letter, so `ct:` would not start a word)
        const text = typeof args[0] === "string" ? args[0].replace(ANSI, "") : ""
        if (text.includes("ct:sleep ")) fellAsleep(text)
        if (ENERGY_LINE.test(text)) control({ t: "ev", at: Math.floor(now()), line: text.trim() })
        // every line carries the world instant it was printed at, for the harness (src/sim/vm.ts)
        if (typeof args[0] === "string") args[0] = `@${Math.floor(now())} ${args[0]}`
        orig(...args)
    }
}

function debug(what) {
    if (DEBUG) process.stderr.write(`@${Math.floor(now())} vm-clock: ${what}\n`)
}

/**
 * The firmware goes into a deep sleep (`ct:sleep until=MILLIS`) and has asked the runtime to restart
 * its program (devs/src/sim.ts): nothing of it runs until the wake, so the clock waits for the world
 * to bring it there, where the runtime's restart timer starts the program again, with its fibers
 * counted afresh.
 */
function fellAsleep(line) {
    const m = /until=(\d+)/.exec(line)
    if (!m) return
    fw.seq = -1
    fw.idle = true
    fw.wake = START + Number(m[1])
    needSent = null
}

function firmwareSaid(line) {
    debug(line.slice(line.indexOf("ct:clk ")))
    const f = Object.fromEntries(
        line
            .slice(line.indexOf("ct:clk ") + 7)
            .trim()
            .split(/\s+/)
            .map(kv => kv.split("=")),
    )
    const seq = Number(f.seq)
    if (!(seq > fw.seq)) return
    fw.seq = seq
    fw.idle = Number(f.busy) <= 0
    const wake = Number(f.wake)
    fw.wake = wake >= 0 ? START + wake : null
    if (mode === "free") control({ t: "clk", now: now(), idle: fw.idle, wake: fw.wake })
    needSent = null
}

// ---- network I/O of the firmware (one socket at a time in the VM) --------------------------------
const io = { open: 0, held: false, lastEvent: 0, kick: false }

function trackDeviceSocket(sock) {
    io.open++
    io.held = false
    io.lastEvent = realDateNow()
    let closed = false
    const onEvent = () => {
        io.lastEvent = realDateNow()
        io.kick = true // the CLI's own listener has handed the event to the VM: let the VM run it now
        decideSoon()
    }
    for (const ev of ["connect", "secureConnect", "data", "end", "error"]) sock.on(ev, onEvent)
    sock.on("close", () => {
        if (!closed) {
            closed = true
            io.open--
            if (io.open === 0) io.held = false
        }
        onEvent()
    })
}

const realCreateConnection = net.createConnection
/** @type {import("node:net").Socket | null} */
let hubSock = null
/** @type {((data: Buffer) => void) | null} */
let cliData = null
/** frames that arrived before the VM loop started (the runtime drops them) */
const early = /** @type {Buffer[]} */ ([])

net.createConnection = net.connect = /** @type {any} */ (
    function (...args) {
        const sock = realCreateConnection.apply(this, /** @type {any} */ (args))
        const port = typeof args[0] === "object" ? Number(args[0].port) : Number(args[0])
        if (port === HUB_PORT && !hubSock) captureHub(sock)
        else trackDeviceSocket(sock)
        return sock
    }
)
const realTlsConnect = tls.connect
tls.connect = /** @type {any} */ (
    function (...args) {
        const sock = realTlsConnect.apply(this, /** @type {any} */ (args))
        trackDeviceSocket(sock)
        return sock
    }
)

// ---- the hub link: frames in, control messages both ways -----------------------------------------
/**
 * The VM's own devices' latest announces (its own device and the one hosting its servers), by
 * device id: re-delivered at every jump (see jump())
 * @type {Map<string, Buffer>}
 */
const ownAnnounces = new Map()
/** frames for the instant of the next jump */
const forNextJump = /** @type {Buffer[]} */ ([])
let rx = Buffer.alloc(0)

function captureHub(sock) {
    hubSock = sock
    const realOn = sock.on.bind(sock)
    sock.on = sock.addListener = /** @type {any} */ (
        (ev, fn) => {
            if (ev === "data" && !cliData) {
                cliData = fn // the CLI's frame parser: fed by us, one frame at a time
                return sock
            }
            return realOn(ev, fn)
        }
    )
    realOn("data", d => receive(d))
    // the VM's own announces, re-delivered at every jump: see jump()
    const realWrite = sock.write.bind(sock)
    sock.write = /** @type {any} */ (
        (buf, ...rest) => {
            if (Buffer.isBuffer(buf) || buf instanceof Uint8Array) {
                const b = Buffer.from(buf)
                if (b[0] !== CONTROL && b[0] < 0xff && b.length === b[0] + 1 && isAnnounce(b.subarray(1)))
                    ownAnnounces.set(b.subarray(5, 13).toString("hex"), announceOnly(b.subarray(1)))
            }
            return realWrite(buf, ...rest)
        }
    )
}

function deliverFrame(frame) {
    if (DEBUG)
        debug(
            `deliver ${frame.subarray(4, 12).toString("hex")} svc=${frame[13]} cmd=${frame.readUInt16LE(14).toString(16)} len=${frame.length} loop=${!!loop} started=${started}`,
        )
    if (!cliData) return
    const b = Buffer.alloc(frame.length + 1)
    b[0] = frame.length
    frame.copy(b, 1)
    if (!loop && !started) early.push(b)
    else cliData(b)
}

function receive(data) {
    rx = rx.length ? Buffer.concat([rx, data]) : data
    for (;;) {
        if (rx.length < 1) break
        if (rx[0] === CONTROL) {
            if (rx.length < 3) break
            const len = rx.readUInt16LE(1)
            if (rx.length < 3 + len) break
            const msg = JSON.parse(rx.subarray(3, 3 + len).toString("utf8"))
            rx = rx.subarray(3 + len)
            onControl(msg)
            continue
        }
        const len = rx[0]
        if (rx.length < 1 + len) break
        const frame = Buffer.from(rx.subarray(1, 1 + len))
        rx = rx.subarray(1 + len)
        // in lockstep the world sends what the VM sees at the instant of its next jump (a snapshot of
        // that instant): it is delivered there, not at the instant it happens to arrive
        if (mode === "lockstep") forNextJump.push(frame)
        else deliverFrame(frame)
    }
    decideSoon()
}

/**
 * The frame cut to its first packet (the announce): what else the frame carried (an event with its
 * counter, a register report) must not be replayed at a later jump.
 */
function announceOnly(frame) {
    const size = 4 + ((frame[12] + 3) & ~3)
    const out = Buffer.alloc(12 + size)
    frame.copy(out, 0, 0, Math.min(frame.length, 12 + size))
    out[2] = size
    out.writeUInt16LE(crc16(out.subarray(2)), 0)
    return out
}

/** Jacdac's frame CRC: CRC-16/CCITT (polynomial 0x1021, initial 0xFFFF) over the frame after the CRC */
function crc16(data) {
    let crc = 0xffff
    for (const d of data) {
        let x = ((crc >> 8) ^ d) & 0xff
        x ^= x >> 4
        crc = ((crc << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xffff
    }
    return crc
}

/** a report frame whose first packet is service 0, command 0: a device announcing its services */
function isAnnounce(frame) {
    return frame.length >= 16 && (frame[3] & 0x01) === 0 && frame[13] === 0 && frame.readUInt16LE(14) === 0
}

function control(msg) {
    debug(`-> ${JSON.stringify(msg)}`)
    if (!hubSock || hubSock.destroyed) return
    const body = Buffer.from(JSON.stringify(msg), "utf8")
    const head = Buffer.alloc(3)
    head[0] = CONTROL
    head.writeUInt16LE(body.length, 1)
    hubSock.write(Buffer.concat([head, body]))
}

// ---- the bus bridge: chip models on the host (docs/simulator.md, "The bus bridge") ---------------
/**
 * The firmware's I2C transaction to a chip modelled on the host is a console line
 * `ct:bus seq= addr= rx= tx=` (devs/sim/host-i2c.ts; a long write in several, `more=1` on all but
 * the last), read here synchronously. In lockstep and free
 * mode it goes to the world as a `bus` control message stamped with the world instant, and the
 * clock stands still (lockstep) until the `bus-reply`; alone (the firmware's unit tests, no world),
 * the chips of src/sim/models/alone.ts answer in this process. The answer reaches the firmware as
 * the Sim World service's `bus_reply` command, handed to the runtime as a received frame.
 */
const SIM_WORLD_CLASS = 0x1c0d7a11
const CMD_BUS_REPLY = 0x82
const bridge = {
    /** transactions sent to the world and not answered yet */
    pending: new Set(),
    /** the bytes of long writes whose last line has not come yet, hex, by seq */
    partial: /** @type {Map<string, string>} */ (new Map()),
    /** answers for the firmware, delivered before its next loop turn */
    replies: /** @type {{ seq: number, status: number, data: string }[]} */ ([]),
    /** where the firmware hosts the Sim World service (from its announces) */
    world: /** @type {{ device: Buffer, index: number } | null} */ (null),
    /** the runtime's frame input (the emscripten module's handlePacket) */
    receive: /** @type {((frame: Uint8Array) => void) | null} */ (null),
    /** alone: the chips of this process (loaded on first use) */
    local: /** @type {any} */ (null),
}

/**
 * The runtime's frame input and output are functions assigned onto its emscripten module
 * (`handlePacket`, `sendPacket`); catching the assignments gives the bridge both, in test mode
 * (which has no Jacdac link) as with `--tcp`.
 */
function hookModuleFunction(name, onSet) {
    Object.defineProperty(Object.prototype, name, {
        configurable: true,
        set(fn) {
            let inner = fn
            const self = this
            Object.defineProperty(this, name, {
                configurable: true,
                enumerable: true,
                get: () => onSet(self, inner),
                set: f => (inner = f),
            })
        },
    })
}
hookModuleFunction("handlePacket", (self, fn) => {
    if (typeof fn === "function" && !bridge.receive && String(fn).includes("jd_em_frame_received"))
        bridge.receive = frame => fn.call(self, frame)
    return fn
})
hookModuleFunction("sendPacket", (self, fn) => frame => {
    noteWorldService(Buffer.from(frame))
    return fn.call(self, frame)
})

/** an announce of the firmware's listing the Sim World service: where replies go */
function noteWorldService(frame) {
    if (!isAnnounce(frame)) return
    const n = (frame[12] - 4) >> 2 // service classes after the flags word
    for (let i = 1; i <= n; i++)
        if (frame.readUInt32LE(16 + 4 * i) === SIM_WORLD_CLASS) bridge.world = { device: Buffer.from(frame.subarray(4, 12)), index: i }
}

function busRequest(line) {
    const f = Object.fromEntries(
        line
            .slice(line.indexOf("ct:bus ") + 7)
            .trim()
            .split(/\s+/)
            .map(kv => kv.split("=")),
    )
    // a long write comes in several lines, all but the last marked `more`
    const tx = (bridge.partial.get(f.seq) ?? "") + (f.tx || "")
    if (f.more) return void bridge.partial.set(f.seq, tx)
    bridge.partial.delete(f.seq)
    const m = { seq: Number(f.seq), addr: Number(f.addr), rx: Number(f.rx), tx, at: Math.floor(now()) }
    debug(`bus ${JSON.stringify(m)}`)
    bridge.pending.add(m.seq)
    if (mode === "alone")
        localChips()
            .answer(m)
            .then(busReplied, e => {
                process.stderr.write(`vm-clock: a chip model failed: ${e.stack}\n`)
                process.exit(3)
            })
    else control({ t: "bus", ...m })
}

function localChips() {
    if (!bridge.local) {
        const tsx = require("tsx/cjs/api")
        bridge.local = tsx.require("../models/alone.ts", __filename).aloneChips()
    }
    return bridge.local
}

/** the world's (or the local chips') answer, for the firmware before its next loop turn */
function busReplied(r) {
    bridge.pending.delete(r.seq)
    bridge.replies.push(r)
    decideSoon()
}

/** the `bus_reply` command frame to the firmware's Sim World service */
function busReplyFrame(r, w) {
    const data = Buffer.from(r.data, "hex")
    const payload = Buffer.alloc(3 + data.length)
    payload.writeUInt16LE(r.seq, 0)
    payload[2] = r.status
    data.copy(payload, 3)
    const size = (4 + payload.length + 3) & ~3
    const frame = Buffer.alloc(12 + size)
    frame[2] = size
    frame[3] = 0x01 // a command, to the device below
    w.device.copy(frame, 4)
    frame[12] = payload.length
    frame[13] = w.index
    frame.writeUInt16LE(CMD_BUS_REPLY, 14)
    payload.copy(frame, 16)
    frame.writeUInt16LE(crc16(frame.subarray(2)), 0)
    return frame
}

/**
 * Hand the answers in to the runtime (each runs a loop turn at the current instant); they wait
 * for the firmware's first announce of its Sim World service, which comes within its announce period.
 */
function deliverBusReplies() {
    const w = bridge.world
    if (!w || !bridge.receive) return
    for (const r of bridge.replies.splice(0)) {
        debug(`bus-reply ${r.seq} status=${r.status}`)
        bridge.receive(busReplyFrame(r, w))
    }
}

// ---- decisions ------------------------------------------------------------------------------------
/** the first jump has come: before it the VM does nothing on its own (its world is not there yet) */
let started = false
/** the world's next event (UTC ms): the VM may not run past it on its own */
let horizon = -Infinity
/** world instant of the last jump */
let lastJump = START
let killAt = Infinity
/** the `need` last sent, so the same one is not sent twice */
let needSent = /** @type {string | null} */ (null)

function need(to, why) {
    const key = `${to}:${fw.seq}:${why}`
    if (needSent === key) return
    needSent = key
    control({ t: "need", now: vnow, to, idle: fw.idle, why, io: io.open })
}

/** move the clock forward to `t` on the VM's own (only while its firmware is busy) */
function advanceTo(t) {
    if (t > killAt) {
        vnow = killAt
        process.kill(process.pid, "SIGKILL")
    }
    if (t > vnow) vnow = t
}

function decide() {
    if (!loop) return
    deliverBusReplies()
    if (!loop) return
    if (mode === "free") {
        if (!realTimer) realTimer = realSetTimeout(runLoop, Math.max(0, loop.due - now()))
        return
    }
    if (mode === "alone") return decideAlone()
    for (const b of early.splice(0)) cliData && cliData(b)
    if (loop.due <= vnow || io.kick) {
        io.kick = false
        return runLoopSoon()
    }
    // a chip modelled on the host answers a transaction: no world time passes meanwhile
    if (bridge.pending.size > 0) return
    if (!started) return need(vnow, "start")
    if (io.open > 0 && !io.held) return watchIo()
    const wake = fw.wake !== null && fw.wake > vnow ? fw.wake : Infinity
    const limit = Math.min(wake, horizon, lastJump + MAX_ALONE_MS)
    if (!fw.idle && loop.due < limit) {
        advanceTo(loop.due)
        return runLoopSoon()
    }
    if (fw.idle) return need(fw.wake ?? Infinity, "idle")
    need(limit, limit === wake ? "wake" : limit === horizon ? "horizon" : "busy")
}

/** no world: the clock goes straight to the VM's next timer (with the wall clock while a socket is open) */
function decideAlone() {
    if (bridge.pending.size > 0) return // the chip answers in this process, with no time passing
    if (io.open > 0) {
        if (realTimer) return
        const wait = Math.max(0, Math.min(loop.due - vnow, 10))
        const from = realDateNow()
        realTimer = realSetTimeout(() => {
            realTimer = null
            vnow += realDateNow() - from
            runLoop()
            decide()
        }, wait)
        return
    }
    io.kick = false
    advanceTo(loop.due)
    runLoopSoon()
}

function runLoopSoon() {
    setImmediate(() => {
        runLoop()
        decide()
    })
}

/** real network I/O in flight: no world time passes; only a connection that never moves is reported */
function watchIo() {
    if (realTimer) return
    realTimer = realSetTimeout(() => {
        realTimer = null
        if (io.open > 0 && !io.held && realDateNow() - io.lastEvent > IO_STUCK_MS) {
            process.stderr.write(`vm-clock: a connection has not moved for ${IO_STUCK_MS} ms wall and is not held: treated as held\n`)
            io.held = true
        }
        runLoop()
        decide()
    }, 1000)
}

function jump(to, newHorizon) {
    // what the frames before this message started runs at the old instant, and so do the frames the
    // VM sent itself in its last turn (they wait in its receive queue, and the first turn after the
    // jump would handle them before the announces below, after the runtime has dropped its devices)
    runLoop()
    runLoop()
    settle()
    to = Math.max(to, vnow)
    while (to - vnow > MAX_STEP_MS) {
        advanceTo(vnow + MAX_STEP_MS)
        redeliverOwnAnnounces()
        settle()
    }
    // 1 ms before the instant: the VM's own devices announce themselves to it again, so the
    // runtime does not drop them (it forgets a device unheard for 2 s) and the firmware's roles
    // bound to its own services (the settings store) stay bound across the jump; then the world's
    // snapshot of the instant, so the chip models have it before any fiber wakes there
    if (to - 1 > vnow) {
        advanceTo(to - 1)
        redeliverOwnAnnounces()
    }
    for (const f of forNextJump.splice(0)) deliverFrame(f)
    settle()
    advanceTo(to)
    lastJump = to
    horizon = newHorizon
    started = true
    if (fw.wake !== null && to >= fw.wake) fw.idle = false // the fiber waiting for this instant runs
    needSent = null
    if (loop) runLoopSoon() // the turn that was waiting runs now, at the new instant
}

/**
 * The runtime checks for silent devices right after the first frame of a loop turn: only the device
 * announced first survives a long jump. The VM's own device (the longest announce: it hosts the
 * most services) goes first; the device of the firmware's servers may be forgotten and come back
 * (no role of the firmware's depends on it).
 */
function redeliverOwnAnnounces() {
    for (const f of [...ownAnnounces.values()].sort((a, b) => b.length - a.length)) deliverFrame(f)
}

function onControl(msg) {
    debug(`<- ${JSON.stringify(msg)}`)
    switch (msg.t) {
        case "jump":
            return jump(Number(msg.to), msg.horizon === null ? Infinity : Number(msg.horizon))
        case "mode":
            setMode(msg.mode)
            needSent = null
            return decideSoon()
        case "held":
            io.held = !!msg.on && io.open > 0
            return decideSoon()
        case "bus-reply":
            return busReplied(msg)
        case "kill":
            killAt = Number(msg.at)
            if (killAt <= vnow) process.kill(process.pid, "SIGKILL")
            return
    }
}
