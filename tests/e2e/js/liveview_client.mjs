// Drives Phoenix's own LiveView client (the shipped phoenix.min.js and
// phoenix_live_view.min.js, loaded from OUR server) inside jsdom, with the
// `ws` package as the page's WebSocket. Shared by the harness scripts here.
//
// Every script prints exactly one JSON object on stdout and exits 0 when it
// ran to the end (the Python test asserts on the JSON), non-zero on a harness
// failure (timeout, script error), with the reason in the JSON's "error".

import { JSDOM, VirtualConsole } from "jsdom";
import WebSocket from "ws";

/** Load the page at `url` and let its scripts connect the LiveSocket. */
export async function openPage(url) {
  const log = { console: [], errors: [] };
  const virtualConsole = new VirtualConsole();
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    virtualConsole.on(level, (...args) =>
      log.console.push({ level, text: args.map(String).join(" ") }),
    );
  }
  virtualConsole.on("jsdomError", (err) =>
    log.errors.push(String((err && (err.stack || err.message)) || err)),
  );
  const sockets = [];
  const frames = []; // the last MAX_FRAMES frames, both directions, for checks and debugging
  const frameListeners = new Set();
  const record = (dir, data) => {
    let entry;
    if (typeof data === "string") {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        msg = data;
      }
      entry = { dir, msg };
    } else {
      entry = { dir, binary: data.byteLength ?? data.length };
    }
    frames.push(entry);
    if (frames.length > MAX_FRAMES) frames.shift();
    for (const listener of frameListeners) listener(entry);
  };
  // Record every socket the page opens (to close them all) and its frames.
  class TrackedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
      this.on("message", (data, isBinary) => record("in", isBinary ? data : data.toString()));
    }
    send(data, ...rest) {
      record("out", data);
      return super.send(data, ...rest);
    }
  }
  const dom = await JSDOM.fromURL(url, {
    runScripts: "dangerously",
    resources: "usable",
    pretendToBeVisual: true, // requestAnimationFrame, used by LiveView
    virtualConsole,
    beforeParse(window) {
      Object.defineProperty(window, "WebSocket", {
        value: TrackedWebSocket,
        configurable: true,
        writable: true,
      });
    },
  });
  await new Promise((resolve) => {
    if (dom.window.document.readyState === "complete") resolve();
    else dom.window.addEventListener("load", resolve, { once: true });
  });
  return {
    dom,
    window: dom.window,
    document: dom.window.document,
    log,
    sockets,
    frames,
    frameListeners,
  };
}

const MAX_FRAMES = 500;

/** The error reply to the page's lv: join, if the server refused it. */
export function joinError(page) {
  const joins = new Map(); // ref -> topic of lv: joins sent
  for (const f of page.frames) {
    const m = f.msg;
    if (!Array.isArray(m)) continue;
    if (f.dir === "out" && m[3] === "phx_join" && String(m[2]).startsWith("lv:")) joins.set(m[1], m[2]);
    if (f.dir === "in" && m[3] === "phx_reply" && joins.has(m[1]) && m[4]?.status === "error") {
      return m[4].response;
    }
  }
  return null;
}

/** Resolve when `predicate()` is truthy, checked on every DOM mutation and
 *  every socket frame. */
export function waitFor(page, predicate, { timeoutMs = 10000, what = "condition" } = {}) {
  const { window, document } = page;
  return new Promise((resolve, reject) => {
    let observer = null;
    let timer = null;
    let done = false;
    const onFrame = () => check();
    const finish = (fn, value) => {
      done = true;
      if (observer) observer.disconnect();
      if (timer) clearTimeout(timer);
      page.frameListeners.delete(onFrame);
      fn(value);
    };
    const check = () => {
      if (done) return true;
      let value;
      try {
        value = predicate();
      } catch (err) {
        finish(reject, err);
        return true;
      }
      if (value) {
        finish(resolve, value);
        return true;
      }
      return false;
    };
    if (check()) return;
    page.frameListeners.add(onFrame);
    observer = new window.MutationObserver(() => check());
    observer.observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      characterData: true,
    });
    timer = setTimeout(
      () => finish(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
}

/** The LiveView root element (the one with data-phx-main). */
export function root(page) {
  return page.document.querySelector("[data-phx-main]");
}

export function isConnected(page) {
  const el = root(page);
  return !!el && el.classList.contains("phx-connected");
}

/** Select files on a live file input the way LiveView's own tests do:
 *  jsdom cannot set input.files, so dispatch LiveView's `track-uploads`.
 *  `files`: [{name, type, content (string | Uint8Array), lastModified}] */
export function selectFiles(page, input, files) {
  const { window } = page;
  const objs = files.map(
    (f) =>
      new window.File([f.content], f.name, {
        type: f.type || "application/octet-stream",
        lastModified: f.lastModified || 1795417331733,
      }),
  );
  input.dispatchEvent(
    new window.CustomEvent("track-uploads", { bubbles: true, detail: { files: objs } }),
  );
  return objs;
}

/** Submit a form through LiveView (phx-submit), as a user would. */
export function submit(page, form) {
  form.requestSubmit();
}

/** Disconnect the LiveSocket, close every socket and the window. */
export async function closePage(page) {
  try {
    if (page.window.liveSocket) page.window.liveSocket.disconnect();
  } catch (err) {
    page.log.errors.push(`disconnect: ${err}`);
  }
  for (const ws of page.sockets) {
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      await new Promise((resolve) => {
        ws.once("close", resolve);
        try {
          ws.close(1000);
        } catch {
          resolve();
        }
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    }
  }
  page.window.close();
}

/** Print the result as one JSON line and exit (after stdout is flushed). */
export function emit(result, code = 0) {
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

/** Run `main(url, args)` with a hard deadline; a failure is still one JSON line. */
export function runHarness(main) {
  const [url, ...args] = process.argv.slice(2);
  if (!url) {
    emit({ ok: false, error: "usage: node <script>.mjs <base url> [args...]" }, 2);
    return;
  }
  const deadlineMs = Number(process.env.HARNESS_TIMEOUT_MS || 20000);
  const deadline = setTimeout(
    () => emit({ ok: false, error: `harness deadline ${deadlineMs} ms passed` }, 3),
    deadlineMs,
  );
  deadline.unref();
  main(url, args).then(
    (result) => emit({ ok: true, ...result }, 0),
    (err) => emit({ ok: false, error: String((err && err.stack) || err) }, 1),
  );
}
