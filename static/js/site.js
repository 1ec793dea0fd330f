// Enhancements only: every page works without this file.
(function () {
  "use strict";

  // Print every group of ties, not only the open ones; restore the reader's choice after.
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details.tie-group"), function (d) {
      return !d.open;
    });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closed.forEach(function (d) { d.open = false; });
    closed = [];
  });

  // Comparison picker: suggest cities by any of their names while typing.
  var picker = document.querySelector("form.picker[data-suggest]");
  if (!picker || !window.fetch) return;
  var list = document.getElementById("city-options");
  var timer = null;
  var last = "";
  picker.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches("input[name=cities]")) return;
    var text = input.value.trim();
    clearTimeout(timer);
    if (text.length < 2 || text === last) return;
    timer = setTimeout(function () {
      last = text;
      fetch(picker.dataset.suggest + "?q=" + encodeURIComponent(text), {
        headers: { Accept: "application/json" },
      })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (data) {
          list.replaceChildren.apply(list, data.results.map(function (city) {
            var option = document.createElement("option");
            option.value = city.slug;
            option.label = city.name + (city.country ? " (" + city.country + ")" : "");
            return option;
          }));
        })
        .catch(function () { /* suggestions are a convenience; typing still works */ });
    }, 150);
  });
})();
