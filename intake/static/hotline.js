// Progressive enhancement of the public pages. Without this script every form still
// works (intake seals on arrival). With it, the report and its attachments are sealed
// here, in the browser, before anything leaves the machine; only the envelope is sent.
import { b64d, b64e, bytesToHex, concat, seal } from "./hpke.js";

const utf8 = new TextEncoder();
const CLEANABLE = new Set(["image/jpeg", "image/png", "image/webp"]);

function value(form, name) {
  const field = form.elements.namedItem(name);
  return field && typeof field.value === "string" ? field.value.trim() : "";
}

class Refusal extends Error {}

// The same payload (CONTRACT §2) intake builds from the clear form (intake/pages.py).
function reportPayload(form) {
  const payload = { description: value(form, "description") };
  for (const name of ["title", "location", "evidence", "occurred_at"]) {
    if (value(form, name)) payload[name] = value(form, name);
  }
  const subjects = [];
  for (const i of [1, 2, 3]) {
    const name = value(form, `subject_name_${i}`);
    if (!name) continue;
    const subject = { name };
    for (const key of ["unit", "position"]) {
      if (value(form, `subject_${key}_${i}`)) subject[key] = value(form, `subject_${key}_${i}`);
    }
    subjects.push(subject);
  }
  if (subjects.length) payload.subjects = subjects;
  const amount = value(form, "amount_value").replace(/,/g, "");
  if (amount) {
    if (!/^[0-9]+(\.[0-9]+)?$/.test(amount)) throw new Refusal("Amount");
    payload.amount = { value: Number(amount), currency: value(form, "amount_currency") || "CNY" };
  }
  const named = form.querySelector("input[name=identity_mode]:checked");
  if (named && named.value === "named") {
    const identity = { name: value(form, "identity_name") };
    if (!identity.name) throw new Refusal("Identity");
    for (const key of ["employee_id", "phone", "email"]) {
      if (value(form, `identity_${key}`)) identity[key] = value(form, `identity_${key}`);
    }
    payload.identity = identity;
  }
  return payload;
}

// The complaint payload (CONTRACT §2), as intake builds it from the clear form.
function complaintPayload(form) {
  const payload = {};
  for (const name of ["name", "email", "subject", "description"]) {
    payload[name] = value(form, name);
  }
  for (const name of ["phone", "customer_ref"]) {
    if (value(form, name)) payload[name] = value(form, name);
  }
  return payload;
}

// Re-encode an image so that EXIF, GPS and other metadata are gone before sealing.
async function withoutMetadata(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  const type = file.type === "image/png" ? "image/png" : "image/jpeg";
  return { blob: await canvas.convertToBlob({ type, quality: 0.92 }), type };
}

function solvePow(problem) {
  if (!problem.difficulty) return Promise.resolve("0");
  return new Promise((resolve, reject) => {
    const worker = new Worker("/static/pow-worker.js");
    worker.onmessage = (event) => { worker.terminate(); resolve(event.data.nonce); };
    worker.onerror = (event) => { worker.terminate(); reject(new Error(event.message)); };
    worker.postMessage({ challenge: problem.challenge, difficulty: problem.difficulty });
  });
}

async function getJson(path) {
  const response = await fetch(path, { credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new Error(path + " " + response.status);
  return response.json();
}

async function sealAttachments(form, publicKey, limits) {
  const input = form.elements.namedItem("attachments");
  const files = input && input.files ? Array.from(input.files) : [];
  if (files.length > limits.count) throw new Refusal("Files");
  const clean = form.elements.namedItem("clean_metadata");
  const refs = [];
  const sealed = [];
  let total = 0;
  for (const file of files) {
    if (file.size > limits.bytes) throw new Refusal("Files");
    total += file.size;
    if (total > limits.total) throw new Refusal("Files");
    let blob = file;
    let type = file.type || "application/octet-stream";
    let cleaned = false;
    if (clean && clean.checked && CLEANABLE.has(file.type)) {
      ({ blob, type } = await withoutMetadata(file));
      cleaned = true;
    }
    const box = await seal(publicKey, "attachment", new Uint8Array(await blob.arrayBuffer()));
    const both = concat(box.enc, box.ciphertext);
    const id = bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", both)));
    refs.push({ blob: id, name: file.name.slice(0, 200), type, size: blob.size,
      metadata_removed: cleaned });
    sealed.push(b64e(both));
  }
  return { refs, sealed };
}

function post(action, fields) {
  const envelope = document.createElement("form");
  envelope.method = "post";
  envelope.action = action;
  envelope.enctype = "multipart/form-data";
  envelope.hidden = true;
  for (const [name, text] of fields) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = text;
    envelope.appendChild(input);
  }
  document.body.appendChild(envelope);
  envelope.submit();
}

// A report or complaint: sealed payload and attachments, plus a solved proof of work.
async function filingFields(form, limits, say) {
  const payload = form.dataset.seal === "complaint" ? complaintPayload(form)
    : reportPayload(form);
  const [key, problem] = await Promise.all([getJson("/api/v1/intake/key"),
    getJson("/api/v1/intake/pow")]);
  say("msgWorking");
  const nonce = solvePow(problem);
  const publicKey = b64d(key.public_key);
  const attachments = await sealAttachments(form, publicKey, limits);
  if (attachments.refs.length) payload.attachments = attachments.refs;
  const box = await seal(publicKey, form.dataset.seal, utf8.encode(JSON.stringify(payload)));
  const fields = [["csrf", value(form, "csrf")], ["lang", value(form, "lang")],
    ["category", value(form, "category")], ["unit", value(form, "unit")],
    ["sealed_kid", key.kid], ["sealed_enc", b64e(box.enc)],
    ["sealed_ciphertext", b64e(box.ciphertext)],
    ["pow_challenge", problem.challenge], ["pow_nonce", await nonce]];
  for (const item of attachments.sealed) fields.push(["sealed_attachment", item]);
  return fields;
}

// Information added on the follow-up page: sealed once for the organisation and once
// for the receipt's reply key (so the reporter reads it back, and nobody else can).
async function messageFields(form, limits) {
  const key = await getJson("/api/v1/intake/key");
  const publicKey = b64d(key.public_key);
  const attachments = await sealAttachments(form, publicKey, limits);
  const lines = [value(form, "body")].concat(attachments.refs.map((ref) =>
    form.dataset.msgAttachment.replace("%(name)s", ref.name).replace("%(blob)s", ref.blob)));
  const text = lines.filter((line) => line).join("\n");
  if (!text) throw new Refusal("Empty");
  const plaintext = utf8.encode(text);
  const forOrganisation = await seal(publicKey, "message", plaintext);
  const forReporter = await seal(b64d(form.dataset.replyKey), "message", plaintext);
  const fields = [["csrf", value(form, "csrf")], ["lang", value(form, "lang")],
    ["session", value(form, "session")], ["sealed_kid", key.kid],
    ["sealed_enc", b64e(forOrganisation.enc)],
    ["sealed_ciphertext", b64e(forOrganisation.ciphertext)],
    ["copy_enc", b64e(forReporter.enc)], ["copy_ciphertext", b64e(forReporter.ciphertext)]];
  for (const item of attachments.sealed) fields.push(["sealed_attachment", item]);
  return fields;
}

function enhance(form) {
  const status = form.querySelector(".status");
  const say = (key) => { status.textContent = form.dataset[key] || ""; };
  const limits = { count: Number(form.dataset.maxFiles), bytes: Number(form.dataset.maxFileBytes),
    total: Number(form.dataset.maxTotalBytes) };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (form.dataset.busy) return;
    form.dataset.busy = "1";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      say("msgSealing");
      const fields = form.dataset.seal === "message" ? await messageFields(form, limits)
        : await filingFields(form, limits, say);
      say("msgSending");
      post(form.action, fields);
    } catch (error) {
      const key = error instanceof Refusal ? "msgRefused" + error.message : "msgFailed";
      status.textContent = form.dataset[key] || form.dataset.msgFailed;
      delete form.dataset.busy;
      button.disabled = false;
    }
  });
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const status = button.parentElement.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
        status.textContent = button.dataset.msgCopied;
      } catch {
        status.textContent = "";
      }
    });
  }
}

const form = document.querySelector("form[data-seal]");
if (form && globalThis.crypto && crypto.subtle && globalThis.Worker &&
    globalThis.OffscreenCanvas) {
  enhance(form);
}
copyButtons();
