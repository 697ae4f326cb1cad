// KomInn web chat: an enhancement only. Without this script the forms post and the page
// reloads; with it, a turn is posted with fetch and the answer appended to the log.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var controls = document.getElementById("controls");
  if (!log || !controls || !window.fetch || !window.FormData || !window.URLSearchParams) {
    return;
  }

  controls.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.append(event.submitter.name, event.submitter.value);
    }
    var buttons = controls.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
    fetch(form.action, {
      method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (answer) {
      log.insertAdjacentHTML("beforeend", answer.log);
      controls.innerHTML = answer.controls;
      var field = document.getElementById("message");
      var first = controls.querySelector(".choices button");
      (first || field).focus();
      var last = log.lastElementChild;
      if (last && last.scrollIntoView) { last.scrollIntoView({ block: "nearest" }); }
    }).catch(function () {
      window.location.assign("/chat");  // show what the server has
    });
  });
})();
