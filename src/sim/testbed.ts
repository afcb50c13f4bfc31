import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { randomBytes } from "node:crypto"
import path from "node:path"
import { JacdacHub } from "./hub.js"
import { VmProcess, DEVS_DIR } from "./vm.js"
import { NetGate } from "./netgate.js"
import { HttpFaultInjector } from "./httpfaults.js"
import { makeTestPki } from "../ingest/tls.js"
import type { Scenario } from "./scenario.js"
import { startNotehub, type Notehub } from "../uplink/notehub.js"
import { startIngestServer, type IngestServer } from "../ingest/server.js"
import { registerDevice } from "../ingest/db.js"
import type { WitnessOptions } from "../ingest/cosign.js"
import { startNode, type IngestNode } from "../tools/ingest-node.js"
import { newDeviceKeys, deviceSecretJson, configHash, type DeviceKeys } from "../provision/provision.js"

export interface TestbedOptions {
    /** a provisioning tool (over USB) makes the keys and registers the logger through the admin API */
    byTool?: boolean
}

/**
 * Everything one simulated device talks to, started together and stopped together: the ingest
 * server (fresh SQLite file), the TLS-terminating HTTP fault front and the cuttable network in front
 * of it, the Notehub stand-in when the scenario has a cellular modem, the Jacdac hub, and the VM
 * process (not yet started). The device's keys are made and registered here; they go to
 * `device-secret.json` (0600) and nowhere else on disk.
 */
export class Testbed {
    readonly ingestLog: string[] = []
    readonly notehubLog: string[] = []
    ingest!: IngestServer
    faults!: HttpFaultInjector
    gate!: NetGate
    gatePort!: number
    notehub?: Notehub
    /** `coldtrace witness` as its own process, when the scenario has one */
    witness?: IngestNode
    private witnessOpts?: WitnessOptions
    hub!: JacdacHub
    vm!: VmProcess
    keys!: DeviceKeys
    readonly secretFile: string
    readonly dbPath: string
    /** the ingest server's admin token (a tool provisions the logger: `TestbedOptions.byTool`) */
    adminToken?: string
    /** world UTC ms now, for the cloud relay (set by the world driver) */
    worldUtc: () => number = () => Date.parse(this.s.start)

    private constructor(
        readonly s: Scenario,
        readonly out: string,
        readonly opts: TestbedOptions,
    ) {
        this.secretFile = path.join(out, "device-secret.json")
        this.dbPath = path.join(out, "ingest.sqlite")
    }

    static async start(s: Scenario, out: string, firmware: string, opts: TestbedOptions = {}): Promise<Testbed> {
        const tb = new Testbed(s, out, opts)
        try {
            await tb.startServices(firmware)
        } catch (e) {
            await tb.close()
            throw e
        }
        return tb
    }

    get devidHex(): string {
        return this.keys.devid.toString("hex")
    }

    /** the ingest server itself (plain HTTP on 127.0.0.1), where a provisioning tool registers the logger */
    get adminUrl(): string {
        return this.ingest.url
    }

    /**
     * The keys a provisioning tool made and escrowed (`device-secret.json` format): the harness verifies
     * with them; kept in `secretFile` (0600).
     */
    adoptKeys(file: string) {
        const j = JSON.parse(readFileSync(file, "utf8"))
        const hex = (k: string) => Buffer.from(String(j[k]), "hex")
        this.keys = { devid: hex("devid"), k0: hex("k0"), ackkey: hex("ackkey"), lockey: hex("lockey") }
        if (path.resolve(file) !== path.resolve(this.secretFile)) copyFileSync(file, this.secretFile)
    }

    /** the ingest URL the device is provisioned with: through the network gate and the fault front */
    get endpoint(): string {
        return `https://127.0.0.1:${this.gatePort}/v1/batch`
    }

    private async startServices(firmware: string) {
        const s = this.s
        if (s.witness) await this.startWitness()
        this.ingest = await this.startIngest()
        // the device's HTTPS ends at a TLS-terminating front (as at a load balancer) that can also inject
        // HTTP faults; the NetGate in front of it is the network that outages cut. A fresh test CA per
        // run; the VM trusts it through Node's TLS (NODE_EXTRA_CA_CERTS), the CA's key never hits disk
        const pki = makeTestPki(path.join(this.out, "pki"))
        // an untrusted server: its certificate comes from a CA the logger was never given (a man in
        // the middle, or a server without a certificate the board's root bundle accepts)
        const trusted = s.untrustedServer ? makeTestPki(path.join(this.out, "pki-device")) : pki
        const hf = s.httpFaults
        this.faults = new HttpFaultInjector({
            target: { port: this.ingest.port },
            tls: { cert: pki.certPem, key: pki.keyPem },
            schedule: hf ? { seed: hf.seed, rates: hf.rates } : undefined,
            // a hung request is held until the device gives up: its deadline runs in world time
            hangMs: 0,
        })
        this.gate = new NetGate(await this.faults.listen())
        this.gatePort = await this.gate.listen()
        // cellular: the logger's Notecard syncs with a stand-in for the Notehub cloud, which relays notes
        // to the ingest server (delayed, reordered, duplicated like a real relay, in world time) and
        // brings acks back; the world driver pumps the relay before every jump
        if (s.cellular)
            this.notehub = await startNotehub({
                ingestUrl: `${this.ingest.url}/v1/batch`,
                relay: {
                    ...((s.cellular.relay as object) ?? {
                        seed: 1,
                        delayMs: 0,
                        jitterMs: 100,
                        reorder: 0.2,
                        holdMs: 100,
                        duplicate: 0.3,
                        duplicateLagMs: 50,
                    }),
                    now: () => this.worldUtc(),
                },
                pumpMs: 0,
                log: l => this.notehubLog.push(l),
            })
        this.keys = newDeviceKeys()
        // a tool provisions (and registers) the logger itself: adoptKeys() takes what it escrowed
        if (!this.opts.byTool) this.registerOwnKeys()
        this.hub = new JacdacHub(path.join(DEVS_DIR, "services/simworld.md"))
        await this.hub.listen()
        this.vm = new VmProcess(path.join(this.out, "device"), firmware, { NODE_EXTRA_CA_CERTS: trusted.caFile })
    }

    private registerOwnKeys() {
        const s = this.s
        // the server gets what it needs to check batches and sign acks; k0 goes to the escrow file
        // below as well (the server keeps only the current epoch's key), the location key only there
        // with the provisioned configuration's hash, so the verifier checks every config record against it
        const provisioned = { config: s.device, endpoint: this.endpoint }
        registerDevice(this.ingest.db, {
            devid: this.keys.devid,
            k0: this.keys.k0,
            ackkey: this.keys.ackkey,
            label: s.name,
            configHash: configHash(s.device, this.endpoint),
        })
        // keys stay out of every log; they are kept for `coldtrace verify` with owner-only access
        writeFileSync(this.secretFile, JSON.stringify(deviceSecretJson(this.keys, provisioned)), { mode: 0o600 })
    }

    private startIngest(port = 0): Promise<IngestServer> {
        if (this.opts.byTool && !this.adminToken) this.adminToken = randomBytes(32).toString("hex")
        return startIngestServer({
            dbPath: this.dbPath,
            port,
            witness: this.witnessOpts,
            adminToken: this.adminToken,
            log: l => this.ingestLog.push(l),
        })
    }

    /** An independent witness (its own process, key, SQLite file and token) that cosigns the server's checkpoints. */
    private async startWitness() {
        const dir = path.join(this.out, "witness")
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        const token = randomBytes(32).toString("hex")
        const tokenFile = path.join(dir, "token")
        writeFileSync(tokenFile, token + "\n", { mode: 0o600 })
        const args = ["--db", path.join(dir, "witness.sqlite"), "--key", path.join(dir, "witness-key.pem"), "--token-file", tokenFile]
        this.witness = await startNode("witness", [...args, "--listen", "127.0.0.1:0"])
        this.witnessOpts = { url: this.witness.url, token, retryMs: 200, maxRetryMs: 2000 }
    }

    /** Every checkpoint so far cosigned (or refused), so what the witness holds does not depend on timing. */
    async settleWitness() {
        await this.ingest?.cosigner?.settle()
    }

    /** The device's witness log (GET /v1/log/DEVID) into `witness-log.json`; its path, or undefined without a witness. */
    async saveWitnessLog(): Promise<string | undefined> {
        if (!this.witness) return undefined
        await this.settleWitness()
        const r = await fetch(`${this.witness.url}/v1/log/${this.devidHex}`)
        if (!r.ok) throw new Error(`witness log: HTTP ${r.status}`)
        const file = path.join(this.out, "witness-log.json")
        writeFileSync(file, await r.text())
        return file
    }

    private backupFile(n: number) {
        return path.join(this.out, `ingest-backup-${n}.sqlite`)
    }

    /** An operator's backup of the ingest database (an online copy, as `sqlite3 .backup` takes it). */
    async backupDb(n: number) {
        await this.settleWitness()
        await this.ingest.db.backup(this.backupFile(n))
        this.ingestLog.push(`(simulator) database backed up to ${path.basename(this.backupFile(n))}`)
    }

    /**
     * Ransomware recovery: the server is stopped, its database replaced by backup `n`, and started
     * again on the same port. The device is not told: it finds out from the server's 409 acks.
     */
    async restoreDb(n: number) {
        const port = this.ingest.port
        await this.settleWitness()
        await this.ingest.close()
        copyFileSync(this.backupFile(n), this.dbPath)
        for (const ext of ["-wal", "-shm"]) rmSync(this.dbPath + ext, { force: true })
        this.ingest = await this.startIngest(port)
        this.ingestLog.push(`(simulator) database restored from ${path.basename(this.backupFile(n))}`)
    }

    /** Stop everything (the VM with SIGKILL); safe to call on a half-started testbed. */
    async close() {
        await this.vm?.powerCut()
        await this.hub?.close()
        await this.gate?.close()
        await this.faults?.close()
        await this.notehub?.close()
        await this.ingest?.close()
        await this.witness?.stop("SIGTERM")
    }
}
