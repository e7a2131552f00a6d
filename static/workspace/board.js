// The live order board: the new-order sound (browsers play sound only after a gesture, hence
// "Enable sound"), the tab title's count of new orders, the countdowns, and a poll that waits
// while someone is filling in a card's form.
(function () {
  "use strict";
  var RING_EVERY_MS = 4000;
  var audio = document.getElementById("new-order-sound");
  var enableButton = document.getElementById("sound-enable");
  var ackButton = document.getElementById("sound-ack");
  var stateText = document.getElementById("sound-state");
  var baseTitle = document.title;
  var acknowledged = new Set(JSON.parse(sessionStorage.getItem("oc-board-ack") || "[]"));
  var soundOn = localStorage.getItem("oc-board-sound") === "on";
  var ringTimer = null;
  var agoTemplate = document.querySelector(".board-page").dataset.ago;

  function newOrders() {
    return Array.prototype.map.call(
      document.querySelectorAll('[data-column="new"] .card'), function (card) { return card.dataset.order; });
  }

  function unacknowledged() {
    return newOrders().filter(function (no) { return !acknowledged.has(no); });
  }

  function ring() {
    if (!soundOn || !audio) { return; }
    audio.currentTime = 0;
    var played = audio.play();
    if (played && played.catch) { played.catch(function () { setSoundOn(false); }); }
  }

  function update() {
    var count = newOrders().length;
    document.title = (count ? "(" + count + ") " : "") + baseTitle;
    var waiting = unacknowledged();
    ackButton.hidden = waiting.length === 0;
    document.body.classList.toggle("ringing", waiting.length > 0);
    if (waiting.length && !ringTimer) {
      ring();
      ringTimer = setInterval(function () {
        if (unacknowledged().length) { ring(); } else { stopRinging(); }
      }, RING_EVERY_MS);
    } else if (!waiting.length) {
      stopRinging();
    }
    tick();
  }

  function stopRinging() {
    if (ringTimer) { clearInterval(ringTimer); ringTimer = null; }
  }

  function setSoundOn(on) {
    soundOn = on;
    localStorage.setItem("oc-board-sound", on ? "on" : "off");
    enableButton.textContent = on ? enableButton.dataset.mute : enableButton.dataset.enable;
    enableButton.setAttribute("aria-pressed", on ? "true" : "false");
    stateText.textContent = on ? stateText.dataset.on : stateText.dataset.off;
  }

  enableButton.addEventListener("click", function () {
    if (soundOn) { setSoundOn(false); stopRinging(); return; }
    // The click is the gesture that lets the page play sound from now on.
    audio.muted = true;
    var unlocked = audio.play();
    var done = function () { audio.pause(); audio.muted = false; setSoundOn(true); stopRinging(); update(); };
    if (unlocked && unlocked.then) { unlocked.then(done, function () { setSoundOn(false); }); } else { done(); }
  });

  ackButton.addEventListener("click", function () {
    newOrders().forEach(function (no) { acknowledged.add(no); });
    sessionStorage.setItem("oc-board-ack", JSON.stringify(Array.from(acknowledged).slice(-500)));
    stopRinging();
    update();
  });

  function format(seconds) {
    var sign = seconds < 0 ? "-" : "";
    seconds = Math.abs(Math.round(seconds));
    var minutes = Math.floor(seconds / 60);
    return sign + minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - now) / 1000;
      el.textContent = format(left);
      el.classList.toggle("is-late", left < 60);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var minutes = Math.max(0, Math.floor((now - Date.parse(el.dataset.since)) / 60000));
      el.textContent = agoTemplate.replace("{n}", minutes);
    });
  }

  // Do not replace the columns while someone is choosing a prep time or a reject reason.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var columns = document.getElementById("board-columns");
    var polling = event.detail.elt === columns && event.detail.requestConfig.verb === "get";
    if (!polling) { return; }
    var active = document.activeElement;
    if (columns.querySelector("details[open]") || (active && columns.contains(active) && active.matches("select, input"))) {
      event.preventDefault();
    }
  });
  document.body.addEventListener("htmx:afterSwap", update);
  setInterval(tick, 1000);
  setSoundOn(soundOn);
  update();
}());
