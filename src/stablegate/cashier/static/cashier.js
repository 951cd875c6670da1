// stablegate cashier: live status (server-sent events, polling fallback), countdown, copy
// buttons and the QR mode switch. The page works without this file; it only adds to it.
(function () {
  "use strict";

  var root = document.getElementById("cashier");
  if (!root) return;
  var orderId = root.getAttribute("data-order-id");
  var lang = root.getAttribute("data-lang") || "en";
  var messages = JSON.parse(root.getAttribute("data-messages") || "{}");
  var view = JSON.parse(root.getAttribute("data-view") || "{}");
  var chain = JSON.parse(root.getAttribute("data-chain") || "{}");
  var apiBase = "/api/v1/public/orders/" + encodeURIComponent(orderId);
  var TERMINAL = { completed: true, expired: true, cancelled: true };
  var clockOffset = 0; // server time minus this browser's time, in ms

  function $(id) { return document.getElementById(id); }

  function msg(key, fields) {
    var text = messages[key] || key;
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return fields && name in fields ? String(fields[name]) : all;
    });
  }

  // Amounts are decimal strings; add them as integers of base units, never as floats.
  function toUnits(amount, decimals) {
    var parts = String(amount || "0").split(".");
    var fraction = (parts[1] || "") + "0".repeat(decimals);
    return BigInt(parts[0] || "0") * (BigInt(10) ** BigInt(decimals)) +
      BigInt(fraction.slice(0, decimals) || "0");
  }

  function formatUnits(units, decimals) {
    var base = BigInt(10) ** BigInt(decimals);
    var fraction = (units % base).toString().padStart(decimals, "0").replace(/0+$/, "");
    return (units / base).toString() + (fraction ? "." + fraction : "");
  }

  function show(element, visible) {
    if (element) element.hidden = !visible;
  }

  // The case the page explains; mirrors checkout_state() in cashier/checkout.py.
  function checkoutState(v, received, amount) {
    var exceptions = v.exceptions || [];
    if (v.status === "completed") {
      return received > amount || exceptions.indexOf("overpaid") >= 0 ? "paid_over" : "paid";
    }
    if (v.status === "expired" || v.status === "cancelled") {
      if (exceptions.indexOf("paid_late") >= 0 || (amount > BigInt(0) && received >= amount)) {
        return "late";
      }
      return received > BigInt(0) ? "expired_partial" : v.status;
    }
    if (v.status === "pending" && received > BigInt(0)) return "partial";
    return v.status;
  }

  function text(id, value) {
    var element = $(id);
    if (element) element.textContent = value;
    return element;
  }

  function renderWrongTokens() {
    var list = $("wrong-token-lines");
    if (!list || !Array.isArray(view.payments)) return;
    var lines = [];
    view.payments.forEach(function (p) {
      if (p.kind !== "wrong_token" && p.kind !== "unsupported_token") return;
      lines.push(p.symbol
        ? msg("wrong_token_line", { amount: p.amount, symbol: p.symbol, expected: view.symbol })
        : msg("wrong_token_unknown", {
          amount: p.amount, token: p.tokenAddress, expected: view.symbol
        }));
    });
    list.textContent = "";
    lines.forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    });
    show($("wrong-token"), lines.length > 0);
  }

  var choosing = root.hasAttribute("data-choosing");
  function render(next) {
    // The payment method was chosen (here or in another tab): the server draws the pay page.
    if (choosing && !next.paymentMethods) {
      window.location.reload();
      return;
    }
    // Fields the live view does not carry keep their last value (see checkout.py).
    ["merchant", "payments", "exceptions", "txId", "explorerTxUrl", "completeTime"].forEach(
      function (key) { if (!(key in next) && key in view) next[key] = view[key]; }
    );
    view = next;
    if (typeof view.serverTime === "number") clockOffset = view.serverTime - Date.now();
    var decimals = Number(view.decimals) || 0;
    var amount = toUnits(view.amount, decimals);
    var received = toUnits(view.paidAmount, decimals) + toUnits(view.pendingAmount, decimals);
    var dueUnits = amount > received ? amount - received : BigInt(0);
    var carriesDue = typeof view.dueAmount === "string";
    var due = carriesDue ? view.dueAmount : formatUnits(dueUnits, decimals);
    view.dueAmount = due;
    var state = checkoutState(view, received, amount);
    var paying = state === "pending" || state === "partial";
    root.setAttribute("data-status", view.status);
    root.setAttribute("data-state", state);
    var statusKey = choosing && view.status === "pending" ? "choosing" : view.status;
    $("status-text").textContent = messages["status_" + statusKey] || view.status;
    if (!choosing) {
      text("heading", state === "paid" || state === "paid_over"
        ? msg("heading_paid") : msg("heading", { symbol: view.symbol }));
    }

    var receivedLine = $("received");
    if (received > BigInt(0)) {
      receivedLine.textContent = msg("received", {
        paid: formatUnits(received, decimals), amount: view.amount, symbol: view.symbol
      });
    }
    show(receivedLine, received > BigInt(0));

    var over = received > amount ? received - amount : BigInt(0);
    var stateFields = {
      amount: view.amount, symbol: view.symbol, received: formatUnits(received, decimals),
      over: formatUnits(over, decimals)
    };
    var stateLine = "";
    if (state === "paid_over" || state === "late" || state === "expired_partial") {
      stateLine = msg("state_" + state, stateFields);
    } else if ((state === "expired" || state === "cancelled") && !choosing) {
      stateLine = msg("do_not_pay");
    }
    show(text("state-text", stateLine), stateLine !== "");
    renderWrongTokens();
    var wrong = $("wrong-token");
    show($("support"), state === "paid_over" || state === "late" ||
      state === "expired_partial" || (wrong && !wrong.hidden));

    if (paying) {
      var network = chain.name || view.network;
      text("instruction", state === "partial"
        ? msg("send_remaining", { due: due, symbol: view.symbol, network: network })
        : msg("send_exactly", { amount: due, symbol: view.symbol, network: network }));
      text("amount", due);
      var copyAmount = $("copy-amount");
      if (copyAmount) copyAmount.setAttribute("data-copy", due);
      show($("of-amount"), state === "partial");
      updatePaymentQr(view);
    } else {
      text("amount", view.amount);
    }
    var eip681 = $("eip681-link");
    if (eip681 && typeof view.paymentUri === "string" && carriesDue) {
      eip681.setAttribute("href", view.paymentUri);
    }

    var confirmations = $("confirmations");
    if (view.status === "confirming") {
      var count = Number(view.confirmations) || 0;
      var required = Number(view.requiredConfirmations) || 0;
      confirmations.textContent = count < required
        ? msg("confirmations_of", { count: count, required: required })
        : msg("confirmations", { count: count });
    }
    show(confirmations, view.status === "confirming");

    var paid = $("paid");
    if (view.status === "completed" && view.txId) {
      text("tx-hash", view.txId);
      var link = $("tx-link");
      var explorer = typeof view.explorerTxUrl === "string" &&
        /^https:\/\/[^\s]/i.test(view.explorerTxUrl);
      if (explorer) link.setAttribute("href", view.explorerTxUrl);
      show(link, explorer);
      if (typeof view.completeTime === "number") localTime($("paid-time"), view.completeTime);
    }
    show(paid, view.status === "completed" && Boolean(view.txId));

    var redirect = $("redirect");
    var url = view.status === "completed" ? view.redirectUrl : null;
    var safe = typeof url === "string" && /^https?:\/\/[^\s]/i.test(url);
    if (safe) redirect.setAttribute("href", url);
    // After a late or partial payment the page keeps the server's link back to the merchant.
    var keep = (state === "late" || state === "expired_partial") &&
      /^https?:\/\//i.test(redirect.getAttribute("href") || "");
    show($("redirect-wrap"), safe || keep);
    tick();
  }

  // The EIP-681 code must ask for the amount due: a view drawn for another due amount is stale.
  var shownDue = null;
  function updatePaymentQr(v) {
    var due = v.dueAmount;
    if (shownDue === null) { shownDue = due; return; }
    if (due === shownDue) return;
    shownDue = due;
    if (typeof v.paymentQrDataUrl !== "string" || v.paymentQrDataUrl.indexOf("data:image/") !== 0) {
      window.location.reload(); // the server draws the code for the new amount
      return;
    }
    var link = document.querySelector('a.qr-mode[data-mode="eip681"]');
    if (link) link.setAttribute("data-src", v.paymentQrDataUrl);
    var image = $("qr");
    if (image && link && link.getAttribute("aria-current") === "true") {
      image.setAttribute("src", v.paymentQrDataUrl);
    }
  }

  // -- live status -------------------------------------------------------------------------
  // Polling stands in when the stream is refused (429 when too many streams are open; the
  // browser's EventSource then closes for good) or keeps failing. It is gentle: every 5 s plus
  // up to 1 s of jitter so pages do not poll in step, doubling up to a minute after errors,
  // never sooner than a 429's Retry-After, and at most every 30 s while the page is hidden.
  var POLL_MS = 5000;
  var HIDDEN_POLL_MS = 30000;
  var MAX_POLL_MS = 60000;
  var polling = false;
  var pollTimer = null;
  var pollDelay = POLL_MS;

  function poll() {
    pollTimer = null;
    fetch(apiBase, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          var retryAfter = Number(response.headers.get("Retry-After")) * 1000 || 0;
          pollDelay = Math.max(Math.min(pollDelay * 2, MAX_POLL_MS), retryAfter);
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (next) {
        pollDelay = POLL_MS;
        render(next);
        schedulePoll();
      })
      .catch(function (error) {
        if (!/^HTTP /.test(error.message)) pollDelay = Math.min(pollDelay * 2, MAX_POLL_MS);
        schedulePoll();
      });
  }

  function schedulePoll() {
    polling = true;
    if (pollTimer !== null || TERMINAL[view.status]) return;
    var delay = document.hidden ? Math.max(pollDelay, HIDDEN_POLL_MS) : pollDelay;
    pollTimer = window.setTimeout(poll, delay + Math.random() * 1000);
  }

  document.addEventListener("visibilitychange", function () {
    // Back on screen: the next poll comes at the visible pace, not the hidden one.
    if (!polling || document.hidden || pollTimer === null) return;
    window.clearTimeout(pollTimer);
    pollTimer = null;
    schedulePoll();
  });

  function listen() {
    if (TERMINAL[view.status]) return;
    if (typeof window.EventSource !== "function") {
      schedulePoll();
      return;
    }
    var source = new EventSource(apiBase + "/events");
    var failures = 0;
    source.addEventListener("open", function () { failures = 0; });
    source.addEventListener("order", function (event) {
      failures = 0;
      var next = JSON.parse(event.data);
      render(next);
      if (TERMINAL[next.status]) source.close();
    });
    source.addEventListener("error", function () {
      failures += 1;
      // The browser reconnects by itself after a stream ends. A refusal (429 when too many
      // streams are open, or any other non-200) closes the source for good: poll instead, as
      // after repeated failures.
      if (source.readyState === EventSource.CLOSED || failures >= 3) {
        source.close();
        if (!TERMINAL[view.status]) schedulePoll();
      }
    });
  }

  // -- countdown and local expiry time -------------------------------------------------------
  function tick() {
    var countdown = $("countdown");
    if (!countdown || typeof view.expireTime !== "number") return;
    var left = view.expireTime - (Date.now() + clockOffset);
    if (left <= 0) {
      countdown.textContent = messages.time_up || "0:00";
      return;
    }
    var seconds = Math.floor(left / 1000);
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var pad = function (n) { return String(n).padStart(2, "0"); };
    countdown.textContent = (hours ? hours + ":" + pad(minutes) : pad(minutes)) +
      ":" + pad(seconds % 60);
  }

  function localTime(element, ms) {
    if (!element) return;
    try {
      element.textContent = new Date(ms).toLocaleString(lang, {
        dateStyle: "medium", timeStyle: "short"
      });
    } catch (error) {
      // keep the server's UTC text
    }
  }

  function localExpiry() {
    if (typeof view.expireTime === "number") localTime($("expire-time"), view.expireTime);
  }

  // -- copy buttons ------------------------------------------------------------------------
  function copied(button, ok) {
    var feedback = $("copy-feedback");
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = ok ? msg("copied") : label;
    button.classList.toggle("done", ok);
    if (feedback) feedback.textContent = ok ? msg("copied") : msg("copy_failed");
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("done");
    }, 1500);
  }

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function setupCopy() {
    var buttons = document.querySelectorAll("button.copy[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        var text = button.getAttribute("data-copy");
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(
            function () { copied(button, true); },
            function () { copied(button, fallbackCopy(text)); }
          );
        } else {
          copied(button, fallbackCopy(text));
        }
      });
    });
  }

  // -- QR mode switch (links that also work without this script) ---------------------------
  function setupQrModes() {
    var image = $("qr");
    var hint = $("qr-hint");
    var links = document.querySelectorAll("a.qr-mode");
    Array.prototype.forEach.call(links, function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        image.setAttribute("src", link.getAttribute("data-src"));
        image.setAttribute("alt", link.getAttribute("data-alt"));
        if (hint) hint.textContent = link.getAttribute("data-hint");
        Array.prototype.forEach.call(links, function (other) {
          if (other === link) other.setAttribute("aria-current", "true");
          else other.removeAttribute("aria-current");
        });
        if (window.history && window.history.replaceState) {
          window.history.replaceState(null, "", link.getAttribute("href"));
        }
      });
    });
  }

  // The wallet script (wallet.js) reads the live view through this.
  root.cashierView = function () { return view; };
  // wallet.js (loaded after this file) shares these rather than keeping copies.
  root.cashierText = msg;
  root.cashierUnits = toUnits;
  setupCopy();
  setupQrModes();
  localExpiry();
  render(view);
  window.setInterval(tick, 1000);
  listen();
})();
