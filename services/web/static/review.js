// Video review: one player on the page; "Play from 0:03" on a person's card jumps the
// player to where that person first appears and plays. Without JavaScript the button is
// a link to the clean preview with a media fragment (#t=3.2), which browsers honour.
(function () {
  "use strict";
  // How many people are ticked "May be shown" (the boxes are on the cards, in the
  // approve form by their form attribute).
  const count = document.querySelector("[data-role=cleared-count]");
  if (count) {
    const boxes = document.querySelectorAll("input[data-role=clear-track]");
    const update = function () {
      count.textContent = String(Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length);
    };
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  const player = document.getElementById("player");
  if (!player) return;

  function playFrom(seconds) {
    const seek = function () {
      player.currentTime = Math.max(0, seconds);
      const started = player.play();
      if (started && started.catch) started.catch(function () { /* the user can press play */ });
    };
    player.scrollIntoView({ block: "nearest", behavior: "smooth" });
    if (player.readyState >= 1) {
      seek();
    } else {
      // Nothing loaded yet (preload="none"): load, then seek once the length is known.
      player.preload = "auto";
      player.addEventListener("loadedmetadata", seek, { once: true });
      player.load();
    }
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-play-from]");
    if (!button) return;
    const seconds = parseFloat(button.dataset.playFrom);
    if (!isFinite(seconds)) return;
    event.preventDefault();
    playFrom(seconds);
    const card = button.closest("[data-track]");
    document.querySelectorAll(".track.playing").forEach(function (c) { c.classList.remove("playing"); });
    if (card) card.classList.add("playing");
  });
})();
