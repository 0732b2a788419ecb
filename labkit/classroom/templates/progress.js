// The live rows: every `row` event replaces (or adds) one student's row. Text is set with
// textContent only, so a name with markup in it stays text.
(function () {
  "use strict";
  const body = document.querySelector("#class tbody");
  const stuckAfter = Number(document.body.dataset.stuckAfter) * 1000;
  const live = document.getElementById("live");

  function cell(cls, text) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    return td;
  }

  function render(row) {
    const tr = document.createElement("tr");
    tr.dataset.key = row.key;
    tr.dataset.changedAt = String(row.changed_at);
    tr.dataset.done = row.done ? "true" : "false";
    tr.append(cell("student", row.student), cell("host", row.host), cell("lab", row.lab));
    const checks = cell("checks", "");
    for (const [id, ok] of Object.entries(row.checks)) {
      const span = document.createElement("span");
      span.className = "check " + (ok ? "ok" : "fail");
      span.title = id;
      span.textContent = (ok ? "✓ " : "✗ ") + id;
      checks.append(span);
    }
    tr.append(checks, cell("since", ""));
    return tr;
  }

  function ago(seconds) {
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min ago";
  }

  function tick() {
    const now = Date.now();
    for (const tr of body.rows) {
      const since = now - Number(tr.dataset.changedAt) * 1000;
      tr.querySelector("td.since").textContent = ago(Math.max(0, since / 1000));
      tr.classList.toggle("stuck", tr.dataset.done !== "true" && since > stuckAfter);
      tr.classList.toggle("done", tr.dataset.done === "true");
    }
  }

  function upsert(row) {
    const fresh = render(row);
    const old = Array.from(body.rows).find((tr) => tr.dataset.key === row.key);
    if (old) {
      old.replaceWith(fresh);
    } else {
      const after = Array.from(body.rows).find((tr) => tr.querySelector("td.student").textContent.localeCompare(row.student) > 0);
      body.insertBefore(fresh, after || null);
    }
    document.getElementById("empty").hidden = true;
    tick();
  }

  const events = new EventSource("/classroom/events");
  events.addEventListener("row", (e) => upsert(JSON.parse(e.data)));
  events.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  tick();
  setInterval(tick, 1000);
})();
