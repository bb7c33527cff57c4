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
 * only for http(s) URLs and phone numbers (tel:).
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || window.__clinicChatLoaded) { return; }
  window.__clinicChatLoaded = true;

  var STORAGE_VERSION = "v1";
  var MAX_STORED_MESSAGES = 100;
  var REQUEST_TIMEOUT_MS = 15000; // a hung server: say so after 15 s, keep the message
  var RETRY_FIRST_MS = 2000; // reconnect probes after 2 s, 4 s, 8 s, then every 10 s
  var RETRY_MAX_MS = 10000;
  var JITTER = 0.1;
  var BUSY_RETRIES = 6; // a 503 or 429: the same message is resent at most this many times
  var BUSY_WAIT_MAX_MS = 60000;
  var ANSWER_LANG = "en"; // the assistant answers in English (the fact store's language)...
  var LANG_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/; // ...unless a message says otherwise (custom.lang: "es")
  var SOURCE_LINE = /^(Source: )(.+) \((https?:\/\/[^\s()]+)\)$/;
  var URL_IN_TEXT = /https?:\/\/[^\s<>"')]+/g;
  var PHONE_IN_TEXT = /\+?\(?\d[\d ().\u00a0\u2011-]{4,}\d/g;
  var ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

  // Widget chrome (not answers: those all come from the server's fact store). Overridable via config.texts.
  var TEXTS = {
    launcher: "Chat with us",
    close: "Close chat",
    newConversation: "New conversation",
    newConfirm: "Start a new conversation? This one will be cleared from this browser, in every tab.",
    newConfirmYes: "Clear and start again",
    newConfirmNo: "Cancel",
    inputLabel: "Your question",
    placeholder: "Type your question…",
    send: "Send",
    typing: "The assistant is typing…",
    you: "You",
    assistant: "Assistant",
    urgent: "Urgent",
    suggestions: "Suggested questions",
    offline: "Can't reach the assistant right now. Your message is kept; reconnecting automatically.",
    offlineIn: "Next try in {s} s.",
    retryNow: "Try now",
    tryAgain: "Try again",
    timeout: "The assistant is taking too long to answer. Your message is kept in the box: press Enter to send it again.",
    busy: "The assistant can't take your message right now. It is kept and will be sent again automatically.",
    retryIn: "Trying again in {s} s.",
    gotThrough: "Your message got through.",
    notSent: "Your message could not be sent. It is back in the box: press Enter to try again.",
    online: "Connected again. You can send your message.",
    queued: "Will be sent after the current answer.",
    queuedSaid: "Your message will be sent after the current answer.",
    waiting: "Waiting to send…",
    tooLong: "Please keep your question under {n} characters.",
    tooLongBy: "Your message is {used} characters long: please shorten it to {n} or fewer. Nothing was sent.",
    counter: "{used} / {max}",
    urgentHelp: "If it's urgent, call:",
    callLabel: "{label}: {number}",
    phoneClinic: "Call the clinic",
    feedbackQuestion: "Was this helpful?",
    feedbackUp: "Yes, this answer helped",
    feedbackDown: "No, this answer did not help",
    feedbackThanks: "Thanks for your feedback",
    feedbackFailed: "Your feedback could not be sent.",
    feedbackGone: "This answer can no longer be rated.",
    unread: "{n} new",
    privacyLocal: "This conversation is kept in this browser for {browser} and on the clinic's server for {server}.",
    privacySession: "This conversation is kept in this browser tab until you close it, and on the clinic's server for {server}.",
    privacyNone: "This conversation is kept on the clinic's server for {server}, not in this browser.",
    privacyDelete: "To delete it, type “delete my conversation”.",
    aDay: "a day",
    hours: "{n} hours",
    days: "{n} days",
    limitedTime: "a limited time",
    upToDays: "up to {n} days",
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
    lang: "en",
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
    if (data.lang) { config.lang = data.lang; }
    config.texts = Object.assign({}, TEXTS, global.texts || {});
    config.position = config.position === "left" ? "left" : "right";
    config.storage = ["local", "session", "none"].indexOf(config.storage) >= 0 ? config.storage : "local";
    if (!(config.historyHours > 0)) { config.historyHours = DEFAULTS.historyHours; }
    config.lang = typeof config.lang === "string" && config.lang ? config.lang : "en";
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
  // The server's /config (the message limit and the clinic's public phone numbers, no conversation) is kept
  // so that the numbers can be shown even when the server cannot be reached.
  var configStorage = pickStorage("local");
  var storageKey = "clinicChat:" + STORAGE_VERSION + ":" + config.server;
  var configKey = "clinicChatConfig:" + STORAGE_VERSION + ":" + config.server;

  function freshState() {
    // The server gives the conversation its id with the first reply (channels/rest.py): an id the
    // browser made up would let anyone who learned it read and write this conversation.
    // `conversation` counts the conversations started in this browser: a tab never saves over a newer one.
    return { senderId: "", conversation: 0, greeted: false, noted: false, unread: 0, updatedAt: Date.now(), messages: [] };
  }

  function readStored() {
    try { return JSON.parse((storage && storage.getItem(storageKey)) || "null"); } catch (e) { return null; }
  }

  /** The number of the conversation saved in this browser (0 for none, or one saved before it was counted). */
  function storedConversation(saved) {
    return saved && typeof saved.conversation === "number" ? saved.conversation : 0;
  }

  function loadState() {
    if (!storage) { return freshState(); }
    var saved = readStored(); // unreadable: start afresh
    var maxAge = config.historyHours * 3600 * 1000;
    if (saved && typeof saved.senderId === "string" && Array.isArray(saved.messages) &&
        Date.now() - saved.updatedAt < maxAge) {
      saved.conversation = storedConversation(saved);
      return saved;
    }
    storage.removeItem(storageKey);
    var fresh = freshState();
    fresh.conversation = storedConversation(saved);
    return fresh;
  }

  /** Another tab started a new conversation after this tab's: this tab's conversation is cleared, not saved. */
  function replacedElsewhere() {
    return !!storage && storedConversation(readStored()) > (state.conversation || 0);
  }

  function saveState() {
    state.updatedAt = Date.now();
    state.messages = state.messages.slice(-MAX_STORED_MESSAGES);
    if (!storage) { return; }
    // An answer that arrives late for a conversation another tab has cleared must not bring it back.
    if (replacedElsewhere()) { followOtherTab(); return; }
    try { storage.setItem(storageKey, JSON.stringify(state)); } catch (e) { /* full: keep in memory */ }
  }

  var state = loadState();

  function newMessageId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes); // available outside secure contexts too
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") { node.textContent = attrs[name]; } else { node.setAttribute(name, attrs[name]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M3 20l18-8L3 4v6l12 2-12 2z",
    phone: "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25c1.12.37 2.32.57 3.57.57a1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z",
    warning: "M1 21h22L12 2 1 21zm12-3h-2v-2h2v2zm0-4h-2v-4h2v4z",
    info: "M11 7h2v2h-2zm0 4h2v6h-2zm1-9a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16z",
    up: "M1 21h4V9H1v12zm22-11a2 2 0 0 0-2-2h-6.31l.95-4.57.03-.32a1.5 1.5 0 0 0-.44-1.06L14.17 1 7.59 7.59A2 2 0 0 0 7 9v10a2 2 0 0 0 2 2h9a2 2 0 0 0 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
    down: "M15 3H6a2 2 0 0 0-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2a2 2 0 0 0 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5a2 2 0 0 0-2-2zm4 0v12h4V3h-4z"
  };

  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "cw-icon cw-icon-" + name);
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
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

  /** tel: plus the digits (and a leading +) of a number as people write it. */
  function telHref(number) {
    var digits = String(number).replace(/[^\d+]/g, "");
    return "tel:" + (digits.charAt(0) === "+" ? "+" : "") + digits.replace(/\+/g, "");
  }

  /** A phone number in a message: a tel: link that never breaks across lines. */
  function phoneLink(number) {
    var link = el("a", { href: telHref(number), class: "cw-tel" });
    link.textContent = number;
    return link;
  }

  function digitCount(text) { return String(text).replace(/\D/g, "").length; }

  /** Where phone numbers sit in a piece of text: the clinic's own numbers (even short ones such as 911), and
   * anything written like a phone number (7 to 15 digits, not a date). */
  function findPhones(text) {
    var found = [];
    knownPhones().forEach(function (phone) {
      var at = text.indexOf(phone.number);
      while (phone.number && at >= 0) {
        var before = text.charAt(at - 1);
        var after = text.charAt(at + phone.number.length);
        if (!/\d/.test(before) && !/\d/.test(after)) { found.push({ start: at, end: at + phone.number.length }); }
        at = text.indexOf(phone.number, at + 1);
      }
    });
    text.replace(PHONE_IN_TEXT, function (match, offset) {
      var number = match;
      if (number.charAt(0) === "(" && number.indexOf(")") < 0) { number = number.slice(1); offset += 1; }
      var digits = digitCount(number);
      if (digits >= 7 && digits <= 15 && !ISO_DATE.test(number)) { found.push({ start: offset, end: offset + number.length }); }
      return match;
    });
    found.sort(function (a, b) { return a.start - b.start || b.end - a.end; });
    var kept = [];
    found.forEach(function (range) {
      if (!kept.length || range.start >= kept[kept.length - 1].end) { kept.push(range); }
    });
    return kept;
  }

  function appendWithPhones(parent, text) {
    var last = 0;
    findPhones(text).forEach(function (range) {
      parent.appendChild(document.createTextNode(text.slice(last, range.start)));
      parent.appendChild(phoneLink(text.slice(range.start, range.end)));
      last = range.end;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /** Text with its URLs and phone numbers as links; every piece of text is a text node. */
  function appendLinkified(parent, text) {
    var last = 0;
    text.replace(URL_IN_TEXT, function (match, offset) {
      var url = match.replace(/[.,;:!?]+$/, "");
      appendWithPhones(parent, text.slice(last, offset));
      parent.appendChild(safeLink(url, url));
      last = offset + url.length;
      return match;
    });
    appendWithPhones(parent, text.slice(last));
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

  // ---------------------------------------------------------------- the clinic's phone numbers

  function validPhones(list) {
    return (Array.isArray(list) ? list : []).filter(function (phone) {
      return phone && typeof phone.number === "string" && digitCount(phone.number) > 0 &&
        (phone.label === undefined || typeof phone.label === "string");
    }).map(function (phone) { return { label: phone.label || T.phoneClinic, number: phone.number }; });
  }

  function readCachedConfig() {
    try { return JSON.parse((configStorage && configStorage.getItem(configKey)) || "null"); } catch (e) { return null; }
  }

  var serverConfig = readCachedConfig() || {};

  /** The clinic's numbers from /config (or the copy kept from an earlier visit). */
  function knownPhones() { return validPhones(serverConfig.phones); }

  /** Call buttons: tel: links as big as a thumb, the number never split across lines. */
  function callButtons(phones) {
    var box = el("div", { class: "cw-calls" });
    phones.forEach(function (phone) {
      var link = el("a", {
        class: "cw-call", href: telHref(phone.number),
        "aria-label": fill(T.callLabel, { label: phone.label, number: phone.number })
      }, [icon("phone")]);
      link.appendChild(el("span", { class: "cw-call-label", text: phone.label }));
      link.appendChild(el("span", { class: "cw-call-number", text: phone.number }));
      box.appendChild(link);
    });
    return box;
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
  stylesheet.addEventListener("load", function () { host.style.visibility = ""; autosize(); });
  stylesheet.addEventListener("error", function () { host.style.visibility = ""; });

  var launcherName = T.launcher + ": " + config.title;
  var badge = el("span", { class: "cw-badge", "aria-hidden": "true" });
  badge.hidden = true;
  var launcher = el("button", {
    type: "button", class: "cw-launcher", "aria-expanded": "false", "aria-controls": "cw-panel",
    "aria-label": launcherName
  }, [icon("chat"), el("span", { class: "cw-launcher-label", text: T.launcher }), badge]);

  var title = el("h2", { id: "cw-title", class: "cw-title", text: config.title });
  var closeButton = el("button", { type: "button", class: "cw-close", "aria-label": T.close }, [icon("close")]);
  var header = el("div", { class: "cw-header" }, [title, closeButton]);

  // The alert is announced once when it appears; the changing countdown is for sighted users only.
  var noticeText = el("span", { class: "cw-notice-text" });
  var noticeWhen = el("span", { class: "cw-notice-when", "aria-hidden": "true" });
  var retryButton = el("button", { type: "button", class: "cw-retry", text: T.retryNow });
  var noticeHelp = el("div", { class: "cw-help" });
  var notice = el("div", { class: "cw-notice", role: "alert" }, [noticeText, noticeWhen, retryButton, noticeHelp]);
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

  var confirmYes = el("button", { type: "button", class: "cw-confirm-yes", text: T.newConfirmYes });
  var confirmNo = el("button", { type: "button", class: "cw-confirm-no", text: T.newConfirmNo });
  var confirmBox = el("div", { class: "cw-confirm", role: "alertdialog", "aria-modal": "false",
                               "aria-labelledby": "cw-confirm-text" }, [
    el("p", { id: "cw-confirm-text", text: T.newConfirm }),
    el("div", { class: "cw-confirm-actions" }, [confirmYes, confirmNo])
  ]);
  confirmBox.hidden = true;

  var inputLabel = el("label", { for: "cw-input", class: "cw-sr", text: T.inputLabel });
  // No maxlength attribute (the browser would cut a long paste silently): over the limit the widget says so.
  var input = el("textarea", {
    id: "cw-input", class: "cw-input", rows: "1", placeholder: T.placeholder,
    "aria-describedby": "cw-counter cw-limit", autocomplete: "off"
  });
  var sendButton = el("button", { type: "submit", class: "cw-send", "aria-label": T.send }, [icon("send")]);
  var form = el("form", { class: "cw-form", novalidate: "" }, [inputLabel, input, sendButton]);
  var counter = el("div", { id: "cw-counter", class: "cw-counter" });
  var limitMessage = el("div", { id: "cw-limit", class: "cw-limit", role: "status" });
  var info = el("div", { class: "cw-info", role: "status" });
  // Far from the close button, and it asks first: clearing a conversation is not undone.
  var newButton = el("button", { type: "button", class: "cw-new", text: T.newConversation });
  var footer = el("div", { class: "cw-footer" }, [
    limitMessage, info, el("div", { class: "cw-footer-row" }, [newButton, counter])
  ]);
  var announcer = el("div", { class: "cw-sr", role: "status" });

  var panel = el("div", {
    id: "cw-panel", class: "cw-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "cw-title"
  }, [header, notice, log, typing, confirmBox, form, footer, announcer]);
  panel.hidden = true;

  var container = el("div", { class: "cw-root cw-" + config.position, lang: config.lang }, [panel, launcher]);
  root.appendChild(stylesheet);
  root.appendChild(container);

  var phoneQuery = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;

  // ---------------------------------------------------------------- messages

  function timeLabel(at) {
    try { return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); } catch (e) { return ""; }
  }

  function renderNote(message) {
    var note = el("div", { class: "cw-note" }, [icon("info")]);
    var text = el("p", {});
    renderText(text, message.text || "");
    note.appendChild(text);
    return note;
  }

  /** A bot message's language: the server's tag when it is a well-formed one, else English. */
  function answerLang(lang) {
    return typeof lang === "string" && LANG_TAG.test(lang) ? lang : ANSWER_LANG;
  }

  function renderMessage(message) {
    if (message.from === "note") { return renderNote(message); }
    var who = message.from === "user" ? "user" : "bot";
    var bubble = el("div", { class: "cw-msg cw-" + who + (message.urgent ? " cw-urgent" : "") });
    bubble.appendChild(el("span", { class: "cw-sr", text: (who === "user" ? T.you : T.assistant) + ": " }));
    if (message.urgent) { // a word and an icon, not only a colour
      bubble.appendChild(el("div", { class: "cw-urgent-label" }, [icon("warning"), el("span", { text: T.urgent })]));
    }
    // Answers are English unless the server says otherwise (what to do now in the patient's language);
    // what the patient typed is in whatever language they wrote it.
    var body = el("div", who === "bot" ? { class: "cw-text", lang: answerLang(message.lang) }
                                       : { class: "cw-text", lang: "", dir: "auto" });
    renderText(body, message.text || "");
    bubble.appendChild(body);
    if (message.urgent && message.calls !== false) {
      var phones = validPhones(message.phones);
      phones = phones.length ? phones : knownPhones();
      if (phones.length) { bubble.appendChild(callButtons(phones)); }
    }
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
    if (who === "bot" && message.rated) {
      bubble.appendChild(el("p", { class: "cw-thanks", text: T.feedbackThanks })); // rated before: no more thumbs
    } else if (message.rate) {
      bubble.appendChild(feedbackControls(message));
    }
    var meta = el("div", { class: "cw-meta" });
    if (message.at) {
      meta.appendChild(el("time", { datetime: new Date(message.at).toISOString(), text: timeLabel(message.at) }));
    }
    var status = el("span", { class: "cw-status" });
    meta.appendChild(status);
    bubble.appendChild(meta);
    bubble.cwStatus = status;
    return bubble;
  }

  function addToLog(message, save) {
    var node = renderMessage(message);
    log.insertBefore(node, outbox.length && outbox[0].bubble.parentNode === log ? outbox[0].bubble : null);
    if (save !== false) { state.messages.push(message); saveState(); }
    return node;
  }

  function renderHistory() {
    log.textContent = "";
    anchor = null;
    // A history saved by an older widget may hold chips on every answer: only the latest answer (the messages
    // after the patient's last one) keeps them. Its older answers also lack the id of the question they answered,
    // so their thumbs would rate the latest answer instead: those go (an older widget showed them on the latest only).
    var lastQuestion = -1;
    state.messages.forEach(function (message, i) { if (message.from === "user") { lastQuestion = i; } });
    state.messages.forEach(function (message, i) {
      if (i < lastQuestion) {
        if (!message.answerOf) { delete message.rate; }
        if (message.buttons && message.buttons.length) { message.buttons = []; }
      }
      log.appendChild(renderMessage(message));
    });
    scrollToBottom();
  }

  /**
   * Only the latest answer keeps its suggestion chips: a screen reader or keyboard user meets one set, the one
   * that fits now. The feedback buttons stay under every answer until it is rated: each one says which
   * question's answer it rates (answerOf), so a patient who reads on can still rate an earlier answer. Thumbs
   * without one (kept from an older widget's history) can only rate the latest answer: they go too.
   */
  function retireOlderChips() {
    state.messages.forEach(function (message) {
      if (message.buttons && message.buttons.length) { message.buttons = []; }
      if (message.rate && !message.answerOf) { delete message.rate; }
    });
    Array.prototype.slice.call(log.querySelectorAll(".cw-chips, .cw-feedback-latest")).forEach(function (node) {
      node.parentNode.removeChild(node);
    });
  }

  function setStatus(item, text) {
    if (item.bubble && item.bubble.cwStatus) { item.bubble.cwStatus.textContent = text; }
    if (item.bubble) { item.bubble.classList.toggle("cw-pending", !!text); }
  }

  // ---------------------------------------------------------------- keeping the newest answer in view

  var anchor = null; // the newest answer's first bubble: kept in view when the panel resizes (phone keyboard)
  var pinned = true; // false once the patient scrolls away from it

  /** Show an answer from its start (a long one is not scrolled to its end, under the header). */
  function scrollToAnswer(bubble) {
    if (bubble) { anchor = bubble; }
    if (!anchor || anchor.parentNode !== log) { scrollToBottom(); return; }
    var top = log.scrollTop + anchor.getBoundingClientRect().top - log.getBoundingClientRect().top - 8;
    log.scrollTop = Math.min(top, log.scrollHeight - log.clientHeight);
    pinned = true;
  }

  function scrollToBottom() {
    anchor = null;
    log.scrollTop = log.scrollHeight;
    pinned = true;
  }

  log.addEventListener("scroll", function () {
    var atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    var inView = false;
    if (anchor && anchor.parentNode === log) {
      var box = log.getBoundingClientRect();
      var top = anchor.getBoundingClientRect().top;
      inView = top >= box.top - 12 && top < box.bottom;
    }
    pinned = atBottom || inView;
  });

  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (pinned && isOpen()) { if (anchor) { scrollToAnswer(); } else { log.scrollTop = log.scrollHeight; } }
    }).observe(log);
  }

  /** On a phone the on-screen keyboard shrinks the visual viewport only: fit the full-screen panel to it, so
   * the header, the newest answer and the input all stay visible. */
  function fitToVisualViewport() {
    var vv = window.visualViewport;
    var fit = !!(vv && isOpen() && phoneQuery && phoneQuery.matches && Math.abs(vv.scale - 1) < 0.01 &&
                 vv.height < document.documentElement.clientHeight - 1);
    panel.style.top = fit ? vv.offsetTop + "px" : "";
    panel.style.height = fit ? vv.height + "px" : "";
  }

  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitToVisualViewport);
    window.visualViewport.addEventListener("scroll", fitToVisualViewport);
  }

  // ---------------------------------------------------------------- feedback on each answer

  function feedbackControls(message) {
    var box = el("div", { class: "cw-feedback" + (message.answerOf ? "" : " cw-feedback-latest"), role: "group",
                          "aria-label": T.feedbackQuestion });
    box.appendChild(el("span", { class: "cw-feedback-question", "aria-hidden": "true", text: T.feedbackQuestion }));
    [["up", T.feedbackUp], ["down", T.feedbackDown]].forEach(function (choice) {
      var button = el("button", { type: "button", class: "cw-rate cw-rate-" + choice[0], "aria-label": choice[1] },
        [icon(choice[0])]);
      button.addEventListener("click", function () { rate(message, box, choice[0]); });
      box.appendChild(button);
    });
    return box;
  }

  function rate(message, box, value) {
    if (message.rated || !state.senderId) { return; }
    Array.prototype.forEach.call(box.querySelectorAll("button"), function (button) { button.disabled = true; });
    var body = { sender: state.senderId, value: value };
    // The question this answer answered: the server rates that answer, not the newest one (docs/widget.md).
    if (typeof message.answerOf === "string" && message.answerOf) { body.message_id = message.answerOf; }
    requestJSON("/webhooks/rest/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (result) {
      if (result.status === 404) { // the answer is no longer on record (deleted, or past retention): never again
        delete message.rate;
        saveState();
        if (box.parentNode) { box.parentNode.removeChild(box); }
        say(T.feedbackGone);
        return;
      }
      if (result.status < 200 || result.status >= 300) { throw new Error("feedback " + result.status); }
      message.rated = value;
      delete message.rate;
      saveState();
      var thanks = el("p", { class: "cw-thanks", role: "status", text: T.feedbackThanks });
      var focused = root.activeElement && box.contains(root.activeElement);
      if (box.parentNode) { box.parentNode.replaceChild(thanks, box); } // gone if the history was redrawn meanwhile
      if (focused) { input.focus(); }
    }).catch(function () {
      Array.prototype.forEach.call(box.querySelectorAll("button"), function (button) { button.disabled = false; });
      say(T.feedbackFailed);
    });
  }

  // ---------------------------------------------------------------- network

  var maxChars = 1000;
  var outbox = []; // messages not answered yet, in order: {text, payload, messageId, at, bubble, attempts}
  var inFlight = null;
  var holdTimer = null; // waiting out a 503/429 before sending outbox[0] again
  var greeting = false;
  var offline = false;
  var retryTimer = null;
  var retryDelay = RETRY_FIRST_MS;
  var retryItem = null; // a message taken back into the input: its chip payload and message_id, for resending it
  var generation = 0; // a new conversation makes every answer still on its way stale
  var noticeMode = "";
  var noticeDeadline = 0;
  var countdownTimer = null;

  function parseRetryAfter(value) {
    if (!value) { return 0; }
    var seconds = Number(value);
    if (seconds >= 0) { return seconds; }
    var when = Date.parse(value);
    return isNaN(when) ? 0 : Math.max(0, (when - Date.now()) / 1000);
  }

  /** fetch with a deadline for the whole exchange (headers and body): a hung server fails after 15 s. */
  function requestJSON(path, options) {
    var controller = window.AbortController ? new AbortController() : null;
    var init = Object.assign({ credentials: "omit", mode: "cors", cache: "no-store" }, options || {});
    if (controller) { init.signal = controller.signal; }
    return new Promise(function (resolve, reject) {
      var done = false;
      var timer = setTimeout(function () {
        if (done) { return; }
        done = true;
        if (controller) { controller.abort(); }
        var error = new Error("timeout");
        error.timeout = true;
        reject(error);
      }, REQUEST_TIMEOUT_MS);
      fetch(config.server + path, init).then(function (reply) {
        var result = { status: reply.status, data: null, retryAfter: parseRetryAfter(reply.headers.get("Retry-After")) };
        if (reply.status === 204) { return result; }
        return reply.json().then(function (data) { result.data = data; return result; }, function () { return result; });
      }).then(function (result) {
        if (!done) { done = true; clearTimeout(timer); resolve(result); }
      }, function (error) {
        if (!done) { done = true; clearTimeout(timer); reject(error); }
      });
    });
  }

  function applyServerConfig(data) {
    if (!data || typeof data !== "object") { return; }
    if (!validPhones(data.phones).length && serverConfig.phones) { data.phones = serverConfig.phones; } // keep the last known
    serverConfig = data;
    if (configStorage) {
      try { configStorage.setItem(configKey, JSON.stringify(data)); } catch (e) { /* full: keep in memory */ }
    }
    if (data.max_message_chars > 0) {
      maxChars = data.max_message_chars;
      updateCounter();
    }
    renderHelp();
  }

  function loadServerConfig() {
    return requestJSON("/webhooks/web/config").then(function (result) {
      if (result.status !== 200 || !result.data) { throw new Error("config " + result.status); }
      applyServerConfig(result.data);
    });
  }

  /** "If it's urgent, call:" with the clinic's numbers, in every notice. */
  function renderHelp() {
    var phones = knownPhones();
    noticeHelp.textContent = "";
    noticeHelp.hidden = !phones.length;
    if (phones.length) {
      noticeHelp.appendChild(el("p", { class: "cw-help-text", text: T.urgentHelp }));
      noticeHelp.appendChild(callButtons(phones));
    }
  }

  function tickCountdown() {
    var template = noticeMode === "offline" ? T.offlineIn : noticeMode === "busy" ? T.retryIn : "";
    var left = Math.max(1, Math.round((noticeDeadline - Date.now()) / 1000));
    noticeWhen.textContent = template && noticeDeadline ? " " + fill(template, { s: left }) + " " : " ";
  }

  /** The notice at the top of the panel: what went wrong, when the next try is, a button, the phone numbers. */
  function showNotice(mode, text, waitMs) {
    noticeMode = mode;
    notice.hidden = false;
    if (noticeText.textContent !== text) {
      noticeText.textContent = "";
      appendWithPhones(noticeText, text);
    }
    retryButton.textContent = mode === "offline" || mode === "busy" ? T.retryNow : T.tryAgain;
    noticeDeadline = waitMs ? Date.now() + waitMs : 0;
    clearInterval(countdownTimer);
    countdownTimer = waitMs ? setInterval(tickCountdown, 1000) : null;
    tickCountdown();
    renderHelp();
    panel.classList.add("cw-is-offline");
  }

  function hideNotice() {
    noticeMode = "";
    notice.hidden = true;
    noticeText.textContent = "";
    clearInterval(countdownTimer);
    countdownTimer = null;
    panel.classList.remove("cw-is-offline");
  }

  function showOnline() {
    var wasOffline = offline;
    offline = false;
    retryDelay = RETRY_FIRST_MS;
    clearTimeout(retryTimer);
    retryTimer = null;
    if (noticeMode) { hideNotice(); }
    if (wasOffline) { say(T.online); }
  }

  function withJitter(ms) { return Math.round(ms * (1 - JITTER + Math.random() * 2 * JITTER)); }

  /** Probe the server with back-off (2 s, 4 s, 8 s, then every 10 s) until it answers. */
  function scheduleReconnect() {
    clearTimeout(retryTimer);
    offline = true;
    var delay = withJitter(retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    showNotice("offline", T.offline, delay);
    retryTimer = setTimeout(probe, delay);
  }

  function probe() {
    clearTimeout(retryTimer);
    retryTimer = null;
    return loadServerConfig().then(function () {
      showOnline();
      if (!state.greeted && isOpen()) { greet(); }
    }, function () {
      scheduleReconnect();
    });
  }

  function refreshBusy() {
    var waiting = !!inFlight || greeting;
    typing.hidden = !waiting;
    panel.setAttribute("aria-busy", waiting ? "true" : "false");
  }

  function postMessage(message, messageId) {
    var body = { message: message, message_id: messageId };
    if (state.senderId) { body.sender = state.senderId; }
    return requestJSON("/webhooks/rest/webhook", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    });
  }

  /** The server's messages for one turn. forItem: the patient's message they answer (null for the welcome). */
  function showReplies(replies, forItem) {
    replies = Array.isArray(replies) ? replies : [];
    var deleted = false;
    var added = [];
    replies.forEach(function (reply) {
      if (!reply || typeof reply !== "object") { return; }
      if (typeof reply.recipient_id === "string" && reply.recipient_id) {
        state.senderId = reply.recipient_id; // the id the server issued (or kept) for this conversation
      }
      var custom = reply.custom && typeof reply.custom === "object" ? reply.custom : {};
      if (custom.conversation_deleted === true) { deleted = true; }
      var urgent = custom.urgent === true;
      var phones = validPhones(custom.phones);
      if (typeof reply.text === "string" && reply.text) {
        if (forItem && forItem.urgentShown === reply.text) { return; } // already shown from the 503
        var message = { from: "bot", text: reply.text, buttons: Array.isArray(reply.buttons) ? reply.buttons : [], at: Date.now() };
        if (urgent) { message.urgent = true; }
        if (phones.length) { message.phones = phones; }
        if (answerLang(custom.lang) !== ANSWER_LANG) { message.lang = custom.lang; }
        added.push(message);
      } else if (added.length) { // data sent as a message of its own, after the text it belongs to
        if (urgent) { added[added.length - 1].urgent = true; }
        if (phones.length) { added[added.length - 1].phones = phones; }
        if (answerLang(custom.lang) !== ANSWER_LANG) { added[added.length - 1].lang = custom.lang; }
      }
    });
    if (added.length) {
      retireOlderChips();
      oneSetOfCallButtons(added);
      var urgentTurn = added.some(function (m) { return m.urgent; });
      if (forItem && !urgentTurn && !deleted) { // not the welcome, not urgent; rated by the question it answered
        added[added.length - 1].rate = true;
        added[added.length - 1].answerOf = forItem.messageId;
      }
      var first = null;
      added.forEach(function (message) {
        var node = addToLog(message, false);
        state.messages.push(message);
        first = first || node;
      });
      if (!isOpen()) { state.unread = (state.unread || 0) + added.length; updateUnread(); }
      saveState();
      scrollToAnswer(first);
    }
    if (deleted) { forgetLocally(); }
  }

  /** The urgent answer in the patient's language and in English: the call buttons once, under the last. */
  function oneSetOfCallButtons(messages) {
    var urgent = messages.filter(function (m) { return m.urgent; });
    urgent.slice(0, -1).forEach(function (m) { m.calls = false; });
  }

  /** The server deleted the conversation at the patient's request: keep nothing of it in this browser either. */
  function forgetLocally() {
    startFresh();
  }

  /** A new conversation, numbered after every one this browser has seen, so other tabs follow it. */
  function startFresh() {
    var next = Math.max(state.conversation || 0, storedConversation(readStored())) + 1;
    if (storage) { storage.removeItem(storageKey); }
    state = freshState();
    state.conversation = next;
    saveState();
  }

  /**
   * Send a message (or a chip: its title shows, its payload travels). While an answer is pending it waits
   * in line, visibly, and goes out after it, in order. Returns false when nothing was sent.
   */
  function send(text, payload, reuse) {
    text = String(text || "");
    if (!text.trim()) { return false; }
    if (text.length > maxChars) {
      limitMessage.textContent = fill(T.tooLongBy, { used: text.length, n: maxChars });
      return false;
    }
    var item = {
      text: text, payload: payload || null, messageId: (reuse && reuse.messageId) || newMessageId(),
      at: Date.now(), attempts: 0
    };
    item.bubble = renderMessage({ from: "user", text: text, at: item.at });
    log.appendChild(item.bubble);
    var waiting = outbox.length > 0 || greeting;
    outbox.push(item);
    limitMessage.textContent = "";
    retryItem = null;
    if (waiting) {
      setStatus(item, T.queued);
      say(T.queuedSaid);
    } else {
      say("");
    }
    scrollToBottom();
    pump();
    return true;
  }

  /** Send the first message waiting, unless one is already on its way (or waiting out a 503). */
  function pump() {
    if (inFlight || holdTimer || greeting || !outbox.length) { return; }
    var item = outbox[0];
    var sentIn = generation;
    inFlight = item;
    setStatus(item, item.attempts ? T.waiting : "");
    refreshBusy();
    postMessage(item.payload || item.text, item.messageId).then(function (result) {
      if (sentIn !== generation) { return; }
      inFlight = null;
      refreshBusy();
      if (result.status >= 200 && result.status < 300 && Array.isArray(result.data)) {
        delivered(item, result.data);
      } else if (result.status === 503 || result.status === 429) {
        serverBusy(item, result);
      } else if (result.status >= 500 || result.status < 400) {
        failed(false);
      } else {
        refused(item, result.data);
      }
    }, function (error) {
      if (sentIn !== generation) { return; }
      inFlight = null;
      refreshBusy();
      failed(!!(error && error.timeout));
    });
  }

  function delivered(item, replies) {
    if (replacedElsewhere()) { followOtherTab(); return; } // answered in a conversation cleared meanwhile
    outbox.shift();
    state.greeted = true; // the server welcomes on the first message of a conversation anyway
    if (!item.committed) { state.messages.push({ from: "user", text: item.text, at: item.at }); }
    setStatus(item, "");
    var retried = item.attempts > 0;
    showOnline();
    if (retried) { say(T.gotThrough); }
    showReplies(replies, item);
    saveState();
    queuedStatus();
    pump();
  }

  /** 503 (the conversation cannot be stored now) or 429 (too fast): keep the message, resend it after the wait. */
  function serverBusy(item, result) {
    var data = result.data && typeof result.data === "object" ? result.data : {};
    var sentence = (typeof data.error === "string" && data.error) || T.busy;
    if (typeof data.recipient_id === "string" && data.recipient_id) { state.senderId = data.recipient_id; }
    if (typeof data.text === "string" && data.text) {
      if (data.urgent === true) {
        if (!item.urgentShown) { // the urgent answer cannot wait for the database
          item.urgentShown = data.text;
          if (!item.committed) { state.messages.push({ from: "user", text: item.text, at: item.at }); item.committed = true; }
          retireOlderChips();
          var next = outbox[1] && outbox[1].bubble.parentNode === log ? outbox[1].bubble : null;
          var message = { from: "bot", text: data.text, urgent: true, at: Date.now() };
          var phones = validPhones(data.custom && data.custom.phones);
          if (phones.length) { message.phones = phones; }
          var lang = data.custom && data.custom.lang;
          if (answerLang(lang) !== ANSWER_LANG) { message.lang = lang; }
          var node = renderMessage(message);
          log.insertBefore(node, next);
          state.messages.push(message);
          saveState();
          scrollToAnswer(node);
        }
      } else if (!data.error) {
        sentence = data.text;
      }
    }
    item.attempts += 1;
    if (item.attempts > BUSY_RETRIES) {
      takeBackAll();
      showNotice("failed", T.notSent, 0);
      return;
    }
    var seconds = result.retryAfter || (typeof data.retry_after === "number" ? data.retry_after : 0);
    var backoff = Math.min(RETRY_FIRST_MS * Math.pow(2, item.attempts - 1), RETRY_MAX_MS);
    var wait = Math.min(BUSY_WAIT_MAX_MS, Math.max(seconds * 1000, withJitter(backoff)));
    setStatus(item, T.waiting);
    showNotice("busy", sentence, wait);
    clearTimeout(holdTimer);
    holdTimer = setTimeout(function () { holdTimer = null; pump(); }, wait);
  }

  /** The network failed or the server hung: every unsent message goes back into the input, nothing is lost. */
  function failed(timedOut) {
    takeBackAll();
    if (timedOut) {
      showNotice("timeout", T.timeout, 0);
    } else {
      scheduleReconnect();
    }
  }

  /** Refused (too long, malformed): say why, keep the text, carry on with the next one. */
  function refused(item, data) {
    outbox.shift();
    if (item.bubble.parentNode) { item.bubble.parentNode.removeChild(item.bubble); }
    if (!input.value.trim()) {
      input.value = item.text;
      retryItem = { text: item.text, payload: item.payload };
      updateCounter();
    }
    if (noticeMode) { hideNotice(); }
    limitMessage.textContent = (data && typeof data.error === "string" && data.error) || fill(T.tooLong, { n: maxChars });
    queuedStatus();
    pump();
  }

  /** After the first in line is answered, the next one is on its way: its "queued" note goes. */
  function queuedStatus() {
    if (outbox.length) { setStatus(outbox[0], ""); }
  }

  /** Take back the messages that did not get through and put them where the patient can send them again. */
  function takeBackAll() {
    clearTimeout(holdTimer);
    holdTimer = null;
    var items = outbox.splice(0);
    if (!items.length) { return; }
    items.forEach(function (item) {
      if (item.committed) { setStatus(item, T.notSent); return; }
      if (item.bubble.parentNode) { item.bubble.parentNode.removeChild(item.bubble); }
    });
    var typed = input.value;
    var texts = items.map(function (item) { return item.text; });
    input.value = texts.concat(typed.trim() ? [typed] : []).join("\n");
    // Sent again unchanged, it is the same message: the same message_id lets the server answer it only once.
    retryItem = items.length === 1 && !typed.trim() ? { text: items[0].text, payload: items[0].payload, messageId: items[0].messageId } : null;
    updateCounter();
  }

  /** The first open of a conversation: the server's welcome (from the fact store) with its chips. */
  function greet() {
    if (state.greeted || greeting || outbox.length) { return; }
    if (config.greeting) {
      state.greeted = true;
      addToLog({ from: "bot", text: config.greeting, at: Date.now() });
      return;
    }
    greeting = true;
    var sentIn = generation;
    refreshBusy();
    postMessage("/greet", newMessageId()).then(function (result) {
      greeting = false;
      refreshBusy();
      if (sentIn !== generation) { greetAfresh(); return; }
      if (result.status >= 200 && result.status < 300 && Array.isArray(result.data)) {
        showOnline();
        state.greeted = true;
        showReplies(result.data, null);
        saveState();
      } else if (result.status === 503 || result.status === 429) {
        var data = result.data || {};
        showNotice("greet", (typeof data.error === "string" && data.error) || T.busy, 0);
      } else if (result.status >= 500) {
        scheduleReconnect();
      } else {
        state.greeted = true; // refused: carry on without a welcome
        saveState();
      }
      pump();
    }, function (error) {
      greeting = false;
      refreshBusy();
      if (sentIn !== generation) { greetAfresh(); return; }
      if (error && error.timeout) { showNotice("greet", T.timeout, 0); } else { scheduleReconnect(); }
      pump();
    });
  }

  /** A welcome that arrived for a conversation cleared meanwhile: welcome the new one instead. */
  function greetAfresh() {
    if (isOpen() && !offline) { greet(); }
    pump();
  }

  // ---------------------------------------------------------------- UI behaviour

  function say(text) {
    info.textContent = "";
    info.textContent = text;
  }

  function autosize() {
    if (!isOpen()) { return; } // hidden, it would measure 0 and squash the box
    input.style.height = "auto";
    input.style.height = Math.min(Math.max(input.scrollHeight + 2, 44), 120) + "px";
  }

  function updateCounter() {
    var used = input.value.length;
    counter.textContent = fill(T.counter, { used: used, max: maxChars });
    counter.classList.toggle("cw-near-limit", used >= maxChars * 0.9);
    if (used > maxChars) { // a paste over the limit is kept whole and explained, never cut
      limitMessage.textContent = fill(T.tooLongBy, { used: used, n: maxChars });
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
      if (limitMessage.textContent && used < maxChars * 0.9) { limitMessage.textContent = ""; }
    }
    autosize();
  }

  function updateUnread() {
    var count = state.unread || 0;
    badge.hidden = !count;
    badge.textContent = count ? fill(T.unread, { n: count }) : "";
    launcher.setAttribute("aria-label", count ? launcherName + " (" + fill(T.unread, { n: count }) + ")" : launcherName);
    launcher.classList.toggle("cw-has-unread", !!count);
  }

  function privacyText() {
    var hours = config.historyHours;
    var browser = hours === 24 ? T.aDay : hours % 24 === 0 ? fill(T.days, { n: hours / 24 }) : fill(T.hours, { n: hours });
    var days = Number(serverConfig.retention_days);
    var server = days > 0 ? fill(T.upToDays, { n: Math.round(days * 10) / 10 }) : T.limitedTime;
    var template = config.storage === "local" && storage ? T.privacyLocal
      : config.storage === "session" && storage ? T.privacySession : T.privacyNone;
    return fill(template, { browser: browser, server: server }) + " " + T.privacyDelete;
  }

  /** Once per conversation, before it starts: where it is kept, for how long, how to delete it. */
  function tellPrivacy() {
    if (state.noted) { return; }
    state.noted = true;
    var note = { from: "note", text: privacyText() };
    log.insertBefore(renderNote(note), log.firstChild);
    state.messages.unshift(note);
    saveState();
  }

  function isOpen() { return !panel.hidden; }

  function isModal() { return isOpen() && !!(phoneQuery && phoneQuery.matches); }

  function updateModal() { panel.setAttribute("aria-modal", isModal() ? "true" : "false"); }

  function openPanel(focusInput) {
    panel.hidden = false;
    container.classList.add("cw-open");
    launcher.setAttribute("aria-expanded", "true");
    if (uiStorage) { uiStorage.setItem(storageKey + ":open", "1"); }
    updateModal();
    fitToVisualViewport();
    if (state.unread) { state.unread = 0; saveState(); updateUnread(); }
    tellPrivacy();
    autosize();
    if (anchor) { scrollToAnswer(); } else { scrollToBottom(); }
    if (focusInput !== false) { input.focus(); }
    if (!state.greeted && !offline) { greet(); }
  }

  function closePanel() {
    hideConfirm(false);
    panel.hidden = true;
    container.classList.remove("cw-open");
    launcher.setAttribute("aria-expanded", "false");
    if (uiStorage) { uiStorage.removeItem(storageKey + ":open"); }
    updateModal();
    fitToVisualViewport();
    launcher.focus();
  }

  function askNewConversation() {
    confirmBox.hidden = false;
    confirmNo.focus();
  }

  function hideConfirm(refocus) {
    if (confirmBox.hidden) { return; }
    confirmBox.hidden = true;
    if (refocus) { newButton.focus(); }
  }

  /** The conversation is being replaced: answers still on their way belong to the old one. */
  function dropPending() {
    generation += 1;
    takeBackAll();
    inFlight = null;
    greeting = false;
    refreshBusy();
    if (noticeMode && noticeMode !== "offline") { hideNotice(); }
  }

  function startNewConversation() {
    confirmBox.hidden = true;
    dropPending();
    say("");
    startFresh();
    retryItem = null;
    input.value = "";
    limitMessage.textContent = "";
    updateCounter();
    renderHistory();
    updateUnread();
    if (isOpen()) { tellPrivacy(); }
    announcer.textContent = T.newStarted;
    input.focus();
    if (!offline) { greet(); }
  }

  /**
   * Another tab started a new conversation ("in every tab", the confirmation says): this one shows it too.
   * Answers still on their way belong to the cleared conversation and are dropped; what the patient wrote
   * here and did not see answered goes back into the box, so nothing typed is lost.
   */
  function followOtherTab() {
    dropPending();
    state = loadState();
    renderHistory();
    updateUnread();
    announcer.textContent = T.newStarted;
  }

  /** On the full-screen phone panel the page behind is hidden: Tab and Shift+Tab stay inside the dialog. */
  function trapFocus(event) {
    if (!isModal()) { return; }
    var items = Array.prototype.filter.call(
      panel.querySelectorAll('button, a[href], textarea, input, select, [tabindex]:not([tabindex="-1"])'),
      function (node) { return !node.disabled && node.getClientRects().length > 0; });
    if (!items.length) { return; }
    var active = root.activeElement || document.activeElement;
    var at = items.indexOf(active);
    if (event.shiftKey && at <= 0) {
      event.preventDefault();
      items[items.length - 1].focus();
    } else if (!event.shiftKey && (at < 0 || at === items.length - 1)) {
      event.preventDefault();
      items[0].focus();
    }
  }

  launcher.addEventListener("click", function () { if (isOpen()) { closePanel(); } else { openPanel(); } });
  closeButton.addEventListener("click", closePanel);
  newButton.addEventListener("click", askNewConversation);
  confirmYes.addEventListener("click", startNewConversation);
  confirmNo.addEventListener("click", function () { hideConfirm(true); });
  retryButton.addEventListener("click", function () {
    if (noticeMode === "offline") {
      probe();
    } else if (noticeMode === "busy") {
      clearTimeout(holdTimer);
      holdTimer = null;
      pump();
    } else if (noticeMode === "greet") {
      hideNotice();
      greet();
    } else {
      hideNotice();
      submit();
      input.focus();
    }
  });

  function submit() {
    var text = input.value;
    var reuse = retryItem && retryItem.text === text ? retryItem : null;
    if (send(text, reuse && reuse.payload, reuse) && input.value === text) {
      input.value = "";
      updateCounter();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit")); }
    }
  });
  input.addEventListener("input", updateCounter);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      if (!confirmBox.hidden) { hideConfirm(true); } else { closePanel(); }
    } else if (event.key === "Tab") {
      trapFocus(event);
    }
  });
  if (phoneQuery && phoneQuery.addEventListener) {
    phoneQuery.addEventListener("change", function () { updateModal(); fitToVisualViewport(); });
  }

  /** Back online, or back to the tab: don't wait for the next scheduled try. */
  function retrySoon() {
    if (offline) { clearTimeout(retryTimer); probe(); }
  }
  window.addEventListener("online", retrySoon);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { retrySoon(); } });
  window.addEventListener("storage", function (event) { // another tab started afresh or added messages
    if (event.key !== storageKey) { return; }
    if (replacedElsewhere()) { followOtherTab(); return; } // even with an answer pending here: it is stale
    if (!outbox.length && !greeting) { state = loadState(); renderHistory(); updateUnread(); }
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
    if (serverConfig.max_message_chars > 0) { maxChars = serverConfig.max_message_chars; }
    renderHelp();
    renderHistory();
    updateCounter();
    updateUnread();
    loadServerConfig().catch(function () { /* the first send or open will notice and reconnect */ });
    if (config.open || (uiStorage && uiStorage.getItem(storageKey + ":open"))) { openPanel(false); }
    window.ClinicChat = { open: openPanel, close: closePanel, newConversation: startNewConversation };
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
