// Proof of work (CONTRACT §2) off the page's thread: find a decimal nonce so that
// SHA-256(challenge ":" nonce) starts with `difficulty` zero bits.
const utf8 = new TextEncoder();

function leadingZeroBits(digest) {
  let bits = 0;
  for (const byte of digest) {
    if (byte === 0) { bits += 8; continue; }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

self.onmessage = async (event) => {
  const { challenge, difficulty } = event.data;
  const batch = 256;
  for (let start = 0; ; start += batch) {
    const digests = await Promise.all(Array.from({ length: batch }, (_, i) =>
      crypto.subtle.digest("SHA-256", utf8.encode(challenge + ":" + (start + i)))));
    for (let i = 0; i < batch; i++) {
      if (leadingZeroBits(new Uint8Array(digests[i])) >= difficulty) {
        self.postMessage({ nonce: String(start + i) });
        return;
      }
    }
  }
};
