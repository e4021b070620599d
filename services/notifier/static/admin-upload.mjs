// The roll upload's progress bar: an enhancement of the plain multipart form, which works
// without it. The file goes up by XMLHttpRequest so that its upload progress can drive the
// <progress> element; the answer (the school's page, or its error summary naming each bad
// row) then replaces the page's main content, and focus goes to the summary or the heading.
for (const form of document.querySelectorAll("form[data-upload-progress]")) {
  const bar = document.getElementById(form.dataset.uploadProgress);
  const group = bar && document.getElementById(`${bar.id}-group`);
  form.addEventListener("submit", (event) => {
    if (!bar || !window.XMLHttpRequest || !window.DOMParser) return;
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    group.hidden = false;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        bar.textContent = `${bar.value}%`;
      }
    });
    xhr.addEventListener("load", () => {
      bar.value = 100;
      const answer = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const main = answer.querySelector("main");
      if (!main) { window.location.assign(xhr.responseURL || form.action); return; }
      document.querySelector("main").replaceWith(main);
      document.title = answer.title;
      if (xhr.responseURL) window.history.replaceState(null, "", xhr.responseURL);
      const target = main.querySelector(".govuk-error-summary") || main.querySelector("h1");
      if (target) { target.setAttribute("tabindex", "-1"); target.focus(); }
    });
    xhr.addEventListener("error", () => form.submit());
    xhr.send(new FormData(form));
  });
}
