// The playground: a client of the public API, as any other. No framework and no build step, so that the page
// works offline from the package. The event stream is read with fetch, not EventSource: EventSource cannot
// send the x-api-key header.

import { VOCABULARY } from "./vocabulary.js";

const $ = (id) => document.getElementById(id);
const MODEL = "ltx-2-fast";
const KEY_STORE = "ltxserve.apiKey";
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const STAGES = VOCABULARY.stages;

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.error || `The server answered ${status}.`);
    this.status = status;
    this.code = body?.code || String(status);
    this.details = body?.details || [];
    this.requestId = body?.request_id;
    this.retryAfter = retryAfter;
  }

  // What the user reads: the server's own words, with what to do about them.
  describe() {
    const lines = [this.message];
    if (this.status === 401) lines.unshift("The API key was not accepted.");
    if (this.status === 406) lines.push("The operator adds credits with `ltxserve credits add`.");
    if (this.status === 429 && this.retryAfter) lines.push(`Try again in ${this.retryAfter} s.`);
    for (const issue of this.details) {
      if (!this.message.includes(issue.message)) lines.push(`${issue.field}: ${issue.message}`);
    }
    return { title: `${this.status} ${this.code}`, lines };
  }
}

function apiKey() {
  return $("api-key").value.trim();
}

async function call(method, path, { body, headers = {}, allow = [] } = {}) {
  const init = { method, headers: { "x-api-key": apiKey(), ...headers } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok && !allow.includes(response.status)) {
    throw new ApiError(response.status, data, response.headers.get("retry-after"));
  }
  return data;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Server-Sent Events of a request, until it ends. A broken stream is resumed with Last-Event-ID; `queue`
// events carry no id, so they never move the resume point.
async function* events(requestId) {
  let lastId = null;
  for (let failures = 0; failures <= 5; ) {
    const headers = { "x-api-key": apiKey(), accept: "text/event-stream" };
    if (lastId !== null) headers["last-event-id"] = lastId;
    let response;
    try {
      response = await fetch(`/v2/requests/${requestId}/events`, { headers });
    } catch {
      failures += 1;
      await sleep(250 * 2 ** failures);
      continue;
    }
    if (!response.ok) {
      throw new ApiError(response.status, await response.json().catch(() => null));
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let fields = {};
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end).replace(/\r$/, "");
          buffer = buffer.slice(end + 1);
          if (line === "") {
            if (fields.data !== undefined) {
              const event = { id: fields.id ?? null, type: fields.event || "message", data: JSON.parse(fields.data) };
              if (event.id !== null) lastId = event.id;
              failures = 0;
              yield event;
              if (TERMINAL.has(event.data.status)) return;
            }
            fields = {};
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const name = colon < 0 ? line : line.slice(0, colon);
            const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            fields[name] = name === "data" && fields.data !== undefined ? `${fields.data}\n${text}` : text;
          }
        }
      }
    } catch {
      // A connection cut mid-stream: resumed below, after the last event heard.
    }
    // The stream ended before the request did (a proxy's timeout, a restart): resume it, unless the request
    // ended in between, after its last event this page heard.
    const now = await call("GET", `/v2/requests/${requestId}/status`, { allow: [422] });
    if (TERMINAL.has(now.status)) {
      yield { id: null, type: "status", data: now };
      return;
    }
    failures += 1;
    await sleep(250 * 2 ** failures);
  }
  throw new Error("The event stream keeps breaking; the request goes on. Its record is in the history.");
}

// --- the form --------------------------------------------------------------------------------------------

let image = null; // a data: URI from a dropped or picked file; a URL field takes precedence when filled
let prices = null;

function params() {
  const seed = $("seed").value.trim();
  const url = $("image-url").value.trim();
  const chosen = url || image;
  return {
    prompt: $("prompt").value.trim(),
    duration: Number($("duration").value),
    resolution: $("resolution").value,
    aspect_ratio: $("aspect-ratio").value,
    fps: Number($("fps").value),
    generate_audio: $("audio").checked,
    ...(seed !== "" ? { seed: Number(seed) } : {}),
    ...(chosen ? { image: chosen } : {}),
  };
}

function price(resolution, duration) {
  const row = prices?.clips?.[MODEL]?.find((r) => r.resolution === resolution && r.duration === duration);
  return row ? row.price : null;
}

const dollars = (value) => `$${Number(value).toFixed(2)}`;

function showPrice() {
  const p = params();
  const amount = price(p.resolution, p.duration);
  $("price").textContent = amount === null ? "" : `Price: ${dollars(amount)} for this clip (${p.duration} s ${p.resolution}).`;
  showCode(p);
}

function showCode(p) {
  // The image is left out of the snippets: a data URI is megabytes of text.
  const shown = { ...p };
  if (shown.image?.startsWith("data:")) shown.image = "data:image/png;base64,...";
  const body = JSON.stringify(shown);
  const pretty = JSON.stringify(shown, null, 4);
  const origin = window.location.origin;
  $("code-curl").textContent =
    `curl -sS -X POST ${origin}/v1/${MODEL} \\\n` +
    `  -H "x-api-key: $LTXSERVE_API_KEY" -H "content-type: application/json" \\\n` +
    `  -d '${body.replaceAll("'", "'\\''")}' \\\n` +
    `  -o clip.mp4`;
  const pyArgs = pretty.replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False");
  $("code-requests").textContent =
    `import os\nimport requests\n\n` +
    `response = requests.post(\n    "${origin}/v1/${MODEL}",\n` +
    `    headers={"x-api-key": os.environ["LTXSERVE_API_KEY"]},\n` +
    `    json=${pyArgs.replace(/\n/g, "\n    ")},\n    timeout=600,\n)\n` +
    `response.raise_for_status()\nopen("clip.mp4", "wb").write(response.content)`;
  const kwargs = Object.entries(shown)
    .map(([name, value]) => `    ${name}=${JSON.stringify(value).replace(/^true$/, "True").replace(/^false$/, "False")},`)
    .join("\n");
  $("code-client").textContent =
    `import os\nfrom ltxserve.client import Client\n\n` +
    `with Client("${origin}", os.environ["LTXSERVE_API_KEY"]) as client:\n` +
    `    request = client.submit(\n    ${kwargs.replace(/\n/g, "\n    ")}\n    )\n` +
    `    record = request.wait(on_progress=print)\n` +
    `    request.download("clip.mp4")\n    print(record.seed, record.cost)`;
}

async function showBalance() {
  if (!apiKey()) {
    $("balance").textContent = "";
    return;
  }
  try {
    const credits = await call("GET", "/v1/get-user-credits");
    $("balance").textContent = `Balance: ${dollars(credits.credits)}`;
  } catch (error) {
    $("balance").textContent = error instanceof ApiError && error.status === 401 ? "This key is not accepted." : "";
  }
}

function rememberKey() {
  if ($("remember-key").checked && apiKey()) {
    localStorage.setItem(KEY_STORE, apiKey());
  } else {
    localStorage.removeItem(KEY_STORE);
  }
}

function readImage(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    image = reader.result;
    $("image-url").value = "";
    $("image-thumb").src = image;
    $("image-preview").hidden = false;
    showPrice();
  };
  reader.readAsDataURL(file);
}

function clearImage() {
  image = null;
  $("image-file").value = "";
  $("image-url").value = "";
  $("image-thumb").removeAttribute("src");
  $("image-preview").hidden = true;
  showPrice();
}

// --- a run -----------------------------------------------------------------------------------------------

let current = null; // the request being followed: { id }

function setStatus(text) {
  $("status").textContent = text;
}

function showError(error) {
  const box = $("error");
  box.replaceChildren();
  if (!error) {
    box.hidden = true;
    return;
  }
  const { title, lines } =
    error instanceof ApiError ? error.describe() : { title: "Error", lines: [String(error.message || error)] };
  const heading = document.createElement("strong");
  heading.textContent = title;
  box.append(heading);
  for (const line of lines) {
    const p = document.createElement("p");
    p.textContent = line;
    box.append(p);
  }
  box.hidden = false;
}

function setProgress(percent, label) {
  $("progress").value = Math.max(0, Math.min(100, percent));
  $("stage").textContent = label;
}

function busy(running) {
  $("generate").disabled = running;
  $("cancel").disabled = !running;
}

function showClip(record) {
  const video = $("result");
  video.src = record.output;
  video.hidden = false;
  const link = $("download");
  link.href = record.output;
  link.download = `${record.request_id}.mp4`;
  link.hidden = false;
}

async function generate(event) {
  event.preventDefault();
  showError(null);
  if (!apiKey()) {
    showError(new Error("Enter your API key first."));
    $("api-key").focus();
    return;
  }
  const p = params();
  if (!p.prompt) {
    showError(new Error("Write a prompt first: what the clip shows and sounds like."));
    $("prompt").focus();
    return;
  }
  rememberKey();
  busy(true);
  setProgress(0, "Progress");
  $("result").hidden = true;
  $("download").hidden = true;
  $("outcome").textContent = "";
  setStatus("Submitting…");
  try {
    const accepted = await call("POST", `/v2/${MODEL}`, {
      body: p,
      headers: { "idempotency-key": crypto.randomUUID() },
    });
    current = { id: accepted.request_id };
    setStatus(`Queued (request ${accepted.request_id}).`);
    loadHistory();
    let last = null;
    for await (const { type, data } of events(accepted.request_id)) {
      last = data;
      if (type === "queue") {
        setStatus(`Queued: position ${data.queue_position}${data.queue_position === 1 ? " (next)" : ""}.`);
      } else if (type === "progress" && data.progress) {
        const { stage, step, total, percent } = data.progress;
        setStatus("Generating…");
        setProgress(percent ?? 0, `${STAGES[stage] || stage}: step ${step} of ${total}`);
      } else if (data.status === "PROCESSING") {
        setStatus("Generating…");
      }
    }
    await finish(accepted.request_id, last);
  } catch (error) {
    setStatus("Not generated.");
    showError(error);
  } finally {
    current = null;
    busy(false);
    showBalance();
    loadHistory();
  }
}

async function finish(requestId, last) {
  const record = await call("GET", `/v2/requests/${requestId}`, { allow: [422] });
  if (record.status === "COMPLETED") {
    setProgress(100, "Done");
    setStatus("Completed.");
    showClip(record);
    const m = record.metrics;
    $("outcome").textContent =
      `Seed ${record.seed} · cost ${dollars(m.cost)} · ${Number(m.inference_time).toFixed(1)} s to generate · ` +
      `balance after ${dollars(m.remaining_credits)}`;
  } else if (record.status === "CANCELED") {
    setStatus("Canceled. You were not charged.");
  } else {
    setStatus(`${record.status}.`);
    showError(new ApiError(422, { error: record.error || last?.error, code: record.code || "failed" }));
  }
}

async function cancel() {
  if (!current) return;
  $("cancel").disabled = true;
  setStatus("Canceling…");
  try {
    await call("POST", `/v2/requests/${current.id}/cancel`);
  } catch (error) {
    showError(error);
  }
}

// --- history ---------------------------------------------------------------------------------------------

let cursor = null;

function historyItem(record) {
  const item = document.createElement("li");
  const input = record.input || {};
  if (record.output) {
    const thumb = document.createElement("video");
    // The fragment asks for the first frame's neighbourhood: enough for a still, without playing.
    thumb.src = `${record.output}#t=0.1`;
    thumb.preload = "metadata";
    thumb.muted = true;
    thumb.setAttribute("aria-label", `First frame of ${record.request_id}`);
    item.append(thumb);
  } else {
    const blank = document.createElement("div");
    blank.className = "blank";
    blank.textContent = record.status;
    item.append(blank);
  }
  const text = document.createElement("div");
  const title = document.createElement("p");
  title.className = "prompt";
  title.textContent = input.prompt || "(no prompt)";
  const facts = document.createElement("p");
  facts.className = "note";
  const when = new Date(record.created_at.endsWith("Z") ? record.created_at : `${record.created_at}Z`);
  facts.textContent = [
    record.status,
    `${input.duration} s ${input.resolution}`,
    dollars(record.metrics.cost),
    record.seed !== null && record.seed !== undefined ? `seed ${record.seed}` : null,
    when.toLocaleString(),
  ]
    .filter(Boolean)
    .join(" · ");
  text.append(title, facts);
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  if (record.output) {
    const play = document.createElement("button");
    play.type = "button";
    play.textContent = "Play";
    play.setAttribute("aria-label", `Play ${record.request_id}`);
    play.addEventListener("click", () => {
      showClip(record);
      $("result").play().catch(() => {});
    });
    buttons.append(play);
  }
  const reuse = document.createElement("button");
  reuse.type = "button";
  reuse.textContent = "Use settings";
  reuse.setAttribute("aria-label", `Use settings of ${record.request_id}`);
  reuse.addEventListener("click", () => fill(input, record.seed));
  buttons.append(reuse);
  text.append(buttons);
  item.append(text);
  return item;
}

function fill(input, seed) {
  $("prompt").value = input.prompt ?? "";
  if (input.duration) $("duration").value = String(input.duration);
  if (input.resolution) $("resolution").value = input.resolution;
  if (input.aspect_ratio) $("aspect-ratio").value = input.aspect_ratio;
  if (input.fps) $("fps").value = String(input.fps);
  if (input.generate_audio !== undefined) $("audio").checked = input.generate_audio;
  $("seed").value = seed ?? "";
  showPrice();
  $("prompt").focus();
}

async function loadHistory(more = false) {
  if (!apiKey()) return;
  if (!more) cursor = null;
  const query = new URLSearchParams({ limit: "10", ...(cursor ? { cursor } : {}) });
  try {
    const page = await call("GET", `/v2/requests?${query}`);
    const list = $("history");
    if (!more) list.replaceChildren();
    for (const record of page.requests) list.append(historyItem(record));
    cursor = page.next_cursor;
    $("history-more").hidden = !cursor;
    $("history-note").textContent = list.children.length
      ? "Your key's requests, newest first."
      : "No requests yet with this key.";
  } catch (error) {
    $("history-note").textContent = error instanceof ApiError ? error.describe().lines.join(" ") : String(error);
  }
}

// --- start -----------------------------------------------------------------------------------------------

// The form's choices are the server's own (vocabulary.js is made from its settings of the request).
function fillChoices() {
  const choices = {
    duration: VOCABULARY.durations.map((d) => ({ value: d, label: `${d} s` })),
    resolution: VOCABULARY.resolutions.map((r) => ({ value: r, label: r })),
    "aspect-ratio": VOCABULARY.aspect_ratios,
    fps: VOCABULARY.fps.map((f) => ({ value: f, label: String(f) })),
  };
  const defaults = VOCABULARY.defaults;
  const chosen = { duration: defaults.duration, resolution: defaults.resolution,
                   "aspect-ratio": defaults.aspect_ratio, fps: defaults.fps };
  for (const [id, options] of Object.entries(choices)) {
    const select = $(id);
    for (const { value, label } of options) {
      const option = new Option(label, String(value));
      option.selected = String(value) === String(chosen[id]);
      select.append(option);
    }
  }
}

async function start() {
  fillChoices();
  const stored = localStorage.getItem(KEY_STORE);
  if (stored) {
    $("api-key").value = stored;
    $("remember-key").checked = true;
  }
  $("form").addEventListener("submit", generate);
  $("cancel").addEventListener("click", cancel);
  $("form").addEventListener("input", showPrice);
  $("form").addEventListener("change", showPrice);
  $("api-key").addEventListener("change", () => {
    rememberKey();
    showBalance();
    loadHistory();
  });
  $("remember-key").addEventListener("change", rememberKey);
  $("image-file").addEventListener("change", (e) => readImage(e.target.files[0]));
  $("image-url").addEventListener("input", () => {
    const url = $("image-url").value.trim();
    image = null;
    $("image-file").value = "";
    // Only what the server could fetch is previewed; anything else is the server's to refuse, in words.
    const previewable = /^https?:\/\//i.test(url);
    $("image-preview").hidden = !previewable;
    if (previewable) $("image-thumb").src = url;
  });
  $("image-clear").addEventListener("click", clearImage);
  const drop = $("image-drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    readImage(e.dataTransfer.files[0]);
  });
  $("history-more").addEventListener("click", () => loadHistory(true));
  try {
    prices = await fetch("/v1/pricing").then((r) => r.json());
  } catch {
    prices = null;
  }
  showPrice();
  await Promise.all([showBalance(), loadHistory()]);
  document.body.dataset.ready = "true";
}

start();
