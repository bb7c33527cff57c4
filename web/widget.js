/*
 * Demo Skin Clinic chat widget: one <script> tag, no framework, no CDN.
 *
 *   <script src="https://assistant.example.com/webhooks/web/widget.js"
 *           data-title="Ask our clinic" data-color="#0f6e6e" defer></script>
 *
 * Options come from window.ClinicChatConfig (set before the tag) and from data-
 * attributes on the tag (which win). See docs/widget.md.
 *
 * Safety rules kept throughout: every bot and user text is inserted with
 * textContent / text nodes, never parsed as HTML; links are built with DOM APIs and
 * only for http(s) URLs.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__clinicChatLoaded) { return; }
  window.__clinicChatLoaded = true;

  var STORAGE_VERSION = "v1";
  var MAX_STORED_MESSAGES = 100;
  var REQUEST_TIMEOUT_MS = 30000;
  var RETRY_FIRST_MS = 1000;
  var RETRY_MAX_MS = 30000;
  var SOURCE_LINE = /^(Source: )(.+) \((https?:\/\/[^\s()]+)\)$/;
  var URL_IN_TEXT = /https?:\/\/[^\s<>"')]+/g;

  // Widget chrome (not answers: those all come from the server's fact store). Overridable via config.texts.
  var TEXTS = {
    launcher: "Chat with us",
    close: "Close chat",
    newConversation: "New conversation",
    inputLabel: "Your question",
    placeholder: "Type your question…",
    send: "Send",
    typing: "The assistant is typing…",
    you: "You",
    assistant: "Assistant",
    suggestions: "Suggested questions",
    offline: "Can't reach the assistant right now. Your message is kept; reconnecting automatically.",
    offlineIn: "Next try in {s} s.",
    retryNow: "Try now",
    online: "Connected again. You can send your message.",
    tooLong: "Please keep your question under {n} characters.",
    counter: "{used} / {max}",
    newStarted: "New conversation started. The previous one was cleared from this browser."
  };

  var DEFAULTS = {
    title: "Ask Demo Skin Clinic",
    color: "",
    greeting: "",
    position: "right",
    open: false,
    server: "",
    storage: "local",
    historyHours: 24,
    texts: {}
  };

  // ---------------------------------------------------------------- config

  function readConfig() {
    var global = window.ClinicChatConfig || {};
    var data = script.dataset || {};
    var config = {};
    Object.keys(DEFAULTS).forEach(function (key) { config[key] = DEFAULTS[key]; });
    Object.keys(global).forEach(function (key) { config[key] = global[key]; });
    if (data.title) { config.title = data.title; }
    if (data.color || data.colour) { config.color = data.color || data.colour; }
    if (data.greeting) { config.greeting = data.greeting; }
    if (data.position) { config.position = data.position; }
    if (data.open) { config.open = data.open === "true"; }
    if (data.server) { config.server = data.server; }
    if (data.storage) { config.storage = data.storage; }
    if (data.historyHours) { config.historyHours = Number(data.historyHours); }
    config.texts = Object.assign({}, TEXTS, global.texts || {});
    config.position = config.position === "left" ? "left" : "right";
    config.storage = ["local", "session", "none"].indexOf(config.storage) >= 0 ? config.storage : "local";
    if (!(config.historyHours > 0)) { config.historyHours = DEFAULTS.historyHours; }
    // The server is where this script came from, unless told otherwise.
    var base = config.server || new URL(script.src, document.baseURI).href.replace(/\/webhooks\/web\/widget\.js.*$/, "");
    config.server = base.replace(/\/+$/, "");
    return config;
  }

  var config = readConfig();
  var T = config.texts;

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (_, key) { return key in values ? values[key] : ""; });
  }

  // ---------------------------------------------------------------- storage

  function pickStorage(kind) {
    try {
      var store = kind === "session" ? window.sessionStorage : kind === "local" ? window.localStorage : null;
      if (store) { store.setItem("clinicChat:probe", "1"); store.removeItem("clinicChat:probe"); }
      return store;
    } catch (e) {
      return null; // storage disabled (privacy mode, blocked cookies): keep the conversation in memory only
    }
  }

  var storage = pickStorage(config.storage);
  var uiStorage = pickStorage(config.storage === "none" ? "none" : "session");
  var storageKey = "clinicChat:" + STORAGE_VERSION + ":" + config.server;

  function freshState() {
    // The server gives the conversation its id with the first reply (channels/rest.py): an id the
    // browser made up would let anyone who learned it read and write this conversation.
    return { senderId: "", greeted: false, updatedAt: Date.now(), messages: [] };
  }

  function loadState() {
    if (!storage) { return freshState(); }
    try {
      var saved = JSON.parse(storage.getItem(storageKey) || "null");
      var maxAge = config.historyHours * 3600 * 1000;
      if (saved && typeof saved.senderId === "string" && Array.isArray(saved.messages) &&
          Date.now() - saved.updatedAt < maxAge) {
        return saved;
      }
    } catch (e) { /* unreadable: start afresh */ }
    storage.removeItem(storageKey);
    return freshState();
  }

  function saveState() {
    state.updatedAt = Date.now();
    state.messages = state.messages.slice(-MAX_STORED_MESSAGES);
    if (!storage) { return; }
    try { storage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* full: keep in memory */ }
  }

  var state = loadState();

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function icon(pathData) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }

  /** A link only for a real http(s) URL; anything else stays text. */
  function safeLink(url, label) {
    var parsed;
    try { parsed = new URL(url); } catch (e) { return document.createTextNode(label); }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") { return document.createTextNode(label); }
    var link = el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" });
    link.textContent = label;
    return link;
  }

  /** Text with its URLs as links; every piece of text is a text node. */
  function appendLinkified(parent, text) {
    var last = 0;
    text.replace(URL_IN_TEXT, function (match, offset) {
      var url = match.replace(/[.,;:!?]+$/, "");
      parent.appendChild(document.createTextNode(text.slice(last, offset)));
      parent.appendChild(safeLink(url, url));
      last = offset + url.length;
      return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderText(parent, text) {
    String(text).split("\n").forEach(function (line, i) {
      if (i > 0) { parent.appendChild(document.createElement("br")); }
      var source = SOURCE_LINE.exec(line);
      if (source) {
        var span = el("span", { class: "cw-source" });
        span.appendChild(document.createTextNode(source[1]));
        span.appendChild(safeLink(source[3], source[2]));
        parent.appendChild(span);
      } else {
        appendLinkified(parent, line);
      }
    });
  }

  // ---------------------------------------------------------------- build the widget

  var host = el("div", { id: "clinic-chat-widget" });
  host.style.visibility = "hidden"; // until the stylesheet has loaded: no unstyled flash
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  if (config.color && window.CSS && CSS.supports("color", config.color)) {
    host.style.setProperty("--cw-accent", config.color);
    host.style.setProperty("--cw-on-accent", textColourOn(config.color));
  }

  var stylesheet = el("link", { rel: "stylesheet", href: config.server + "/webhooks/web/widget.css" });
  stylesheet.addEventListener("load", function () { host.style.visibility = ""; });
  stylesheet.addEventListener("error", function () { host.style.visibility = ""; });

  var launcher = el("button", {
    type: "button", class: "cw-launcher", "aria-expanded": "false", "aria-controls": "cw-panel",
    "aria-label": T.launcher + ": " + config.title
  }, [icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z")]);
  launcher.appendChild(el("span", { class: "cw-launcher-label", text: T.launcher }));

  var title = el("h2", { id: "cw-title", class: "cw-title", text: config.title });
  var newButton = el("button", { type: "button", class: "cw-new", text: T.newConversation });
  var closeButton = el("button", { type: "button", class: "cw-close", "aria-label": T.close },
    [icon("M6 6l12 12M18 6L6 18")]);
  var header = el("div", { class: "cw-header" }, [title, newButton, closeButton]);

  // The alert is announced once when it appears; the changing countdown is for sighted users only.
  var noticeText = el("span", { class: "cw-notice-text" });
  var noticeWhen = el("span", { class: "cw-notice-when", "aria-hidden": "true" });
  var retryButton = el("button", { type: "button", class: "cw-retry", text: T.retryNow });
  var notice = el("div", { class: "cw-notice", role: "alert" }, [noticeText, noticeWhen, retryButton]);
  notice.hidden = true;

  var log = el("div", {
    class: "cw-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": config.title, tabindex: "0"
  });
  var typing = el("div", { class: "cw-typing", role: "status" }, [
    el("span", { class: "cw-dot", "aria-hidden": "true" }),
    el("span", { class: "cw-dot", "aria-hidden": "true" }),
    el("span", { class: "cw-dot", "aria-hidden": "true" }),
    el("span", { class: "cw-sr", text: T.typing })
  ]);
  typing.hidden = true;

  var inputLabel = el("label", { for: "cw-input", class: "cw-sr", text: T.inputLabel });
  var input = el("textarea", {
    id: "cw-input", class: "cw-input", rows: "1", placeholder: T.placeholder, maxlength: "1000",
    "aria-describedby": "cw-counter", autocomplete: "off"
  });
  var sendButton = el("button", { type: "submit", class: "cw-send", "aria-label": T.send },
    [icon("M3 20l18-8L3 4v6l12 2-12 2z")]);
  var counter = el("div", { id: "cw-counter", class: "cw-counter" });
  var limitMessage = el("div", { class: "cw-limit", role: "status" });
  var form = el("form", { class: "cw-form", novalidate: "" }, [inputLabel, input, sendButton]);
  var footer = el("div", { class: "cw-footer" }, [limitMessage, counter]);
  var announcer = el("div", { class: "cw-sr", role: "status" });

  var panel = el("div", {
    id: "cw-panel", class: "cw-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "cw-title"
  }, [header, notice, log, typing, form, footer, announcer]);
  panel.hidden = true;

  var container = el("div", { class: "cw-root cw-" + config.position }, [panel, launcher]);
  root.appendChild(stylesheet);
  root.appendChild(container);

  // ---------------------------------------------------------------- messages

  function addMessage(message, fromHistory) {
    var who = message.from === "user" ? "user" : "bot";
    var bubble = el("div", { class: "cw-msg cw-" + who });
    bubble.appendChild(el("span", { class: "cw-sr", text: (who === "user" ? T.you : T.assistant) + ": " }));
    var body = el("div", { class: "cw-text" });
    renderText(body, message.text || "");
    bubble.appendChild(body);
    if (who === "bot" && Array.isArray(message.buttons) && message.buttons.length) {
      var chips = el("div", { class: "cw-chips", role: "group", "aria-label": T.suggestions });
      message.buttons.forEach(function (button) {
        if (!button || typeof button.title !== "string" || typeof button.payload !== "string") { return; }
        var chip = el("button", { type: "button", class: "cw-chip", text: button.title });
        chip.addEventListener("click", function () { input.focus(); send(button.title, button.payload); });
        chips.appendChild(chip);
      });
      bubble.appendChild(chips);
    }
    log.appendChild(bubble);
    if (!fromHistory) {
      state.messages.push({ from: who, text: message.text || "", buttons: message.buttons || [] });
      saveState();
    }
    log.scrollTop = log.scrollHeight;
    return bubble;
  }

  function renderHistory() {
    log.textContent = "";
    state.messages.forEach(function (message) { addMessage(message, true); });
  }

  // ---------------------------------------------------------------- network

  var maxChars = 1000;
  var busy = false;
  var offline = false;
  var retryTimer = null;
  var retryDelay = RETRY_FIRST_MS;
  var retryPayload = null; // a chip's payload whose title waits in the input after a failed send

  function request(path, options) {
    var controller = window.AbortController ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) { controller.abort(); } }, REQUEST_TIMEOUT_MS);
    var init = Object.assign({ credentials: "omit", mode: "cors", cache: "no-store" }, options || {});
    if (controller) { init.signal = controller.signal; }
    return fetch(config.server + path, init).finally(function () { clearTimeout(timer); });
  }

  function applyServerConfig(data) {
    if (data && data.max_message_chars > 0) {
      maxChars = data.max_message_chars;
      input.setAttribute("maxlength", String(maxChars));
      updateCounter();
    }
  }

  function loadServerConfig() {
    return request("/webhooks/web/config").then(function (reply) {
      if (!reply.ok) { throw new Error("config " + reply.status); }
      return reply.json();
    }).then(applyServerConfig);
  }

  function showOffline(secondsToRetry) {
    offline = true;
    notice.hidden = false;
    if (noticeText.textContent !== T.offline) { noticeText.textContent = T.offline; }
    noticeWhen.textContent = secondsToRetry ? " " + fill(T.offlineIn, { s: secondsToRetry }) + " " : " ";
    panel.classList.add("cw-is-offline");
  }

  function showOnline() {
    var wasOffline = offline;
    offline = false;
    retryDelay = RETRY_FIRST_MS;
    clearTimeout(retryTimer);
    retryTimer = null;
    notice.hidden = true;
    noticeText.textContent = "";
    panel.classList.remove("cw-is-offline");
    if (wasOffline) { announcer.textContent = T.online; }
  }

  /** Probe the server with back-off until it answers; then carry on where we were. */
  function scheduleReconnect() {
    clearTimeout(retryTimer);
    var delay = Math.round(retryDelay * (0.8 + Math.random() * 0.4));
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    showOffline(Math.max(1, Math.round(delay / 1000)));
    retryTimer = setTimeout(probe, delay);
  }

  function probe() {
    retryTimer = null;
    return loadServerConfig().then(function () {
      showOnline();
      if (!state.greeted && isOpen()) { greet(); }
    }, function () {
      scheduleReconnect();
    });
  }

  function setBusy(value) {
    busy = value;
    typing.hidden = !value;
    panel.setAttribute("aria-busy", value ? "true" : "false");
    if (value) { log.scrollTop = log.scrollHeight; }
  }

  function postMessage(message) {
    return request("/webhooks/rest/webhook", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(state.senderId ? { sender: state.senderId, message: message } : { message: message })
    });
  }

  function showReplies(replies) {
    replies = Array.isArray(replies) ? replies : [];
    var deleted = false;
    replies.forEach(function (reply) {
      if (reply && typeof reply.recipient_id === "string" && reply.recipient_id) {
        state.senderId = reply.recipient_id; // the id the server issued (or kept) for this conversation
      }
      if (reply && reply.custom && reply.custom.conversation_deleted === true) { deleted = true; }
      if (reply && typeof reply.text === "string" && reply.text) {
        addMessage({ from: "bot", text: reply.text, buttons: reply.buttons || [] });
      }
    });
    if (deleted) { forgetLocally(); }
  }

  /** The server deleted the conversation at the patient's request: keep nothing of it in this browser either. */
  function forgetLocally() {
    if (storage) { storage.removeItem(storageKey); }
    state = freshState();
    saveState();
  }

  /**
   * Send what the user typed (or a chip: its title shows, its payload travels).
   * On connection trouble the text goes back into the input, nothing is lost.
   */
  function send(text, payload) {
    text = String(text || "");
    if (busy || !text.trim()) { return; }
    if (text.length > maxChars) {
      limitMessage.textContent = fill(T.tooLong, { n: maxChars });
      return;
    }
    var bubble = addMessage({ from: "user", text: text });
    var sentFromInput = input.value === text;
    if (sentFromInput) { input.value = ""; updateCounter(); }
    limitMessage.textContent = "";
    retryPayload = null;
    setBusy(true);
    postMessage(payload || text).then(function (reply) {
      if (reply.status >= 500) { throw new Error("server " + reply.status); }
      return reply.json().then(function (data) { return { status: reply.status, data: data }; });
    }).then(function (result) {
      setBusy(false);
      showOnline();
      state.greeted = true; // the server welcomes on the first message of a conversation anyway
      if (result.status >= 400) { // refused (too long, malformed): say why, keep the text
        unsend(bubble, text, payload);
        limitMessage.textContent = (result.data && result.data.error) || fill(T.tooLong, { n: maxChars });
        return;
      }
      showReplies(result.data);
    }).catch(function () {
      setBusy(false);
      unsend(bubble, text, payload);
      scheduleReconnect();
    });
  }

  /** Take back a message that did not get through and put it where the user can send it again. */
  function unsend(bubble, text, payload) {
    if (bubble.parentNode) { bubble.parentNode.removeChild(bubble); }
    state.messages.pop();
    saveState();
    if (!input.value.trim()) {
      input.value = text;
      retryPayload = payload ? { title: text, payload: payload } : null;
      updateCounter();
    }
  }

  /** The first open of a conversation: the server's welcome (from the fact store) with its chips. */
  function greet() {
    if (state.greeted || busy) { return; }
    if (config.greeting) {
      state.greeted = true;
      addMessage({ from: "bot", text: config.greeting });
      return;
    }
    setBusy(true);
    postMessage("/greet").then(function (reply) {
      if (!reply.ok) { throw new Error("greet " + reply.status); }
      return reply.json();
    }).then(function (data) {
      setBusy(false);
      showOnline();
      state.greeted = true;
      showReplies(data);
      saveState();
    }).catch(function () {
      setBusy(false);
      scheduleReconnect();
    });
  }

  // ---------------------------------------------------------------- UI behaviour

  function updateCounter() {
    counter.textContent = fill(T.counter, { used: input.value.length, max: maxChars });
    counter.classList.toggle("cw-near-limit", input.value.length >= maxChars * 0.9);
    if (input.value.length >= maxChars) {
      limitMessage.textContent = fill(T.tooLong, { n: maxChars });
    } else if (limitMessage.textContent && input.value.length < maxChars * 0.9) {
      limitMessage.textContent = "";
    }
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  }

  function isOpen() { return !panel.hidden; }

  function openPanel(focusInput) {
    panel.hidden = false;
    container.classList.add("cw-open");
    launcher.setAttribute("aria-expanded", "true");
    if (uiStorage) { uiStorage.setItem(storageKey + ":open", "1"); }
    log.scrollTop = log.scrollHeight;
    if (focusInput !== false) { input.focus(); }
    if (!state.greeted && !offline) { greet(); }
  }

  function closePanel() {
    panel.hidden = true;
    container.classList.remove("cw-open");
    launcher.setAttribute("aria-expanded", "false");
    if (uiStorage) { uiStorage.removeItem(storageKey + ":open"); }
    launcher.focus();
  }

  function startNewConversation() {
    if (storage) { storage.removeItem(storageKey); }
    state = freshState();
    saveState();
    retryPayload = null;
    input.value = "";
    updateCounter();
    renderHistory();
    announcer.textContent = T.newStarted;
    input.focus();
    if (!offline) { greet(); }
  }

  launcher.addEventListener("click", function () { if (isOpen()) { closePanel(); } else { openPanel(); } });
  closeButton.addEventListener("click", closePanel);
  newButton.addEventListener("click", startNewConversation);
  retryButton.addEventListener("click", function () { clearTimeout(retryTimer); probe(); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    var payload = retryPayload && retryPayload.title === text ? retryPayload.payload : null;
    send(text, payload);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit")); }
    }
  });
  input.addEventListener("input", updateCounter);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.stopPropagation(); closePanel(); }
  });
  window.addEventListener("online", function () { if (offline) { clearTimeout(retryTimer); probe(); } });
  window.addEventListener("storage", function (event) { // another tab started afresh or added messages
    if (event.key === storageKey && !busy) { state = loadState(); renderHistory(); }
  });

  // ---------------------------------------------------------------- colour contrast

  /** Black or white text, whichever reads better on the clinic's colour (WCAG relative luminance). */
  function textColourOn(colour) {
    var probeEl = document.createElement("span");
    probeEl.style.color = colour;
    document.documentElement.appendChild(probeEl);
    var rgb = (getComputedStyle(probeEl).color.match(/\d+(\.\d+)?/g) || [0, 0, 0]).slice(0, 3).map(Number);
    probeEl.remove();
    var lum = rgb.map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? "#111111" : "#ffffff";
  }

  // ---------------------------------------------------------------- start

  function start() {
    document.body.appendChild(host);
    renderHistory();
    updateCounter();
    loadServerConfig().catch(function () { /* the first send or open will notice and reconnect */ });
    if (config.open || (uiStorage && uiStorage.getItem(storageKey + ":open"))) { openPanel(false); }
    window.ClinicChat = { open: openPanel, close: closePanel, newConversation: startNewConversation };
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
