// Every `coldtrace` command's command line, written once: the parser (src/cli/args.ts) reads it,
// `coldtrace CMD --help` prints it, `coldtrace help` lists it, and test/cli-help.test.ts checks that
// README.md's command table says the same. Data only: `coldtrace help` loads no command.
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUTS } from "../ingest/defaults.js"
import type { CommandSpec } from "./args.js"

export const SIM_SPEC = {
    name: "sim",
    summary:
        "Run a simulated shipment end to end: the real firmware in the DeviceScript VM, the ingest server, the scenario's power cuts and outages.",
    options: {
        scenario: {
            type: "string",
            value: "FILE",
            help: "the scenario (docs/scenario.md); default src/sim/scenarios/puurs-to-nursing-home.json",
        },
        out: { type: "string", value: "DIR", help: "where summary.json, report.html and the run's files go; default out/sim" },
        verbose: { type: "boolean", help: "print the firmware's console lines too" },
    },
    notes: `Default paths are in the package folder. Exit 0 when the log verifies and no sample was lost, 1 otherwise,
2 usage error (a bad scenario file included).`,
} as const satisfies CommandSpec

export const VERIFY_SPEC = {
    name: "verify",
    summary: "Verify a device's log independently (docs/verify.md): chain, seals, sequence, boots, checkpoints, eviction summaries.",
    forms: [
        "--db --keys [--device] [--witness [--witness-key]] [--band] [--rules] [--json]",
        "--export --keys [--checkpoints-from | --checkpoint ...] [--witness [--witness-key]] [--band] [--rules] [--json]",
    ],
    options: {
        db: {
            type: "string",
            value: "DB",
            help: "the server's copy: an ingest database (a SQLite file or a postgres:// URL)",
        },
        export: { type: "string", value: "FILE", help: "a device's flash export (device-export.json)" },
        keys: {
            type: "string",
            value: "FILE",
            help: `the device's escrowed keys (device-secret.json: devid, k0, lockey), always required:
the server never holds k0 or lockey, and seals are checked from k0. With --db the key
the server holds is checked too: it must be the one k0 evolves to (else bad-key)`,
        },
        device: {
            type: "string",
            value: "DEVID",
            help: "with --db: the device; without it the database holds exactly one, or the keys file names it",
        },
        "checkpoints-from": {
            type: "string",
            value: "DB",
            help: "with --export: check it against the checkpoints this ingest database acknowledged",
        },
        checkpoint: {
            type: "string",
            value: "SEQ:HEAD:BOOT",
            multiple: true,
            help: "with --export: a checkpoint as read off the server (may be given more than once)",
        },
        witness: {
            type: "string",
            value: "FILE|URL",
            help: `the checkpoints an independent witness cosigned (its log as JSON, its SQLite file with
--witness-key, or its URL): a database truncated or restored from an older copy is
reported from the first seq the witness cosigned that it lacks`,
        },
        "witness-key": { type: "string", value: "HEX", help: "pins the witness's public key (64 hex digits)" },
        band: {
            type: "string",
            value: "LOW:HIGH",
            help: `the logger's configured band (°C): also check its alarm records against the band rule
(docs/alarms.md); a disagreement is printed as a finding`,
        },
        rules: {
            type: "string",
            value: "PRESET|FILE",
            help: `the alarm rules the logger was configured with (a preset such as fridge-2-8, or a JSON
file of rules): also check its rule alarm records against them (docs/alarms.md 6); a
disagreement is printed as a finding`,
        },
        json: { type: "boolean", help: "print the Verdict object as JSON" },
    },
    notes: `Checks sequence continuity, the hash chain from genesis, every epoch seal under its forward-secure
key, boot records, acknowledged checkpoints, eviction summaries and (with the location key)
encrypted positions. Prints the verdict and the first offending seq; exit 0 verified, 1 not,
2 usage error.`,
} as const satisfies CommandSpec

export const REPORT_SPEC = {
    name: "report",
    summary: "Verify a device's log and write reports a receiver can use without our software: HTML, PDF, CSV, GS1 EPCIS 2.0.",
    forms: ["(--db | --export) --keys --out [--shipment] [--format] [--tz]"],
    options: {
        db: { type: "string", value: "FILE", help: "the ingest server's database (the device is the one the keys file names)" },
        export: { type: "string", value: "FILE", help: "a device's flash export (device-export.json)" },
        keys: {
            type: "string",
            value: "FILE",
            required: "the device's keys (device-secret.json) verify the log",
            help: "the device's escrow keys (device-secret.json): k0 verifies the seals; without its lockey\nno position is shown",
        },
        out: { type: "string", value: "DIR", required: true, help: "the folder the reports are written to" },
        shipment: { type: "string", value: "FILE", help: "shipment id, SSCC, product, lot, sender, receiver, alarm preset (JSON)" },
        format: { type: "string", value: "html,pdf,csv,epcis", default: "html,pdf,csv", help: "the formats to write, comma-separated" },
        tz: { type: "string", value: "ZONE", default: "UTC", help: "IANA time zone for local times next to UTC" },
    },
    notes: `Writes report.html (self-contained page), report.pdf (A4), report.csv and report.epcis.json
(GS1 EPCIS 2.0; needs a shipment file with an SSCC or a GTIN); docs/reports.md.
Exit 0 written and verified, 1 written but the log does not verify, 2 usage or input error
(nothing written).`,
} as const satisfies CommandSpec

export const INGEST_SPEC = {
    name: "ingest",
    summary: "Run the ingest server as a service (docs/ingest.md): a SQLite file or a PostgreSQL URL.",
    forms: [
        "[--db] [--listen] [--tls-cert --tls-key] [--admin-token-file] [--max-connections] [--node] [--pool] [--witness [--witness-token-file]]",
    ],
    options: {
        db: {
            type: "string",
            value: "DB",
            default: "ingest.sqlite",
            help: `a SQLite file (created mode 0600) or a PostgreSQL URL (postgres://user@host/db,
or ?host=/socket/dir); several servers may share one database`,
        },
        listen: { type: "string", value: "HOST:PORT", default: "127.0.0.1:8080", help: "address and port; port 0 picks a free one" },
        "tls-cert": { type: "string", value: "FILE", help: "PEM certificate: serve HTTPS (plain HTTP without --tls-cert and --tls-key)" },
        "tls-key": { type: "string", value: "FILE", help: "its PEM private key" },
        "admin-token-file": {
            type: "string",
            value: "FILE",
            help: "the admin API's bearer token (or COLDTRACE_ADMIN_TOKEN); without one the admin API is off",
        },
        "max-connections": {
            type: "string",
            value: "N",
            help: `open connections at once, more are closed at once (default ${DEFAULT_MAX_CONNECTIONS})`,
        },
        node: { type: "string", value: "NAME", help: "this server's name in logs and health replies (default host name:pid)" },
        pool: { type: "string", value: "N", help: "PostgreSQL connections of this process (default 8)" },
        witness: {
            type: "string",
            value: "URL",
            help: "post every checkpoint to this witness (coldtrace witness) and store its cosignature;\nacks never wait for it (docs/witness.md)",
        },
        "witness-token-file": { type: "string", value: "FILE", help: "the witness's bearer token (or COLDTRACE_WITNESS_TOKEN)" },
    },
    notes: `Loggers' batches on POST /v1/batch, the read API, the admin API, GET /v1/health. One JSON line per
request and event on stdout. Timeouts: request head ${DEFAULT_TIMEOUTS.headMs / 1000} s, whole request ${DEFAULT_TIMEOUTS.requestMs / 1000} s, TLS handshake ${DEFAULT_TIMEOUTS.tlsMs / 1000} s.
SIGTERM or SIGINT: stop taking connections, finish requests in progress, exit 0.`,
} as const satisfies CommandSpec

export const WITNESS_SPEC = {
    name: "witness",
    summary: "Run the checkpoint witness (docs/witness.md): cosigns the ingest server's checkpoints, refuses contradictions.",
    options: {
        db: { type: "string", value: "FILE", required: true, help: "the witness's own SQLite file (created mode 0600)" },
        key: { type: "string", value: "FILE", required: true, help: "its Ed25519 private key, PEM (created mode 0600 when missing)" },
        "token-file": {
            type: "string",
            value: "FILE",
            required: true,
            help: "the bearer token the ingest server must present (at least 32 characters)",
        },
        listen: { type: "string", value: "HOST:PORT", default: "127.0.0.1:8090", help: "address and port; port 0 picks a free one" },
    },
    notes: `The ingest server posts each checkpoint to POST /v1/cosign (Authorization: Bearer <token>); the
witness cosigns it with its Ed25519 key or refuses one that contradicts what it cosigned for that
device. GET /v1/key gives its public key, GET /v1/log/DEVID a device's witness log (for coldtrace
verify --witness). One JSON line per request and event on stdout; SIGTERM or SIGINT stops it.`,
} as const satisfies CommandSpec

export const MIGRATE_SPEC = {
    name: "migrate",
    summary: "Copy an ingest database into an empty one (SQLite to PostgreSQL, or back), checked table by table.",
    options: {
        from: { type: "string", value: "DB", required: true, help: "the database to copy (a SQLite file or a PostgreSQL URL)" },
        to: { type: "string", value: "DB", required: true, help: "an empty database to copy it into (another one)" },
    },
    notes: `The source is brought to the current schema first (as the server would on start: a SQLite file
of schema 1 loses k0 and lockey). Every table is copied with its ids (records into the PostgreSQL
partition of the month their batch arrived), then both sides are read back and compared table by
table. Check the result with coldtrace verify --db on both. Exit 0 copied, 1 failed, 2 usage error.`,
} as const satisfies CommandSpec

export const BENCH_SPEC = {
    name: "bench",
    summary: "Measure the simulator, the firmware and the host; print a table and write JSON (npm run bench).",
    options: {
        out: { type: "string", value: "FILE", help: "where the JSON goes; default bench/results/bench.json" },
    },
    notes: "Default paths are in the package folder. Runs the simulator and the firmware in the test VM.",
} as const satisfies CommandSpec

// `coldtrace device ...`: a technician's commands over a logger's USB cable (docs/technician.md).
// Each is its own command spec named "device VERB"; src/cli.ts dispatches on the second word.
const PORT = {
    type: "string",
    value: "PATH",
    help: `the logger's serial port, or tcp://HOST:PORT for a Jacdac TCP link (the simulator's); default:
the only USB serial port of a CP210x, CH34x, FTDI or ESP32-S3 (or of COLDTRACE_USB_PORTS when set)`,
} as const
const DEVICE_EXIT = "Exit 2 for bad input: a usage error, no logger or two, a device that is not a coldtrace logger."

export const DEVICE_LIST_SPEC = {
    name: "device list",
    summary: "List the serial ports that look like loggers (USB-UART bridges, ESP32-S3 native USB).",
    options: {},
    notes: `Vendor ids: 10c4 (CP210x), 1a86 (CH34x), 0403 (FTDI), 303a (ESP32-S3); COLDTRACE_USB_PORTS=PATH[,PATH]
replaces the scan (pseudo-terminals are not listed). Opens no port. Exit 0, 2 when the scan fails.`,
} as const satisfies CommandSpec

export const DEVICE_STATUS_SPEC = {
    name: "device status",
    summary: "Connect to a logger over USB and print what it is: device id, firmware, provisioning, its log's extent.",
    options: { port: PORT, json: { type: "boolean", help: "print the status as JSON" } },
    notes: `Reads settings only (never a key). Exit 0. ${DEVICE_EXIT}`,
} as const satisfies CommandSpec

export const DEVICE_LOGS_SPEC = {
    name: "device logs",
    summary: "Print a logger's console lines as they come (Ctrl-C stops).",
    options: {
        port: PORT,
        for: { type: "string", value: "SECONDS", help: "stop after this long (default: until interrupted)" },
    },
    notes: `Both of the device's consoles: text on the USB line between Jacdac frames, and Jacdac logger reports
(DeviceScript's console.log). ${DEVICE_EXIT}`,
} as const satisfies CommandSpec

export const DEVICE_READOUT_SPEC = {
    name: "device readout",
    summary: "Read a logger's log out of its flash over USB into a device export; with its keys, verify it and write the reports.",
    forms: ["--out [--port] [--keys [--format] [--tz]]"],
    options: {
        port: PORT,
        out: { type: "string", value: "DIR", required: true, help: "where device-export.json (and the reports) go" },
        keys: {
            type: "string",
            value: "FILE",
            help: "the logger's escrow keys (device-secret.json): verify the export offline and write the reports",
        },
        format: { type: "string", value: "html,pdf,csv,epcis", default: "html,pdf,csv", help: "report formats (with --keys)" },
        tz: { type: "string", value: "ZONE", default: "UTC", help: "IANA time zone for local times (with --keys)" },
    },
    notes: `Writes device-export.json (coldtrace verify --export and coldtrace report --export read it); with --keys
also the reports, as coldtrace report --export would. Exit 0 read out (and verified), 1 read out but
the log does not verify, ${DEVICE_EXIT.slice(5)}`,
} as const satisfies CommandSpec

export const DEVICE_PROVISION_SPEC = {
    name: "device provision",
    summary: "Give a blank logger its identity, keys and configuration, registered with the ingest server; print its label.",
    forms: ["--profile --endpoint --keys-out [--port] [--server] [--admin-token-file] [--label] [--force] [--allow-http]"],
    options: {
        port: PORT,
        profile: {
            type: "string",
            value: "NAME|FILE",
            required: true,
            help: `the configuration: an alarm preset with a band (who-30dtr, frozen, ...: 5 min samples,
hourly uploads) or a JSON file of cfg fields (docs/provisioning.md)`,
        },
        endpoint: { type: "string", value: "URL", required: true, help: "the ingest URL the logger uploads to (https://)" },
        server: { type: "string", value: "URL", help: "the ingest server's admin API (default: the endpoint's origin)" },
        "admin-token-file": {
            type: "string",
            value: "FILE",
            help: "the admin API's bearer token (or COLDTRACE_ADMIN_TOKEN)",
        },
        "keys-out": {
            type: "string",
            value: "FILE",
            required: "the escrow keys file is the only copy of k0 and lockey",
            help: "where the escrow keys file goes (device-secret.json, mode 0600; must not exist)",
        },
        label: { type: "string", value: "TEXT", help: "the device's label at the server" },
        force: {
            type: "boolean",
            help: "re-provision a provisioned logger: its settings erased, its old identity retired, new keys (never the old ones)",
        },
        "allow-http": { type: "boolean", help: "tests only: let the logger take a plain http:// endpoint" },
    },
    notes: `A provisioned logger is refused without --force; with it, still refused while it holds records the
server has not acknowledged (read them out first). Order: keys generated and written to --keys-out, device registered (admin API), settings written and
read back, endpoint last. A failure after registration (cable pulled) rolls back: the registration
is retired and the keys file renamed *.unused; the logger, without its endpoint, stays unprovisioned.
Exit 0 provisioned, 1 failed (rolled back), ${DEVICE_EXIT.slice(5)}`,
} as const satisfies CommandSpec

export const DEVICE_WIPE_SPEC = {
    name: "device wipe",
    summary: "Decommission a logger: erase its identity, keys, configuration and log; retire it at the ingest server.",
    forms: ["--devid [--port] [--server [--admin-token-file]] [--force]"],
    options: {
        port: PORT,
        devid: {
            type: "string",
            value: "DEVID",
            required: "name the logger you mean to wipe",
            help: "the logger's device id, as its label shows (blank: the word blank)",
        },
        server: { type: "string", value: "URL", help: "the ingest server whose admin API retires the device (recorded there)" },
        "admin-token-file": { type: "string", value: "FILE", help: "the admin API's bearer token (or COLDTRACE_ADMIN_TOKEN)" },
        force: { type: "boolean", help: "wipe although the logger holds records the server has not acknowledged" },
    },
    notes: `Refuses when --devid is not the connected logger's, and (without --force) while it holds records the
server has not acknowledged: read them out first (device readout). With --server the device is retired
there after the erase (its batches are refused from then on). Exit 0 wiped (and retired), 1 not
everything erased or not retired, ${DEVICE_EXIT.slice(5)}`,
} as const satisfies CommandSpec

export const DEVICE_DEPLOY_SPEC = {
    name: "device deploy",
    summary: "Put a firmware image (devs build output) on a logger over USB; an image it already runs is not rewritten.",
    options: {
        port: PORT,
        image: {
            type: "string",
            value: "FILE",
            required: true,
            help: "the DeviceScript image (.devs), e.g. devs/.devicescript/bin/bytecode.devs",
        },
    },
    notes: `The program is stopped, the image sent, the program started again; the hash the logger then reports
must be the image's. The next boot record names the new program (the verifier lists it). Exit 0,
1 the deploy failed, ${DEVICE_EXIT.slice(5)}`,
} as const satisfies CommandSpec

export const DEVICE_COMMANDS = [
    DEVICE_LIST_SPEC,
    DEVICE_STATUS_SPEC,
    DEVICE_LOGS_SPEC,
    DEVICE_READOUT_SPEC,
    DEVICE_PROVISION_SPEC,
    DEVICE_WIPE_SPEC,
    DEVICE_DEPLOY_SPEC,
] as const satisfies readonly CommandSpec[]

/** Every command, in the order `coldtrace help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
    SIM_SPEC,
    VERIFY_SPEC,
    REPORT_SPEC,
    INGEST_SPEC,
    WITNESS_SPEC,
    MIGRATE_SPEC,
    ...DEVICE_COMMANDS,
    BENCH_SPEC,
]
