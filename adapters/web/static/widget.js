// KomInn widget for the municipality's own site:
//   <script src="https://kominn.example.kommune.no/widget.js" defer></script>
// adds a "Har du en idé?" button opening KomInn's chat in a new window. Only sites listed in
// KOMINN_WEB_ORIGINS get the button (the label comes from KomInn with CORS for them alone).
// No inline styles or markup: the host page's CSP stays as it is.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch) { return; }
  var base = new URL(script.src).origin;
  var lang = (document.documentElement.lang || "nb").slice(0, 2);
  fetch(base + "/widget.json?lang=" + encodeURIComponent(lang), { credentials: "omit" })
    .then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    })
    .then(function (config) {
      var link = document.createElement("a");
      link.href = base + config.chat;
      link.target = "_blank";
      link.rel = "noopener";
      link.id = "kominn-widget";
      link.textContent = config.label;
      link.setAttribute("aria-label", config.label + " (" + config.opens + ")");
      var s = link.style;
      s.position = "fixed"; s.right = "1rem"; s.bottom = "1rem"; s.zIndex = "2147483000";
      s.padding = "0.75rem 1.25rem"; s.borderRadius = "2rem"; s.background = "#0b4f8a";
      s.color = "#ffffff"; s.font = "bold 1rem system-ui, sans-serif";
      s.textDecoration = "none"; s.boxShadow = "0 2px 8px rgba(0,0,0,0.3)";
      link.addEventListener("focus", function () { s.outline = "3px solid #b35900"; });
      link.addEventListener("blur", function () { s.outline = ""; });
      document.body.appendChild(link);
    })
    .catch(function () { /* not an allowed site, or KomInn is away: no button */ });
})();
