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

  // Comparison picker: suggest cities by any of their names while typing. The suggestions
  // read "Odesa (Ukraine)"; the form still sends the slug, which the address then shows.
  var picker = document.querySelector("form.picker[data-suggest]");
  if (!picker || !window.fetch) return;
  var list = document.getElementById("city-options");
  var regions = window.Intl && Intl.DisplayNames ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
  var slugs = new Map(); // what an option reads -> the slug it stands for
  var timer = null;
  var last = "";

  function countryName(code) {
    try {
      return (regions && code && regions.of(code)) || code;
    } catch (error) {
      return code; // a code the browser does not know
    }
  }

  function optionText(city) {
    var text = city.name + (city.country ? " (" + countryName(city.country) + ")" : "");
    var taken = slugs.get(text);
    // Two cities that read alike (two Springfields) are told apart by their slugs.
    return taken && taken !== city.slug ? text + " · " + city.slug : text;
  }

  picker.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches("input[name=cities]")) return;
    var text = input.value.trim();
    clearTimeout(timer);
    if (text.length < 2 || text === last || slugs.has(text)) return;
    timer = setTimeout(function () {
      last = text;
      fetch(picker.dataset.suggest + "?q=" + encodeURIComponent(text), {
        headers: { Accept: "application/json" },
      })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (data) {
          list.replaceChildren.apply(list, data.results.map(function (city) {
            var option = document.createElement("option");
            option.value = optionText(city);
            option.dataset.slug = city.slug;
            slugs.set(option.value, city.slug);
            return option;
          }));
        })
        .catch(function () { /* suggestions are a convenience; typing still works */ });
    }, 150);
  });

  picker.addEventListener("submit", function () {
    Array.prototype.forEach.call(picker.querySelectorAll("input[name=cities]"), function (input) {
      var unchanged = input.dataset.slug && input.value === input.defaultValue;
      var slug = unchanged ? input.dataset.slug : slugs.get(input.value.trim());
      if (slug) input.value = slug;
    });
  });
})();
