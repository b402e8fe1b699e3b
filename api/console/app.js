// @ts-check
// The ModelHub console: a catalog of the hub's models and a page per model with its
// documentation and a try-it panel. It talks to the hub only through the TypeScript SDK
// (served at /sdk/), the same client users import, and through the public job API. Everything
// it says about models (tasks, input fields, image formats) comes from the hub's catalog.
// No build step: the browser loads these modules as they are; `npm run typecheck` checks them (api/tsconfig.console.json).
import { byId } from './dom.js';
import { catalogPage } from './catalog-page.js';
import { modelPage } from './model-page.js';
import { PageLife } from './page.js';
import { Session } from './session.js';
import { errorBox } from './widgets.js';

const app = byId('app');
const session = new Session();
let life = new PageLife();

byId('key-forget').addEventListener('click', () => {
  session.forgetKey();
  route();
});

// ---- routing: / is the catalog, /models/{name} a model's page ----

/** @param {string} path */
function navigate(path) {
  history.pushState(null, '', path);
  route();
}

document.addEventListener('click', (e) => {
  const target = /** @type {Element | null} */ (e.target);
  const a = target?.closest?.('a[data-link]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') ?? '/');
});
window.addEventListener('popstate', () => route());

function route() {
  life.stop();
  life = new PageLife();
  const context = { app, session, life };
  const m = /^\/models\/([^/]+)\/?$/.exec(location.pathname);
  const page = m ? modelPage(context, decodeURIComponent(m[1])) : catalogPage(context);
  page.catch((err) => app.replaceChildren(errorBox(err)));
}

route();
