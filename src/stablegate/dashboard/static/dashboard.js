// stablegate merchant dashboard: the little that needs a script. Everything works without it;
// this adds copy buttons for a new key and a confirmation before revoking one.
"use strict";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) {
    continue;
  }
  const text = button.textContent;
  const name = button.getAttribute("aria-label");
  // The feedback replaces the text and the accessible name together, so they always agree.
  const show = (message, accessibleName) => {
    button.textContent = message;
    button.setAttribute("aria-label", accessibleName);
  };
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      show(button.dataset.copied, button.dataset.copied);
    } catch (error) {
      show(button.dataset.copyFailed, button.dataset.copyFailed);
      selectText(source);
    }
    window.setTimeout(() => show(text, name), 2000);
  });
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
}
