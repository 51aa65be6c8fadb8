/** Entry point of the browser UI (bundled by scripts/build-ui.mjs). */
import { render } from "preact";
import { applyRoute } from "./chat.js";
import { App } from "./components/App.js";
import { drawerOpen } from "./state.js";
import "./styles.css";

window.addEventListener("hashchange", () => {
  drawerOpen.value = false;
  applyRoute();
});

render(<App />, document.getElementById("app")!);

// The service worker keeps the app itself available offline (messages come from the outbox/cache).
if ("serviceWorker" in navigator && location.protocol !== "file:") {
  navigator.serviceWorker.register("/sw.js").catch(() => undefined);
}
