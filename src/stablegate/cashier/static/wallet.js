// stablegate cashier: "Pay with wallet". Finds the browser's wallets (EIP-6963 announcements,
// else window.ethereum), switches to the order's chain and sends the ERC-20 transfer of the
// amount due; the page's live status (cashier.js) then follows the order. Loaded after
// cashier.js; without a wallet it adds nothing and the page's wallet-app links stay.
(function () {
  "use strict";

  var root = document.getElementById("cashier");
  if (!root || !document.getElementById("wallet-buttons") || !root.cashierUnits) return;
  var chain = JSON.parse(root.getAttribute("data-chain") || "{}");
  var fallbackView = JSON.parse(root.getAttribute("data-view") || "{}");

  function $(id) { return document.getElementById(id); }

  function currentView() {
    return typeof root.cashierView === "function" ? root.cashierView() : fallbackView;
  }

  function show(element, visible) {
    if (element) element.hidden = !visible;
  }

  // The page's message and amount helpers, from cashier.js (never a float for an amount).
  var msg = root.cashierText;
  var toUnits = root.cashierUnits;

  var providers = [];
  var walletBusy = false;

  function walletStatus(textValue, kind) {
    var status = $("wallet-status");
    if (!status) return;
    status.textContent = textValue;
    status.className = "wallet-status" + (kind ? " " + kind : "");
    show(status, textValue !== "");
  }

  function hex(value) { return "0x" + value.toString(16); }

  function word(hexDigits) { return hexDigits.replace(/^0x/, "").toLowerCase().padStart(64, "0"); }

  // ERC-20 transfer(to, amount): selector a9059cbb, then both arguments as 32-byte words.
  function transferData(to, units) { return "0xa9059cbb" + word(to) + word(units.toString(16)); }

  function errorText(error) {
    var text = error && (error.message || String(error));
    return String(text || "unknown error").slice(0, 200);
  }

  function switchChain(provider, view) {
    var wanted = hex(BigInt(view.chainId));
    return provider.request({ method: "eth_chainId" }).then(function (current) {
      if (typeof current === "string" && BigInt(current) === BigInt(view.chainId)) return null;
      walletStatus(msg("wallet_switching", { network: chain.name || view.network }));
      return provider.request({
        method: "wallet_switchEthereumChain", params: [{ chainId: wanted }]
      }).catch(function (error) {
        if (!error || Number(error.code) !== 4902) throw error;
        // The wallet does not know the chain: add it when the gateway says how.
        if (!chain.add) {
          var missing = new Error("no_chain");
          missing.noChain = true;
          throw missing;
        }
        return provider.request({ method: "wallet_addEthereumChain", params: [chain.add] });
      });
    });
  }

  function payWith(provider) {
    var view = currentView();
    if (walletBusy) return;
    var decimals = Number(view.decimals) || 0;
    var due = typeof view.dueAmount === "string" ? view.dueAmount : "0";
    var units = toUnits(due, decimals);
    if (units <= BigInt(0) || view.status !== "pending") return;
    walletBusy = true;
    var from = null;
    walletStatus(msg("wallet_connecting"));
    provider.request({ method: "eth_requestAccounts" })
      .then(function (accounts) {
        if (!Array.isArray(accounts) || !accounts.length) {
          var none = new Error("no_account");
          none.noAccount = true;
          throw none;
        }
        from = accounts[0];
        return switchChain(provider, view);
      })
      .then(function () {
        walletStatus(msg("wallet_confirm", { due: due, symbol: view.symbol }));
        return provider.request({
          method: "eth_sendTransaction",
          params: [{ from: from, to: view.tokenAddress, value: "0x0",
            data: transferData(view.toAddress, units) }]
        });
      })
      .then(function (hash) {
        walletStatus(msg("wallet_sent", { hash: String(hash) }));
        // The gateway's stream (or the polling) follows the order from here.
      })
      .catch(function (error) {
        if (error && Number(error.code) === 4001) walletStatus(msg("wallet_rejected"), "calm");
        else if (error && error.noChain) {
          walletStatus(msg("wallet_no_chain", {
            network: chain.name || view.network, chain_id: view.chainId
          }), "failed");
        } else if (error && error.noAccount) walletStatus(msg("wallet_no_account"), "failed");
        else walletStatus(msg("wallet_error", { error: errorText(error) }), "failed");
      })
      .then(function () { walletBusy = false; });
  }

  function renderWalletButtons() {
    var box = $("wallet-buttons");
    if (!box) return;
    box.textContent = "";
    providers.forEach(function (entry) {
      var button = document.createElement("button");
      button.type = "button";
      var icon = entry.info && entry.info.icon;
      if (typeof icon === "string" && /^data:image\/(png|svg\+xml|webp|gif|jpeg);/.test(icon)) {
        var image = document.createElement("img");
        image.src = icon;
        image.alt = "";
        button.appendChild(image);
      }
      var name = entry.info && typeof entry.info.name === "string" ? entry.info.name : "";
      button.appendChild(document.createTextNode(providers.length > 1 && name
        ? msg("pay_with_named", { wallet: name.slice(0, 40) }) : msg("pay_with_wallet")));
      button.addEventListener("click", function () { payWith(entry.provider); });
      box.appendChild(button);
    });
    // With a wallet in this browser the app links are not needed.
    var apps = $("wallet-apps");
    if (apps && providers.length) apps.hidden = true;
  }

  function addProvider(info, provider) {
    if (!provider || typeof provider.request !== "function") return;
    for (var i = 0; i < providers.length; i += 1) {
      if (providers[i].provider === provider) return;
      if (info && providers[i].info && providers[i].info.uuid === info.uuid) return;
    }
    // window.ethereum stands in only until a wallet announces itself.
    providers = providers.filter(function (entry) { return entry.info; });
    providers.push({ info: info, provider: provider });
    renderWalletButtons();
  }

  function setupWallet() {
    window.addEventListener("eip6963:announceProvider", function (event) {
      var detail = event.detail || {};
      addProvider(detail.info || { name: "" }, detail.provider);
    });
    window.dispatchEvent(new Event("eip6963:requestProvider"));
    window.setTimeout(function () {
      if (!providers.length && window.ethereum) addProvider(null, window.ethereum);
    }, 300);
  }

  setupWallet();
})();
