// A throw-away PKI for tests and simulator runs: a test CA and one server certificate for
// 127.0.0.1 and localhost, made fresh per run with Node's crypto alone (no openssl, no
// dependency). Certificates are DER built here and signed with ECDSA P-256 / SHA-256.
//
// Safety: the CA's private key is never written anywhere and is dropped when makeTestPki
// returns, so nobody can issue another certificate under it; the CA is also name-constrained
// to 127.0.0.1 and localhost, and both certificates expire after `hours` (default 24). Whoever
// trusts `caFile` (NODE_EXTRA_CA_CERTS for the simulator's VM) trusts only this one server key,
// which lives in `dir` with owner-only access. Nothing here is ever committed.
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import path from "node:path"

export interface TestPki {
    /** the test CA's certificate (PEM): what clients trust */
    caPem: string
    /** the server certificate (PEM), SAN IP:127.0.0.1 and DNS:localhost */
    certPem: string
    /** the server's private key (PKCS#8 PEM) */
    keyPem: string
    /** `dir/ca.pem`: give it to NODE_EXTRA_CA_CERTS or a client's `ca` */
    caFile: string
    /** `dir/server-cert.pem` */
    certFile: string
    /** `dir/server-key.pem`, mode 0600 */
    keyFile: string
    notBefore: Date
    notAfter: Date
}

export interface TestPkiOptions {
    /** validity of both certificates from now, default 24 h (they start 10 minutes in the past) */
    hours?: number
}

// ---- DER -------------------------------------------------------------------------------------

function derLen(n: number): Buffer {
    if (n < 0x80) return Buffer.from([n])
    const bytes: number[] = []
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff)
    return Buffer.from([0x80 | bytes.length, ...bytes])
}
function tlv(tag: number, ...content: Buffer[]): Buffer {
    const body = Buffer.concat(content)
    return Buffer.concat([Buffer.from([tag]), derLen(body.length), body])
}
const seq = (...items: Buffer[]) => tlv(0x30, ...items)
const set = (...items: Buffer[]) => tlv(0x31, ...items)
const octets = (b: Buffer) => tlv(0x04, b)
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b)
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]))
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"))
/** context-specific [n]: constructed (EXPLICIT or a SEQUENCE made IMPLICIT) or primitive */
const ctx = (n: number, constructed: boolean, ...content: Buffer[]) => tlv((constructed ? 0xa0 : 0x80) | n, ...content)

function uint(b: Buffer): Buffer {
    let i = 0
    while (i < b.length - 1 && b[i] === 0) i++
    const v = b.subarray(i)
    return tlv(0x02, v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v)
}
function oid(dotted: string): Buffer {
    const parts = dotted.split(".").map(Number)
    const out = [40 * parts[0] + parts[1]]
    for (const p of parts.slice(2)) {
        const groups = [p & 0x7f]
        for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) groups.unshift((v & 0x7f) | 0x80)
        out.push(...groups)
    }
    return tlv(0x06, Buffer.from(out))
}
/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 4.1.2.5) */
function time(d: Date): Buffer {
    const iso = d.toISOString() // 2026-01-02T03:04:05.678Z
    const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z" // 20260102030405Z
    return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2))) : tlv(0x18, Buffer.from(digits))
}
const name = (cn: string) => seq(set(seq(oid(OID.cn), utf8(cn))))
const ext = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value))

const OID = {
    ecdsaSha256: "1.2.840.10045.4.3.2",
    cn: "2.5.4.3",
    subjectKeyId: "2.5.29.14",
    keyUsage: "2.5.29.15",
    subjectAltName: "2.5.29.17",
    basicConstraints: "2.5.29.19",
    nameConstraints: "2.5.29.30",
    authorityKeyId: "2.5.29.35",
    extKeyUsage: "2.5.29.37",
    serverAuth: "1.3.6.1.5.5.7.3.1",
}

const LOOPBACK_V4 = Buffer.from([127, 0, 0, 1])
const HOST_MASK_V4 = Buffer.from([255, 255, 255, 255])

function spki(key: KeyObject): Buffer {
    return key.export({ type: "spki", format: "der" })
}
/** key identifier: 160 bits of SHA-256 over the SubjectPublicKeyInfo (RFC 7093 method 1 style) */
function keyId(key: KeyObject): Buffer {
    return createHash("sha256").update(spki(key)).digest().subarray(0, 20)
}

interface CertSpec {
    subject: string
    issuer: string
    publicKey: KeyObject
    issuerPublicKey: KeyObject
    signer: KeyObject
    notBefore: Date
    notAfter: Date
    extensions: Buffer[]
}

function certificate(c: CertSpec): string {
    const alg = seq(oid(OID.ecdsaSha256))
    const serial = randomBytes(16)
    serial[0] &= 0x7f // positive, at most 20 octets
    serial[0] |= 0x01 // and never zero
    const tbs = seq(
        ctx(0, true, uint(Buffer.from([2]))), // v3
        uint(serial),
        alg,
        name(c.issuer),
        seq(time(c.notBefore), time(c.notAfter)),
        name(c.subject),
        spki(c.publicKey),
        ctx(
            3,
            true,
            seq(
                ext(OID.subjectKeyId, false, octets(keyId(c.publicKey))),
                ext(OID.authorityKeyId, false, seq(ctx(0, false, keyId(c.issuerPublicKey)))),
                ...c.extensions,
            ),
        ),
    )
    const der = seq(tbs, alg, bits(sign("sha256", tbs, c.signer))) // ECDSA signature in DER, as X.509 wants
    const b64 = der.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "")
    return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`
}

/**
 * Makes a fresh test CA and a server certificate for 127.0.0.1 and localhost in `dir` (created
 * if needed): `ca.pem`, `server-cert.pem`, `server-key.pem` (0600). The CA key is not kept.
 */
export function makeTestPki(dir: string, opts: TestPkiOptions = {}): TestPki {
    const hours = opts.hours ?? 24
    if (!(hours > 0 && hours <= 24 * 30)) throw new RangeError(`hours must be in (0, 720], got ${hours}`)
    const now = Date.now()
    const notBefore = new Date(Math.floor((now - 10 * 60_000) / 1000) * 1000)
    const notAfter = new Date(Math.floor((now + hours * 3_600_000) / 1000) * 1000)
    const tag = randomBytes(4).toString("hex")
    const caName = `coldtrace test CA ${tag}`

    const ca = generateKeyPairSync("ec", { namedCurve: "P-256" })
    const server = generateKeyPairSync("ec", { namedCurve: "P-256" })

    const caPem = certificate({
        subject: caName,
        issuer: caName,
        publicKey: ca.publicKey,
        issuerPublicKey: ca.publicKey,
        signer: ca.privateKey,
        notBefore,
        notAfter,
        extensions: [
            ext(OID.basicConstraints, true, seq(bool(true), uint(Buffer.from([0])))), // CA, pathlen 0
            ext(OID.keyUsage, true, bits(Buffer.from([0x06]), 1)), // keyCertSign, cRLSign
            // permitted: DNS localhost, IP 127.0.0.1/32 (so this CA can vouch for nothing else)
            ext(
                OID.nameConstraints,
                true,
                seq(
                    ctx(
                        0,
                        true,
                        seq(ctx(2, false, Buffer.from("localhost"))),
                        seq(ctx(7, false, Buffer.concat([LOOPBACK_V4, HOST_MASK_V4]))),
                    ),
                ),
            ),
        ],
    })
    const certPem = certificate({
        subject: "localhost",
        issuer: caName,
        publicKey: server.publicKey,
        issuerPublicKey: ca.publicKey,
        signer: ca.privateKey,
        notBefore,
        notAfter,
        extensions: [
            ext(OID.basicConstraints, true, seq()),
            ext(OID.keyUsage, true, bits(Buffer.from([0x80]), 7)), // digitalSignature
            ext(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
            ext(OID.subjectAltName, false, seq(ctx(2, false, Buffer.from("localhost")), ctx(7, false, LOOPBACK_V4))),
        ],
    })
    const keyPem = server.privateKey.export({ type: "pkcs8", format: "pem" }) as string

    // self-check: a malformed certificate would otherwise show up as an obscure TLS error
    const caX = new X509Certificate(caPem)
    const certX = new X509Certificate(certPem)
    if (!caX.ca || !caX.verify(ca.publicKey) || !certX.checkIssued(caX) || !certX.verify(caX.publicKey)) {
        throw new Error("makeTestPki: generated certificates do not verify")
    }
    if (!certX.checkIP("127.0.0.1") || !certX.checkHost("localhost")) throw new Error("makeTestPki: SAN check failed")
    createPrivateKey(keyPem)

    mkdirSync(dir, { recursive: true })
    const caFile = path.join(dir, "ca.pem")
    const certFile = path.join(dir, "server-cert.pem")
    const keyFile = path.join(dir, "server-key.pem")
    writeFileSync(caFile, caPem)
    writeFileSync(certFile, certPem)
    rmSync(keyFile, { force: true }) // a new file, so the mode below applies from its first byte
    writeFileSync(keyFile, keyPem, { mode: 0o600 })
    return { caPem, certPem, keyPem, caFile, certFile, keyFile, notBefore, notAfter }
}
