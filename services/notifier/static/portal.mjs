// Starts the GOV.UK Design System's components (the mobile menu, the error summary's focus,
// the skip link) and makes a "Print this report" button open the print dialogue (without
// this script it asks for the page laid out for paper). Served from the portal's own origin
// under the page's CSP nonce; every page works without it.
import { initAll } from "/portal/static/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();

for (const button of document.querySelectorAll("[data-module='app-print']")) {
  button.addEventListener("click", (event) => { event.preventDefault(); window.print(); });
}
