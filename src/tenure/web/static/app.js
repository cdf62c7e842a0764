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
})();
