// Staff upload: several files, drag and drop, a progress bar per file, then live
// status from the face check. No framework; each file is one POST to /upload/files.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const csrf = form.dataset.csrf;
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  const queue = document.getElementById("queue");
  const problem = document.getElementById("form-problem");
  // Polling interval for screening status, in milliseconds.
  const POLL_MS = 1500;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function sizeText(bytes) {
    if (bytes < 1024 * 1024) return Math.max(1, Math.round(bytes / 1024)) + " KB";
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function fieldsOk() {
    const missing = [];
    if (!form.event.value.trim()) missing.push("the event");
    if (!form.purpose.value) missing.push("what they are for");
    if (missing.length) {
      problem.textContent = "Before adding photos, fill in " + missing.join(" and ") + ".";
      problem.hidden = false;
      (form.event.value.trim() ? form.purpose : form.event).focus();
      return false;
    }
    problem.hidden = true;
    return true;
  }

  function setState(row, status, label, summary, tone) {
    const state = row.querySelector("[data-role=state]");
    state.className = "state state-" + (tone || status);
    state.textContent = label;
    row.querySelector("[data-role=summary]").textContent = summary || "";
    row.dataset.status = status;
  }

  function poll(row, id) {
    fetch("/upload/status/" + encodeURIComponent(id), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (s) {
        setState(row, s.status, s.label, s.summary, s.tone);
        if (!s.done) setTimeout(function () { poll(row, id); }, POLL_MS);
      })
      .catch(function () {
        setState(row, "error", "Couldn't get the status", "Reload the page to see it.");
      });
  }

  function send(file) {
    const row = el("li", "file");
    const name = el("div", "file-name", file.name + " ");
    name.appendChild(el("span", "hint", "· " + sizeText(file.size)));
    const bar = el("progress", "bar");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress of " + file.name);
    const state = el("div", "state state-uploading", "Uploading… 0%");
    state.dataset.role = "state";
    const summary = el("div", "summary");
    summary.dataset.role = "summary";
    row.append(name, bar, state, summary);
    queue.prepend(row);

    const data = new FormData();
    data.append("file", file, file.name);
    data.append("event", form.event.value.trim());
    data.append("purpose", form.purpose.value);
    data.append("device", form.querySelector("input[name=device]:checked").value);
    data.append("captured_on", form.captured_on.value);
    data.append("session_id", form.session_id ? form.session_id.value : "");

    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/upload/files");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      bar.value = pct;
      state.textContent = "Uploading… " + pct + "%";
    };
    xhr.onload = function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 202) {
        bar.value = 100;
        row.dataset.media = body.id;
        setState(row, body.status, body.label, body.summary, body.tone);
        (body.notices || []).forEach(function (n) { row.appendChild(el("p", "notice warn", n)); });
        poll(row, body.id);
      } else {
        bar.remove();
        setState(row, "error", "Not uploaded", body.detail || "The upload failed (" + xhr.status + ").");
      }
    };
    xhr.onerror = function () {
      bar.remove();
      setState(row, "error", "Not uploaded", "The connection dropped. Try again.");
    };
    xhr.send(data);
  }

  function take(files) {
    if (!files || !files.length) return;
    if (!fieldsOk()) return;
    Array.prototype.forEach.call(files, send);
  }

  input.addEventListener("change", function () { take(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    take(e.dataTransfer && e.dataTransfer.files);
  });
  // The visible "Choose files" button opens the picker; the file input itself is not a
  // Tab stop of its own (it is invisible).
  document.getElementById("choose").addEventListener("click", function () { input.click(); });
  drop.addEventListener("keydown", function (e) {
    if (e.target === drop && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); input.click(); }
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  // A session is for one purpose: choosing it chooses the purpose, and fixes it.
  if (form.session_id) {
    form.session_id.addEventListener("change", function () {
      const chosen = form.session_id.selectedOptions[0];
      const purpose = chosen ? chosen.dataset.purpose : "";
      if (purpose) form.purpose.value = purpose;
      form.purpose.disabled = Boolean(purpose);
    });
  }

  // Rows already on the page that are still being checked keep updating too.
  document.querySelectorAll("li.file[data-media][data-done=false]").forEach(function (row) {
    poll(row, row.dataset.media);
  });
})();
