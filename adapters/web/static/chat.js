// KomInn web chat: an enhancement only. Without this script the forms post and the page
// reloads; with it, a turn is posted with fetch and the answer appended to the log.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var controls = document.getElementById("controls");
  if (!log || !controls || !window.fetch || !window.FormData || !window.URLSearchParams) {
    return;
  }

  function enhance() {
    // At the place step: offer the browser's position (it asks the person first).
    var place = controls.querySelector("form.location");
    if (place && navigator.geolocation) {
      place.hidden = false;
      place.querySelector(".share-location").addEventListener("click", function () {
        navigator.geolocation.getCurrentPosition(function (position) {
          place.elements.latitude.value = String(position.coords.latitude);
          place.elements.longitude.value = String(position.coords.longitude);
          post(place, null);
        }, function () { /* refused or unavailable: the person types the place */ });
      });
    }
  }

  controls.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    event.preventDefault();
    post(form, event.submitter);
  });
  enhance();

  function post(form, submitter) {
    var data = new FormData(form);
    if (submitter && submitter.name) {
      data.append(submitter.name, submitter.value);
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
      enhance();
      var field = document.getElementById("message");
      var first = controls.querySelector(".choices button");
      (first || field).focus();
      var last = log.lastElementChild;
      if (last && last.scrollIntoView) { last.scrollIntoView({ block: "nearest" }); }
    }).catch(function () {
      window.location.assign("/chat");  // show what the server has
    });
  }
})();
