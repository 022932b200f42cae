// Drive the page through a list of steps read as JSON from stdin, with
// Phoenix's own LiveView client in jsdom.
//   echo '{"steps": [...]}' | node tests/e2e/js/steps.mjs http://127.0.0.1:4000/
//
// Steps, run in order (selectors are CSS, scoped to the LiveView root):
//   {"select": [{"name", "type"?, "base64" | "text", "lastModified"?}], "input"?: sel}
//       select files on a live file input (LiveView's track-uploads event)
//   {"submit": sel?}           requestSubmit() the form (default form[phx-submit])
//   {"click": sel}             click an element (e.g. an entry's cancel button)
//   {"waitFor": sel, "count"?: n, "text"?: s, "timeoutMs"?: ms}
//       wait until at least `count` (default 1) elements match `sel`
//       (and, with `text`, one of them contains `text`)
//   {"waitGone": sel, "timeoutMs"?: ms}   wait until nothing matches `sel`
//   {"waitFrame": {"topic": t, "event": e}, "timeoutMs"?: ms}
//       wait until the server has pushed event `e` on topic `t`
//   {"snapshot": label}        record the page state under `label`
// Output: {"ok": true, "connected": true, "snapshots": {label: state, ...},
//          "final": state, "console": [...], "errors": [...], "frames": [...]}
// ("frames": the socket's last 500 frames, {dir: "in"|"out", msg} for text
// and {dir, binary: byteLength} for binary.)
// where state = {"html", "inputs": [{attrs}], "entries": [{id, state, text,
//   errors}], "saved": [text], "notice": text}.
import {
  closePage,
  isConnected,
  openPage,
  root,
  runHarness,
  selectFiles,
  submit,
  waitFor,
} from "./liveview_client.mjs";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text ? JSON.parse(text) : { steps: [] };
}

function fileContent(spec) {
  if (spec.base64 !== undefined) return new Uint8Array(Buffer.from(spec.base64, "base64"));
  return spec.text ?? "";
}

function attrs(el) {
  return Object.fromEntries(Array.from(el.attributes).map((a) => [a.name, a.value]));
}

function snapshot(page) {
  const el = root(page);
  return {
    html: el.innerHTML,
    rootClasses: Array.from(el.classList),
    inputs: Array.from(el.querySelectorAll('input[type="file"]')).map(attrs),
    entries: Array.from(el.querySelectorAll("li.entry")).map((li) => ({
      id: li.id,
      ref: li.getAttribute("data-ref"),
      state: li.getAttribute("data-state"),
      text: li.textContent,
      errors: Array.from(li.querySelectorAll(".error")).map((e) => e.textContent),
    })),
    uploadErrors: Array.from(el.querySelectorAll(".upload-errors li")).map((e) => e.textContent),
    saved: Array.from(el.querySelectorAll("#saved li")).map((li) => li.textContent),
    notice: el.querySelector("#notice")?.textContent ?? null,
  };
}

function one(page, selector) {
  const el = root(page).querySelector(selector);
  if (!el) throw new Error(`no element matches ${selector}`);
  return el;
}

runHarness(async (url) => {
  const spec = await readStdin();
  const page = await openPage(url);
  const result = { snapshots: {} };
  try {
    await waitFor(page, () => isConnected(page), { what: "phx-connected on the root" });
    result.connected = true;
    for (const [i, step] of (spec.steps || []).entries()) {
      if (step.select) {
        const input = one(page, step.input || 'input[type="file"][data-phx-upload-ref]');
        selectFiles(
          page,
          input,
          step.select.map((f) => ({ ...f, content: fileContent(f) })),
        );
      } else if ("submit" in step) {
        submit(page, one(page, step.submit || "form[phx-submit]"));
      } else if (step.click) {
        one(page, step.click).click();
      } else if (step.waitFor) {
        const count = step.count ?? 1;
        await waitFor(
          page,
          () => {
            const els = Array.from(root(page).querySelectorAll(step.waitFor));
            if (els.length < count) return false;
            return step.text === undefined || els.some((e) => e.textContent.includes(step.text));
          },
          { timeoutMs: step.timeoutMs ?? 10000, what: `step ${i}: ${count} x ${step.waitFor}` },
        );
      } else if (step.waitGone) {
        await waitFor(page, () => !root(page).querySelector(step.waitGone), {
          timeoutMs: step.timeoutMs ?? 10000,
          what: `step ${i}: no ${step.waitGone}`,
        });
      } else if (step.waitFrame) {
        const { topic, event } = step.waitFrame;
        await waitFor(
          page,
          () => page.frames.some((f) => f.dir === "in" && Array.isArray(f.msg) && f.msg[2] === topic && f.msg[3] === event),
          { timeoutMs: step.timeoutMs ?? 10000, what: `step ${i}: ${event} on ${topic}` },
        );
      } else if (step.snapshot) {
        result.snapshots[step.snapshot] = snapshot(page);
      } else {
        throw new Error(`step ${i}: unknown step ${JSON.stringify(step)}`);
      }
    }
    result.final = snapshot(page);
  } catch (err) {
    // Keep what the page showed when it failed: that is the useful part.
    throw new Error(
      `${(err && err.stack) || err}\npage: ${JSON.stringify(snapshot(page))}` +
        `\nlog: ${JSON.stringify(page.log)}\nframes: ${JSON.stringify(page.frames.slice(-40))}`,
    );
  } finally {
    await closePage(page);
  }
  result.console = page.log.console;
  result.errors = page.log.errors;
  result.frames = page.frames;
  return result;
});
