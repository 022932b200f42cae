// Mount the page with Phoenix's own LiveSocket and wait for the lv: join.
//   node tests/e2e/js/mount.mjs http://127.0.0.1:4000/
// Prints {"ok": true, "connected": true|false, "rootId", "rootClasses", "html",
//         "input": {...attributes of the first file input}, "console": [...],
//         "errors": [...], "joinError": null | the refused join's response,
//         "frames": [...]}.
import {
  closePage,
  isConnected,
  joinError,
  openPage,
  root,
  runHarness,
  waitFor,
} from "./liveview_client.mjs";

runHarness(async (url) => {
  const page = await openPage(url);
  const result = { globals: {} };
  try {
    result.globals = {
      Phoenix: typeof page.window.Phoenix,
      LiveView: typeof page.window.LiveView,
      liveSocket: typeof page.window.liveSocket,
    };
    // Connected, or the server refused the lv: join.
    await waitFor(page, () => isConnected(page) || joinError(page), {
      what: "phx-connected on the root (or a refused lv: join)",
    });
    const el = root(page);
    const input = el.querySelector('input[type="file"]');
    result.connected = isConnected(page);
    result.joinError = joinError(page);
    result.rootId = el.id;
    result.rootClasses = Array.from(el.classList);
    result.html = el.innerHTML;
    result.input = input && Object.fromEntries(
      Array.from(input.attributes).map((a) => [a.name, a.value]),
    );
  } finally {
    await closePage(page);
  }
  result.console = page.log.console;
  result.errors = page.log.errors;
  result.frames = page.frames;
  return result;
});
