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

// The Greenfield authorization's last page (compat/greenfield/authorize_pages.py) hands the
// new key to the shop that asked at once; without a script its button does.
for (const form of document.querySelectorAll("form[data-auto-submit]")) {
  form.submit();
}

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
}

// ---- Orders (order_pages.py): the order page follows its order without a reload. ----------
// It asks /dashboard/orders/<id>/live every 2.5 s while the tab is visible (every 15 s once the
// order waits for no payment: a late or reversed one can still change it) and puts the status,
// the amounts, the confirmations and the exceptions in place; new payments show a notice (their
// table needs a reload). It stops when the session ends or the order is gone.
(() => {
  const live = document.getElementById("order-live");
  if (!live || !live.dataset.liveUrl || !window.fetch) {
    return;
  }
  const EVERY_MS = 2500;
  const SETTLED_EVERY_MS = 15000;
  const waiting = (status) => status === "pending" || status === "confirming";
  const setText = (id, text) => {
    const element = document.getElementById(id);
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  };
  const show = (view) => {
    const status = document.getElementById("order-status");
    if (status && status.dataset.status !== view.status) {
      status.dataset.status = view.status;
      status.className = `status status-${view.status}`;
    }
    setText("order-status", view.statusText);
    setText("order-exceptions", view.exceptionsText);
    setText("order-paid", view.paid);
    setText("order-pending", view.pending);
    setText("order-confirmations", view.confirmations);
    setText("order-completed", view.completed);
    const cancel = document.getElementById("cancel-form");
    if (cancel) {
      cancel.hidden = !view.cancellable;
    }
    const notice = document.getElementById("order-new-payments");
    if (notice && view.payments !== Number(live.dataset.payments)) {
      notice.hidden = false;
    }
  };
  const poll = async () => {
    let next = EVERY_MS;
    if (document.visibilityState === "visible") {
      try {
        const answer = await fetch(live.dataset.liveUrl, {
          credentials: "same-origin",
          cache: "no-store",
          headers: { Accept: "application/json" },
        });
        if (answer.status === 401 || answer.status === 404) {
          return; // signed out, or not this merchant's order: nothing more to follow
        }
        if (answer.ok) {
          const view = await answer.json();
          show(view);
          next = waiting(view.status) ? EVERY_MS : SETTLED_EVERY_MS;
        }
      } catch (error) {
        // A network blip: try again at the next tick.
      }
    }
    window.setTimeout(poll, next);
  };
  window.setTimeout(poll, EVERY_MS);
})();
