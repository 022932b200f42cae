// Drive Phoenix LiveView's own EntryUploader (entry_uploader.js, unchanged,
// imported from node_modules) in plain Node over phoenix's own Socket and
// Channel, against our server: the error paths of the lvu: protocol.
//   echo '{"case": "invalid_token"}' | node tests/e2e/js/entry_uploader.mjs http://127.0.0.1:4000/
//
// The script fetches the page, joins its lv: topic with the page's signed
// session, tracks one file with the form's change event, preflights it with
// allow_upload, and hands the entry to EntryUploader (which joins lvu:<ref>
// with the token and pushes chunks, stop-and-wait). Spec (stdin JSON):
//   {"case": "ok" | "invalid_token" | "file_size_limit_exceeded" | "writer_error",
//    "size": bytes declared and sent (default 5000),
//    "extra": bytes sent beyond the declared size (file_size_limit_exceeded)}
// or {"cases": [spec, ...]} to run several, each on its own page and socket
// (output {"ok": true, "results": {case: output}}). The file is named
// "<case>.bin", so a server-side writer factory can fail one case only.
// Output: {"ok": true, "preflight": {...}, "errors": [reason, ...] (entry.error calls),
//          "progress": [n, ...] (entry.progress calls), "progressPushes": [lv: progress payloads],
//          "cancelSubmit": n, "uploadChannelState": "closed" | "joined" | ...,
//          "lvuEvents": [events the server pushed on lvu:], "frames": [...]}.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Socket } from "phoenix";
import WebSocket from "ws";
import { runHarness } from "./liveview_client.mjs";

// The package's exports map hides its sources; find them next to its main file.
const lvMain = createRequire(import.meta.url).resolve("phoenix_live_view");
const lvRoot = path.resolve(path.dirname(lvMain), "..", "..");
const { default: EntryUploader } = await import(
  pathToFileURL(path.join(lvRoot, "assets/js/phoenix_live_view/entry_uploader.js")).href
);

// EntryUploader reads files with window.FileReader; Node has Blob but no FileReader.
class FileReader {
  readAsArrayBuffer(blob) {
    blob.arrayBuffer().then(
      (result) => this.onload({ target: { result, error: null } }),
      (error) => this.onload({ target: { result: null, error } }),
    );
  }
}
globalThis.window = globalThis.window || {};
globalThis.window.FileReader = FileReader;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text ? JSON.parse(text) : {};
}

function attr(html, re) {
  const m = html.match(re);
  if (!m) throw new Error(`page has no ${re}`);
  return m[1].replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&amp;/g, "&");
}

function push(channel, event, payload) {
  return new Promise((resolve, reject) => {
    channel
      .push(event, payload)
      .receive("ok", resolve)
      .receive("error", (e) => reject(new Error(`${event} error: ${JSON.stringify(e)}`)))
      .receive("timeout", () => reject(new Error(`${event} timed out`)));
  });
}

function forge(token) {
  // Keep the session id (so it routes to the right session), break the signature.
  // Change the second-to-last character: every one of its bits is signature,
  // while the last base64 character of a 20-byte HMAC carries 2 unused bits.
  const c = token.slice(-2, -1);
  return token.slice(0, -2) + (c === "A" ? "B" : "A") + token.slice(-1);
}

async function runCase(url, spec) {
  const kind = spec.case || "ok";
  const size = spec.size ?? 5000;
  const extra = kind === "file_size_limit_exceeded" ? spec.extra ?? 1000 : 0;
  const html = await (await fetch(url)).text();
  const viewId = attr(html, /<div id="([^"]+)" data-phx-main/);
  const session = attr(html, /data-phx-session="([^"]+)"/);
  const staticToken = attr(html, /data-phx-static="([^"]+)"/);
  const csrf = attr(html, /<meta name="csrf-token" content="([^"]+)"/);

  const frames = [];
  const waiters = new Set(); // frames awaited by untilFrame
  // Resolves once a received frame matches `pred` (at once if one did), else fails after `ms`.
  const untilFrame = (pred, ms, what) =>
    frames.some(pred)
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const waiter = { pred, resolve: () => { clearTimeout(waiter.timer); resolve(); } };
          waiter.timer = setTimeout(() => {
            if (waiters.delete(waiter)) reject(new Error(`no frame within ${ms} ms: ${what}`));
          }, ms);
          waiters.add(waiter);
        });
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.on("message", (data, isBinary) => {
        const frame = isBinary ? { dir: "in", binary: data.length } : { dir: "in", msg: JSON.parse(data.toString()) };
        frames.push(frame);
        for (const waiter of [...waiters]) {
          if (waiter.pred(frame)) {
            waiters.delete(waiter);
            waiter.resolve();
          }
        }
      });
    }
    send(data, ...rest) {
      frames.push(typeof data === "string" ? { dir: "out", msg: JSON.parse(data) } : { dir: "out", binary: data.byteLength });
      return super.send(data, ...rest);
    }
  }
  const base = new URL(url);
  const socket = new Socket(`ws://${base.host}/live`, {
    transport: TrackedWebSocket,
    params: { _csrf_token: csrf },
  });
  socket.connect();
  const result = { case: kind };
  let errorsAtOutcome = [];
  try {
    const lv = socket.channel(`lv:${viewId}`, () => ({
      url,
      params: { _csrf_token: csrf, _mounts: 0, _mount_attempts: 0 },
      session,
      static: staticToken,
      sticky: false,
    }));
    const joined = await new Promise((resolve, reject) => {
      lv.join()
        .receive("ok", resolve)
        .receive("error", (e) => reject(new Error(`lv join refused: ${JSON.stringify(e)}`)));
    });
    const rendered = joined.rendered;
    const htmlNow = rendered.s.map((s, i) => s + (rendered[i] ?? "")).join("");
    const configRef = attr(htmlNow, /data-phx-upload-ref="([^"]+)"/);
    const inputName = attr(htmlNow, /type="file" name="([^"]+)"/);

    const ref = "0";
    const entry = { ref, name: `${kind}.bin`, size, type: "application/octet-stream", last_modified: 1795417331733, relative_path: "" };
    await push(lv, "event", {
      type: "form", event: "validate", value: "", meta: { _target: inputName },
      uploads: { [configRef]: [{ path: inputName, ...entry }] },
    });
    const preflight = await push(lv, "allow_upload", { ref: configRef, entries: [entry] });
    result.preflight = { config: preflight.config, refs: Object.keys(preflight.entries || {}), error: preflight.error || null };
    let token = preflight.entries[ref];
    if (kind === "invalid_token") token = forge(token);

    const bytes = new Uint8Array(size + extra);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    result.errors = [];
    result.progress = [];
    result.progressPushes = [];
    result.cancelSubmit = 0;
    result.lvuEvents = [];
    const finished = new Promise((resolve) => {
      const fakeEntry = {
        ref,
        file: new Blob([bytes]),
        fileEl: { form: null },
        view: { cancelSubmit: () => { result.cancelSubmit++; } },
        metadata: () => token,
        // What UploadEntry does with these: report progress / errors on the lv: topic.
        progress: (n) => {
          const pct = Math.floor(n);
          result.progress.push(pct);
          const payload = { event: null, ref: configRef, entry_ref: ref, progress: Math.min(pct, 100) };
          result.progressPushes.push(payload);
          push(lv, "progress", payload).then(() => { if (pct >= 100) resolve("done"); }, resolve);
        },
        error: (reason) => {
          result.errors.push(reason);
          const payload = { event: null, ref: configRef, entry_ref: ref, progress: { error: reason } };
          result.progressPushes.push(payload);
          push(lv, "progress", payload).then(() => resolve("error"), () => resolve("error"));
        },
      };
      const liveSocket = {
        channel: (topic, params) => {
          const ch = socket.channel(topic, params);
          for (const ev of ["phx_close", "phx_error"]) ch.on(ev, () => result.lvuEvents.push(ev));
          // EntryUploader reports nothing for writer_error (the server
          // recorded it): that case ends when the channel it left is closed.
          // (leave() closes it at once, just before `errored` is set.)
          ch.onClose(() => queueMicrotask(() => {
            if (kind === "writer_error" && result.errorsSeen()) resolve("writer_error");
          }));
          return ch;
        },
        getLatencySim: () => null,
      };
      const uploader = new EntryUploader(fakeEntry, preflight.config, liveSocket);
      result.errorsSeen = () => uploader.errored;
      result.uploader = uploader;
      uploader.upload();
    });
    result.outcome = await finished;
    errorsAtOutcome = [...result.errors]; // not what the disconnect below makes it report
    if (kind === "writer_error") {
      // The upload's topic closes as its channel ends; the session records the
      // failure on the page on its own time: wait for the diff that shows it.
      await untilFrame((f) => f.dir === "in" && JSON.stringify(f.msg ?? null).includes("writer_failure"), 10000,
        "the page showing the writer's failure");
    }
    const uploader = result.uploader;
    delete result.uploader;
    delete result.errorsSeen;
    result.errored = uploader.errored;
    result.offset = uploader.offset;
    result.uploadChannelState = uploader.uploadChannel.state;
    // The page after all of it, as the server renders it now.
    const reply = await push(lv, "event", { type: "form", event: "validate", value: "", meta: { _target: inputName } });
    result.finalDiff = reply.diff || {};
  } finally {
    socket.disconnect();
  }
  result.errors = errorsAtOutcome;
  result.frames = frames.slice(-60);
  return result;
}

runHarness(async (url, _args) => {
  const spec = await readStdin();
  if (!spec.cases) return runCase(url, spec);
  // Several cases, one after the other, each on its own page and socket.
  const results = {};
  for (const one of spec.cases) results[one.case] = await runCase(url, one);
  return { results };
});
