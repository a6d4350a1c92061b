// HPKE (RFC 9180) base mode, single suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// AES-256-GCM — CONTRACT §6. WebCrypto only: X25519 for the KEM, HMAC-SHA256 for
// HKDF-Extract/Expand (WebCrypto's HKDF cannot run the two steps separately, which the
// labeled functions of RFC 9180 §4 need), AES-GCM for the AEAD. Section numbers refer
// to RFC 9180.

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function i2osp(value, length) {  // §3, for the small values used here
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0 && v > 0; i--, v = Math.floor(v / 256)) {
    out[i] = v % 256;
  }
  return out;
}

export function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64e(bytes) {  // base64url without padding (RFC 4648 §5)
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64d(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

const KEM_SUITE_ID = concat(utf8.encode("KEM"), i2osp(0x0020, 2));
const HPKE_SUITE_ID = concat(utf8.encode("HPKE"), i2osp(0x0020, 2), i2osp(0x0001, 2),
  i2osp(0x0002, 2));
const VERSION = utf8.encode("HPKE-v1");
const EMPTY = new Uint8Array(0);
const N_H = 32;
// PKCS#8 prefix of an X25519 private key (RFC 8410): how WebCrypto imports a raw one.
const PKCS8_X25519 = hexToBytes("302e020100300506032b656e04220420");

async function hmac(key, data) {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false,
    ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

async function extract(salt, ikm) {  // RFC 5869 §2.2; empty salt = N_H zero bytes
  return hmac(salt.length ? salt : new Uint8Array(N_H), ikm);
}

async function expand(prk, info, length) {  // RFC 5869 §2.3
  let output = EMPTY;
  let block = EMPTY;
  for (let counter = 1; output.length < length; counter++) {
    block = await hmac(prk, concat(block, info, Uint8Array.of(counter)));
    output = concat(output, block);
  }
  return output.slice(0, length);
}

function labeledExtract(suiteId, salt, label, ikm) {  // §4
  return extract(salt, concat(VERSION, suiteId, utf8.encode(label), ikm));
}

function labeledExpand(suiteId, prk, label, info, length) {  // §4
  return expand(prk, concat(i2osp(length, 2), VERSION, suiteId, utf8.encode(label), info),
    length);
}

async function importPrivate(raw) {
  return subtle.importKey("pkcs8", concat(PKCS8_X25519, raw), { name: "X25519" }, true,
    ["deriveBits"]);
}

async function publicBytes(privateKey) {  // SerializePublicKey(pk(sk)), §7.1.1
  const jwk = await subtle.exportKey("jwk", privateKey);
  return b64d(jwk.x);
}

async function dh(privateKey, publicRaw) {  // §4.1, §7.1.4
  const pub = await subtle.importKey("raw", publicRaw, { name: "X25519" }, true, []);
  const shared = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: pub },
    privateKey, 256));
  if (shared.every((b) => b === 0)) throw new Error("X25519 produced the all-zero secret");
  return shared;
}

async function extractAndExpand(dhValue, kemContext) {  // §4.1
  const prk = await labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dhValue);
  return labeledExpand(KEM_SUITE_ID, prk, "shared_secret", kemContext, 32);
}

class Context {  // §5.2: one sealing (or opening) context with its sequence number
  constructor(key, baseNonce, values) {
    this.key = key;
    this.baseNonce = baseNonce;
    this.values = values;  // what a test vector lists, for tests
    this.seq = 0;
  }

  nonce() {
    const seq = i2osp(this.seq, 12);
    return this.baseNonce.map((b, i) => b ^ seq[i]);
  }

  async seal(aad, pt) {
    const ct = await subtle.encrypt({ name: "AES-GCM", iv: this.nonce(), additionalData: aad,
      tagLength: 128 }, this.key, pt);
    this.seq += 1;
    return new Uint8Array(ct);
  }

  async open(aad, ct) {
    const pt = await subtle.decrypt({ name: "AES-GCM", iv: this.nonce(), additionalData: aad,
      tagLength: 128 }, this.key, ct);
    this.seq += 1;
    return new Uint8Array(pt);
  }
}

async function keySchedule(sharedSecret, info) {  // §5.1, mode_base
  const pskIdHash = await labeledExtract(HPKE_SUITE_ID, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = await labeledExtract(HPKE_SUITE_ID, EMPTY, "info_hash", info);
  const context = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(HPKE_SUITE_ID, sharedSecret, "secret", EMPTY);
  const key = await labeledExpand(HPKE_SUITE_ID, secret, "key", context, 32);
  const baseNonce = await labeledExpand(HPKE_SUITE_ID, secret, "base_nonce", context, 12);
  const aesKey = await subtle.importKey("raw", key, { name: "AES-GCM" }, false,
    ["encrypt", "decrypt"]);
  return new Context(aesKey, baseNonce, {
    shared_secret: sharedSecret, key_schedule_context: context, secret, key,
    base_nonce: baseNonce });
}

// SetupBaseS (§5.1.1). `ephemeralPrivate` is the internal test hook that fixes skE for
// the RFC vector; the pages never pass it, so every seal uses a fresh key pair.
export async function setupBaseS(pkR, info, ephemeralPrivate) {
  let privateKey;
  let enc;
  if (ephemeralPrivate) {
    privateKey = await importPrivate(ephemeralPrivate);
    enc = await publicBytes(privateKey);
  } else {
    const pair = await subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
    privateKey = pair.privateKey;
    enc = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  }
  const shared = await extractAndExpand(await dh(privateKey, pkR), concat(enc, pkR));
  return { enc, context: await keySchedule(shared, info) };
}

export async function setupBaseR(enc, skR, info) {  // §5.1.1
  const privateKey = await importPrivate(skR);
  const shared = await extractAndExpand(await dh(privateKey, enc),
    concat(enc, await publicBytes(privateKey)));
  return keySchedule(shared, info);
}

// Single-shot Seal/Open (§6.1) with empty aad: what Hotline uses (CONTRACT §6).
export async function seal(pkR, purpose, plaintext) {
  const { enc, context } = await setupBaseS(pkR, utf8.encode("hotline/1 " + purpose));
  return { enc, ciphertext: await context.seal(EMPTY, plaintext) };
}

export async function open(skR, purpose, enc, ciphertext) {
  const context = await setupBaseR(enc, skR, utf8.encode("hotline/1 " + purpose));
  return context.open(EMPTY, ciphertext);
}
