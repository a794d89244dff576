// The rules editor checks as the librarian types, through the console's JSON API
// (POST /admin/api/rules/check). Without JavaScript the Check button does the same.
// It also keeps the line numbers beside the editor (the gutter) in step with the text.
(function () {
  "use strict";
  var text = document.getElementById("text");
  var live = document.getElementById("live-findings");
  var gutter = document.getElementById("gutter");
  if (!text || !live) { return; }
  function numberLines() {
    if (!gutter) { return; }
    var lines = Math.max(text.value.split("\n").length, text.rows);
    var numbers = [];
    for (var i = 1; i <= lines; i += 1) { numbers.push(i); }
    gutter.textContent = numbers.join("\n") + "\n";
    gutter.scrollTop = text.scrollTop;
  }
  text.addEventListener("scroll", function () { if (gutter) { gutter.scrollTop = text.scrollTop; } });
  text.addEventListener("input", numberLines);
  var form = text.form;
  var token = form.querySelector("input[name=csrf_token]").value;
  var name = live.getAttribute("data-name") || "check.txt";
  var timer = null;
  function show(answer) {
    live.textContent = "";
    var heading = document.createElement("p");
    heading.textContent = answer.findings.length ? live.getAttribute("data-some") : live.getAttribute("data-none");
    live.appendChild(heading);
    if (!answer.findings.length) { return; }
    var list = document.createElement("ul");
    answer.findings.forEach(function (f) {
      var item = document.createElement("li");
      item.className = f.severity;
      item.textContent = live.getAttribute("data-line") + " " + f.line + ": " + (live.getAttribute("data-" + f.severity) || f.severity) + ": " + f.message;
      list.appendChild(item);
    });
    live.appendChild(list);
  }
  function check() {
    fetch("/admin/api/rules/check", {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify({text: text.value, name: name})
    }).then(function (r) { return r.ok ? r.json() : null; }).then(function (a) { if (a) { show(a); } });
  }
  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 600);
  });
}());
