// KomInn web chat: an enhancement only. Without this script the forms post and the page
// reloads; with it, a turn is posted with fetch and the answer appended to the log, and
// notices that come while the chat is open (a status change, a benefit check) are fetched
// every few seconds into the same log, whose aria-live region announces them.
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
  listen();

  function show(answer) {
    log.insertAdjacentHTML("beforeend", answer.log);
    var last = log.lastElementChild;
    if (last && last.scrollIntoView) { last.scrollIntoView({ block: "nearest" }); }
  }

  function listen() {
    var path = log.getAttribute("data-events");
    var every = 1000 * (parseInt(log.getAttribute("data-poll"), 10) || 5);
    if (!path) { return; }
    var wait = every;
    function ask() {
      if (document.hidden) { window.setTimeout(ask, wait); return; }
      fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 204) { return null; }
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        }).then(function (answer) {
          wait = every;
          if (answer) {
            show(answer);
            var field = document.getElementById("message");
            if (answer.controls && !(field && field.value)) {  // never lose what is typed
              controls.innerHTML = answer.controls;
              enhance();
            }
          }
        }).catch(function () {
          wait = Math.min(wait * 2, 60000);  // the server is away: ask less often
        }).then(function () { window.setTimeout(ask, wait); });
    }
    window.setTimeout(ask, wait);
  }

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
      if (response.status === 403) {  // no cookie (blocked) or a stale page: the server's
        form.submit();                // page says why, in the person's language
        return null;
      }
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (answer) {
      if (!answer) { return; }
      if (answer.lang && answer.lang !== document.documentElement.lang) {
        window.location.assign("/chat");  // the language changed (/sprak): the whole page
        return;
      }
      show(answer);
      controls.innerHTML = answer.controls;
      enhance();
      var field = document.getElementById("message");
      var first = controls.querySelector(".choices button");
      // A step that asks for typed text (with only "Hopp over" beside it) wants the field.
      var typed = controls.querySelector("form.send[data-typed]");
      (typed || !first ? field : first).focus();
    }).catch(function () {
      window.location.assign("/chat");  // show what the server has
    });
  }
})();
