// Tenure: keyboard shortcuts for the pages, and a refused form brought into view. No framework, no network;
// pages work without it.
(function () {
  "use strict";
  var pendingG = false;
  var selected = -1;

  function typing(event) {
    var t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function rows() {
    var table = document.querySelector("table[data-rows]");
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr")) : [];
  }
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("selected"); });
    all[index].classList.add("selected");
    all[index].scrollIntoView({ block: "nearest" });
    selected = index;
  }
  function current() {
    var all = rows();
    return selected >= 0 && selected < all.length ? all[selected] : null;
  }
  function submitAction(key) {
    var row = current();
    if (!row) { return false; }
    var form = row.querySelector('form[data-action="' + key + '"]');
    if (form) { form.submit(); return true; }
    return false;
  }
  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (help) { help.hidden = show === undefined ? !help.hidden : !show; }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") { toggleHelp(false); if (typing(event)) { event.target.blur(); } return; }
    if (typing(event)) { return; }
    if (pendingG) {
      pendingG = false;
      var link = document.querySelector('nav a[data-go="' + event.key + '"]');
      if (link) { event.preventDefault(); window.location.href = link.getAttribute("href"); }
      return;
    }
    switch (event.key) {
      case "g": pendingG = true; setTimeout(function () { pendingG = false; }, 1500); break;
      case "j": event.preventDefault(); select(selected + 1); break;
      case "k": event.preventDefault(); select(selected - 1); break;
      case "o":
      case "Enter": {
        var row = current();
        var open = row && (row.querySelector("a[data-open]") || row.querySelector("a"));
        if (open) { event.preventDefault(); window.location.href = open.getAttribute("href"); }
        break;
      }
      case "c": case "a":
        if (submitAction(event.key)) { event.preventDefault(); }
        break;
      case "n": case "p": {
        var page = document.querySelector('.pager a[data-key="' + event.key + '"]');
        if (page) { event.preventDefault(); window.location.href = page.getAttribute("href"); }
        break;
      }
      case "/": {
        var find = document.querySelector("[data-find]");
        if (find) { event.preventDefault(); find.focus(); find.select(); }
        break;
      }
      case "f": {
        var search = document.querySelector("[data-search]");
        if (search) { event.preventDefault(); search.focus(); search.select && search.select(); }
        break;
      }
      case "?": event.preventDefault(); toggleHelp(); break;
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
  document.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-check-all")) {
      var form = event.target.form;
      Array.prototype.forEach.call(form.querySelectorAll('input[name="number"]'), function (box) {
        box.checked = event.target.checked;
      });
    }
  });
  // a form sent back refused: bring it into view, its first marked field focused; the current tab in view
  document.addEventListener("DOMContentLoaded", function () {
    var tab = document.querySelector("nav.tabs a.current");
    if (tab && tab.parentNode.scrollWidth > tab.parentNode.clientWidth) {
      tab.parentNode.scrollLeft = tab.offsetLeft - tab.parentNode.offsetLeft - 16;
    }
    var refused = document.querySelector(".form-refusal, ul.problems");
    if (!refused) { return; }
    var form = refused.closest("form");
    var first = form && form.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea");
    refused.scrollIntoView({ block: "start" });
    if (first) { first.focus({ preventScroll: true }); }
  });
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("table[data-rows] tbody tr");
    if (row) { select(rows().indexOf(row)); }
  });
  // a stacked table row on a phone names each cell by its column (CSS shows `data-label`)
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.rows"), function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
        Array.prototype.forEach.call(row.children, function (cell, i) {
          if (heads[i] && !cell.hasAttribute("data-label") && !cell.hasAttribute("colspan")) { cell.setAttribute("data-label", heads[i]); }
        });
      });
    });
  });

  // the time form says who would pay before the time is saved (GET …/time/preview): a former client, work
  // nothing covers
  document.addEventListener("DOMContentLoaded", function () {
    var out = document.querySelector("[data-preview]");
    var form = out && out.closest("form");
    if (!form) { return; }
    var timer = null;
    function ask() {
      var minutes = form.querySelector('[name="minutes"]'), work = form.querySelector('[name="work_type"]');
      var day = form.querySelector('[name="day"]');
      if (!minutes || !work || !minutes.value) { return; }
      var query = "?minutes=" + encodeURIComponent(minutes.value) + "&work_type=" + encodeURIComponent(work.value) +
        (day && day.value ? "&day=" + encodeURIComponent(day.value) : "");
      fetch(out.getAttribute("data-preview") + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (found) {
          if (found.problem) { out.textContent = found.problem; out.className = "time-preview small problem"; return; }
          var warn = found.warnings && found.warnings.length;
          out.textContent = warn ? found.warnings.join(" ") : "Would be paid: " + found.paid + ".";
          out.className = "time-preview small" + (warn ? " warn" : "");
        })
        .catch(function () { out.textContent = ""; });
    }
    form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 250); });
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(ask, 50); });
    ask();
  });

  // the navigation folds into a menu on a narrow screen (without this script it stays open, wrapped)
  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector(".menu-button");
    var nav = document.getElementById("main-nav");
    if (!button || !nav) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      nav.classList.toggle("open", open);
    });
  });

  // the search box: answers as you type (GET /search, JSON), chosen with the arrow keys, opened with Enter
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-find]");
    var list = document.getElementById("find-hits");
    if (!box || !list) { return; }
    var timer = null, asked = "", active = -1;
    function options() { return Array.prototype.slice.call(list.querySelectorAll("[role=option]")); }
    function close() {
      list.hidden = true; box.setAttribute("aria-expanded", "false"); box.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function choose(index) {
      var all = options();
      if (!all.length) { return; }
      active = (index + all.length) % all.length;
      all.forEach(function (o, i) { o.setAttribute("aria-selected", String(i === active)); });
      box.setAttribute("aria-activedescendant", all[active].id);
      all[active].scrollIntoView({ block: "nearest" });
    }
    function show(hits, query) {
      list.textContent = "";
      if (!hits.length) {
        var none = document.createElement("li");
        none.className = "none"; none.textContent = "Nothing found for \u201c" + query + "\u201d";
        list.appendChild(none);
      }
      hits.forEach(function (hit, i) {
        var item = document.createElement("li");
        item.id = "find-hit-" + i; item.setAttribute("role", "option"); item.setAttribute("aria-selected", "false");
        var link = document.createElement("a");
        link.href = hit.page; link.tabIndex = -1;
        var kind = document.createElement("span"); kind.className = "kind"; kind.textContent = hit.kind;
        var label = document.createElement("span"); label.className = "label"; label.textContent = hit.label;
        var detail = document.createElement("span"); detail.className = "detail"; detail.textContent = hit.detail;
        link.appendChild(kind); link.appendChild(label); link.appendChild(detail);
        item.appendChild(link); list.appendChild(item);
      });
      list.hidden = false; box.setAttribute("aria-expanded", "true"); active = -1;
    }
    function ask() {
      var query = box.value.trim();
      if (query === asked) { return; }
      asked = query;
      if (!query) { close(); return; }
      fetch("/search?q=" + encodeURIComponent(query), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (found) { if (found && found.query === box.value.trim()) { show(found.hits, found.query); } })
        .catch(function () { /* the form still works: Enter opens the search page */ });
    }
    box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 120); });
    box.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") { event.preventDefault(); if (list.hidden) { asked = ""; ask(); } else { choose(active + 1); } }
      else if (event.key === "ArrowUp") { event.preventDefault(); choose(active - 1); }
      else if (event.key === "Enter" && active >= 0) {
        event.preventDefault(); window.location.href = options()[active].querySelector("a").getAttribute("href");
      } else if (event.key === "Escape") { close(); }
    });
    box.addEventListener("blur", function () { setTimeout(close, 200); });
  });
})();
