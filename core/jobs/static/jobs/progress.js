// Keeps the jobs shown on a page up to date: every element with data-job (the URL of the job's JSON)
// gets its <progress>, its .job-status text and its download link refreshed until the job has ended.
(function () {
  "use strict";
  var ENDED = ["done", "failed"];

  function show(row, job) {
    row.setAttribute("data-job-status", job.status);
    var bar = row.querySelector("progress");
    if (bar) { bar.value = job.progress; }
    var status = row.querySelector(".job-status");
    if (status) { status.textContent = job.status === "failed" ? "failed: " + job.error : job.status; }
    var link = row.querySelector("a.job-download");
    if (link && job.status === "done" && job.result && job.result.download) {
      link.href = job.result.download;
      link.hidden = false;
    }
  }

  function poll() {
    var rows = Array.prototype.filter.call(document.querySelectorAll("[data-job]"), function (row) {
      return ENDED.indexOf(row.getAttribute("data-job-status")) < 0;
    });
    if (!rows.length) { return; }
    Promise.all(rows.map(function (row) {
      return fetch(row.getAttribute("data-job"), {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) { if (job) { show(row, job); } })
        .catch(function () {});
    })).then(function () { setTimeout(poll, 1500); });
  }

  document.addEventListener("DOMContentLoaded", poll);
})();
