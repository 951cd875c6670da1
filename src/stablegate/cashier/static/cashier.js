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

  function render(next) {
    view = next;
    if (typeof view.serverTime === "number") clockOffset = view.serverTime - Date.now();
    root.setAttribute("data-status", view.status);
    $("status-text").textContent = messages["status_" + view.status] || view.status;

    var decimals = Number(view.decimals) || 0;
    var received = toUnits(view.paidAmount, decimals) + toUnits(view.pendingAmount, decimals);
    var receivedLine = $("received");
    if (received > BigInt(0)) {
      receivedLine.textContent = msg("received", {
        paid: formatUnits(received, decimals), amount: view.amount, symbol: view.symbol
      });
    }
    show(receivedLine, received > BigInt(0));

    var confirmations = $("confirmations");
    if (view.status === "confirming") {
      var count = Number(view.confirmations) || 0;
      var required = Number(view.requiredConfirmations) || 0;
      confirmations.textContent = count < required
        ? msg("confirmations_of", { count: count, required: required })
        : msg("confirmations", { count: count });
    }
    show(confirmations, view.status === "confirming");

    var redirect = $("redirect");
    var url = view.status === "completed" ? view.redirectUrl : null;
    var safe = typeof url === "string" && /^https?:\/\/[^\s]/i.test(url);
    if (safe) redirect.setAttribute("href", url);
    show($("redirect-wrap"), safe);
    tick();
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

  function localExpiry() {
    var element = $("expire-time");
    if (!element || typeof view.expireTime !== "number") return;
    try {
      element.textContent = new Date(view.expireTime).toLocaleString(lang, {
        dateStyle: "medium", timeStyle: "short"
      });
    } catch (error) {
      // keep the server's UTC text
    }
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

  setupCopy();
  setupQrModes();
  localExpiry();
  render(view);
  window.setInterval(tick, 1000);
  listen();
})();
