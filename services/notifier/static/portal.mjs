// Starts the GOV.UK Design System's components (the mobile menu, the error summary's focus,
// the skip link). Served from the portal's own origin under the page's CSP nonce; every page
// works without it.
import { initAll } from "/portal/static/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
