// The map of partners and the network drawing as tools: enhancements only. Without this file
// the map is a picture with a dot per partner (named on hover) and the network a drawing of
// links whose nodes are links; both say the same in text beside them.
(function () {
  "use strict";
  if (window.cityDiplomacyMap) return; // the include may be on a page twice
  window.cityDiplomacyMap = true;

  var SVG_NS = "http://www.w3.org/2000/svg";
  var MAX_ZOOM = 64;
  var FINE_FROM = 3; // the 1:50m shapes are loaded from this zoom on
  var DOT = 5; // px: a partner's dot
  var TARGET = 12; // px: the area a finger or pointer can hit around it
  var GAP = 14; // px: dots closer than this are drawn as one group
  var LABEL_FONT = 13; // px

  function svgElement(name, attributes) {
    var element = document.createElementNS(SVG_NS, name);
    Object.keys(attributes || {}).forEach(function (key) {
      element.setAttribute(key, attributes[key]);
    });
    return element;
  }

  function round(value) {
    return Math.round(value * 1000) / 1000;
  }

  function listNames(names) {
    if (names.length <= 2) return names.join(" and ");
    return names.slice(0, 2).join(", ") + " and " + (names.length - 2) + " more";
  }

  function radiusOf(count) {
    return count > 1 ? Math.min(9 + 2 * Math.log2(count), 16) : DOT;
  }

  function centre(group, points) {
    var sx = 0;
    var sy = 0;
    group.members.forEach(function (i) {
      sx += points[i].x;
      sy += points[i].y;
    });
    group.x = sx / group.members.length;
    group.y = sy / group.members.length;
  }

  // Gathers points closer than GAP screen pixels into groups, greedily in a fixed order so
  // that the same zoom always gives the same groups; then joins groups whose circles would
  // touch, until none do.
  function cluster(points, scale) {
    var gap = GAP / scale;
    var cells = new Map();
    var groups = [];
    points.forEach(function (point, index) {
      var cx = Math.floor(point.x / gap);
      var cy = Math.floor(point.y / gap);
      var found = null;
      for (var i = -1; i <= 1 && !found; i++) {
        for (var j = -1; j <= 1 && !found; j++) {
          var near = cells.get(cx + i + ":" + (cy + j)) || [];
          for (var n = 0; n < near.length; n++) {
            if (Math.hypot(near[n].x - point.x, near[n].y - point.y) < gap) {
              found = near[n];
              break;
            }
          }
        }
      }
      if (found) {
        found.members.push(index);
      } else {
        var group = { x: point.x, y: point.y, members: [index] };
        groups.push(group);
        var key = cx + ":" + cy;
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(group);
      }
    });
    groups.forEach(function (group) { centre(group, points); });
    var merged = true;
    while (merged) {
      merged = false;
      for (var a = 0; a < groups.length; a++) {
        for (var b = a + 1; b < groups.length; b++) {
          var one = groups[a];
          var two = groups[b];
          var apart = Math.hypot(one.x - two.x, one.y - two.y) * scale;
          if (apart < radiusOf(one.members.length) + radiusOf(two.members.length) + 3) {
            one.members = one.members.concat(two.members).sort(function (x, y) { return x - y; });
            centre(one, points);
            groups.splice(b, 1);
            b = a; // the grown group may now touch one already passed
            merged = true;
          }
        }
      }
    }
    return groups;
  }

  function WorldMap(figure) {
    this.figure = figure;
    this.svg = figure.querySelector(".map__svg");
    var box = this.svg.viewBox.baseVal;
    this.world = { x: box.x, y: box.y, w: box.width, h: box.height };
    this.view = { x: box.x, y: box.y, w: box.width, h: box.height };
    this.points = Array.prototype.map.call(figure.querySelectorAll(".map__dot"), function (dot) {
      return {
        x: parseFloat(dot.getAttribute("cx")),
        y: parseFloat(dot.getAttribute("cy")),
        name: dot.getAttribute("data-name") || "",
      };
    });
    // West to east, then north to south: the order Tab follows.
    this.points.sort(function (a, b) { return a.x - b.x || a.y - b.y; });
    var origin = figure.querySelector(".map__origin");
    this.origin = origin && {
      x: parseFloat(origin.getAttribute("cx")),
      y: parseFloat(origin.getAttribute("cy")),
      name: origin.getAttribute("data-name") || "",
    };
    this.markers = new Map(); // key -> element, kept while its group stays the same
    this.groupsFor = null;
    this.pointers = new Map();
    this.build();
    this.render();
  }

  WorldMap.prototype.build = function () {
    var figure = this.figure;
    var svg = this.svg;
    figure.classList.add("map--enhanced");
    // A picture becomes a group of focusable places: role img would hide them.
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-roledescription", "map");
    svg.setAttribute("tabindex", "0");
    var help = figure.querySelector(".map__help");
    help.hidden = false;
    help.id = help.id || "map-help-" + Math.random().toString(36).slice(2, 8);
    svg.setAttribute("aria-describedby", help.id);
    this.status = figure.querySelector(".map__status");
    this.hint = figure.querySelector(".map__hint");
    this.controls = figure.querySelector(".map__controls");
    this.controls.hidden = false;
    this.leaders = svgElement("g", { class: "map__leaders", "aria-hidden": "true" });
    this.layer = svgElement("g", { class: "map__markers" });
    this.label = svgElement("g", { class: "map__label", "aria-hidden": "true" });
    this.labelBox = svgElement("rect", { rx: "0" });
    this.labelText = svgElement("text", {});
    this.label.append(this.labelBox, this.labelText);
    this.label.setAttribute("visibility", "hidden");
    svg.append(this.leaders, this.layer, this.label);

    var self = this;
    this.controls.addEventListener("click", function (event) {
      var button = event.target.closest("[data-zoom]");
      if (!button) return;
      var action = button.getAttribute("data-zoom");
      if (action === "reset") self.reset();
      else self.zoomAt(action === "in" ? 2 : 0.5);
    });
    figure.addEventListener("keydown", function (event) { self.onKey(event); });
    this.layer.addEventListener("click", function (event) { self.onMarkerClick(event); });
    // Focus listeners sit on the figure: Chromium makes an SVG element that has them
    // focusable, which would add a stop for Tab.
    figure.addEventListener("focusin", function (event) {
      if (self.layer.contains(event.target)) self.showLabel(event.target);
    });
    figure.addEventListener("focusout", function () { self.hideLabel(); });
    this.layer.addEventListener("pointerover", function (event) {
      var marker = event.target.closest(".map__marker");
      if (marker && event.pointerType === "mouse") self.showLabel(marker);
    });
    this.layer.addEventListener("pointerout", function (event) {
      var marker = event.target.closest(".map__marker");
      if (marker && event.pointerType === "mouse" && marker !== document.activeElement) {
        self.showLabel(self.layer.contains(document.activeElement) ? document.activeElement : null);
      }
    });
    svg.addEventListener("pointerdown", function (event) { self.onPointerDown(event); });
    svg.addEventListener("pointermove", function (event) { self.onPointerMove(event); });
    svg.addEventListener("pointerup", function (event) { self.onPointerUp(event); });
    svg.addEventListener("pointercancel", function (event) { self.onPointerUp(event); });
    svg.addEventListener("wheel", function (event) { self.onWheel(event); }, { passive: false });
    if (window.ResizeObserver) {
      new ResizeObserver(function () { self.render(); }).observe(svg);
    } else {
      window.addEventListener("resize", function () { self.render(); });
    }
  };

  WorldMap.prototype.zoom = function () {
    return this.world.w / this.view.w;
  };

  // Screen pixels per map unit at the current zoom.
  WorldMap.prototype.scale = function () {
    var width = this.svg.getBoundingClientRect().width || 1;
    return width / this.view.w;
  };

  WorldMap.prototype.clamp = function () {
    var world = this.world;
    var view = this.view;
    view.x = Math.min(Math.max(view.x, world.x), world.x + world.w - view.w);
    view.y = Math.min(Math.max(view.y, world.y), world.y + world.h - view.h);
  };

  // Zooms by `factor` keeping the map point (x, y) where it is on screen (the centre if none).
  WorldMap.prototype.zoomAt = function (factor, x, y) {
    var view = this.view;
    var world = this.world;
    if (x === undefined) {
      x = view.x + view.w / 2;
      y = view.y + view.h / 2;
    }
    var zoom = Math.min(Math.max(this.zoom() * factor, 1), MAX_ZOOM);
    var w = world.w / zoom;
    var h = world.h / zoom;
    view.x = x - (x - view.x) * (w / view.w);
    view.y = y - (y - view.y) * (h / view.h);
    view.w = w;
    view.h = h;
    this.clamp();
    this.render(true);
  };

  WorldMap.prototype.centreOn = function (x, y) {
    this.view.x = x - this.view.w / 2;
    this.view.y = y - this.view.h / 2;
    this.clamp();
  };

  WorldMap.prototype.pan = function (dx, dy) {
    this.view.x += dx;
    this.view.y += dy;
    this.clamp();
    this.render();
  };

  WorldMap.prototype.reset = function () {
    this.view = { x: this.world.x, y: this.world.y, w: this.world.w, h: this.world.h };
    this.render(true);
  };

  // The groups of the current zoom and width: recomputed only when either changes.
  WorldMap.prototype.groups = function (scale) {
    var key = this.zoom().toFixed(4) + "/" + scale.toFixed(4);
    if (this.groupsFor === key) return this.cached;
    var points = this.points;
    var found = cluster(points, scale);
    if (this.zoom() >= MAX_ZOOM - 1e-6) {
      // Fully zoomed in, places still closer than a dot (villages a kilometre apart, or
      // a city entered twice) are fanned out around their spot, each with a leader line.
      var spread = [];
      found.forEach(function (group) {
        if (group.members.length === 1) {
          spread.push(group);
          return;
        }
        var radius = (GAP + 2 * group.members.length) / scale;
        group.members.forEach(function (index, n) {
          var angle = (2 * Math.PI * n) / group.members.length - Math.PI / 2;
          spread.push({
            x: group.x + radius * Math.cos(angle),
            y: group.y + radius * Math.sin(angle),
            members: [index],
            from: { x: points[index].x, y: points[index].y },
          });
        });
      });
      found = spread;
    }
    found.sort(function (a, b) { return a.x - b.x || a.y - b.y; });
    this.groupsFor = key;
    this.cached = found;
    return found;
  };

  WorldMap.prototype.render = function (announce) {
    var view = this.view;
    var svg = this.svg;
    svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map(round).join(" "));
    var zoom = this.zoom();
    this.figure.classList.toggle("map--zoomed", zoom > 1.001);
    if (zoom >= FINE_FROM && !this.fine) {
      var coarse = svg.querySelector(".map__land");
      this.fine = svgElement("image", {
        class: "map__land map__land--fine",
        href: this.figure.getAttribute("data-fine-land"),
        x: coarse.getAttribute("x"),
        y: coarse.getAttribute("y"),
        width: coarse.getAttribute("width"),
        height: coarse.getAttribute("height"),
      });
      coarse.after(this.fine);
    }
    if (this.fine) this.fine.setAttribute("visibility", zoom >= FINE_FROM ? "visible" : "hidden");

    var scale = this.scale();
    var focused = this.layer.contains(document.activeElement) ? document.activeElement : null;
    var focusedMembers = focused && focused.dataset.members;
    var groups = this.groups(scale);
    var margin = TARGET / scale;
    var visible = groups.filter(function (g) {
      return g.x >= view.x - margin && g.x <= view.x + view.w + margin &&
        g.y >= view.y - margin && g.y <= view.y + view.h + margin;
    });
    var wanted = new Map();
    var self = this;
    var order = [];
    if (this.origin) order.push(this.originMarker(scale));
    visible.forEach(function (group) {
      var marker = self.marker(group, scale);
      wanted.set(marker.dataset.key, true);
      order.push(marker);
    });
    this.markers.forEach(function (marker, key) {
      if (!wanted.has(key) && marker !== self.originElement) {
        marker.remove();
        self.markers.delete(key);
      }
    });
    // Document order is Tab order: west to east. Only moved when out of place, so that
    // the focused place keeps its focus.
    var layer = this.layer;
    order.forEach(function (marker, i) {
      if (layer.children[i] !== marker) layer.insertBefore(marker, layer.children[i] || null);
    });
    this.leaders.replaceChildren.apply(this.leaders, visible.filter(function (g) {
      return g.from;
    }).map(function (g) {
      return svgElement("line", {
        x1: round(g.from.x), y1: round(g.from.y), x2: round(g.x), y2: round(g.y),
      });
    }));

    if (focused && !focused.isConnected && focusedMembers) {
      // Its group split (or joined another): focus the part of it nearest where it was.
      var members = " " + focusedMembers + " ";
      var fx = parseFloat(focused.dataset.x);
      var fy = parseFloat(focused.dataset.y);
      var next = null;
      var best = Infinity;
      this.markers.forEach(function (marker) {
        var shared = marker.dataset.members.split(" ").some(function (m) {
          return members.indexOf(" " + m + " ") >= 0;
        });
        var apart = Math.hypot(parseFloat(marker.dataset.x) - fx, parseFloat(marker.dataset.y) - fy);
        if (shared && apart < best) {
          best = apart;
          next = marker;
        }
      });
      if (next) next.focus({ preventScroll: true });
    } else if (focused && document.activeElement !== focused && focused.isConnected) {
      focused.focus({ preventScroll: true });
    }
    var current = this.layer.contains(document.activeElement) ? document.activeElement : this.labelFor;
    this.showLabel(current && current.isConnected ? current : null);
    if (announce) {
      var places = visible.reduce(function (n, g) { return n + g.members.length; }, 0);
      this.status.textContent = "Zoom " + Math.round(zoom * 10) / 10 + "×: " + places +
        " place" + (places === 1 ? "" : "s") + " in view.";
    }
  };

  WorldMap.prototype.originMarker = function (scale) {
    if (!this.originElement) {
      var marker = svgElement("g", {
        class: "map__marker map__marker--origin",
        tabindex: "0",
        role: "img",
        "aria-label": this.origin.name + " (this city)",
      });
      marker.dataset.key = "origin";
      marker.dataset.label = this.origin.name;
      marker.append(svgElement("circle", { class: "map__hit" }), svgElement("circle", { class: "map__pin" }));
      this.originElement = marker;
    }
    this.place(this.originElement, this.origin.x, this.origin.y, DOT + 2, scale);
    return this.originElement;
  };

  WorldMap.prototype.marker = function (group, scale) {
    var points = this.points;
    var key = group.members.join(" ") + (group.from ? "@" : "");
    var marker = this.markers.get(key);
    var names = group.members.map(function (i) { return points[i].name; });
    var many = group.members.length > 1;
    if (!marker) {
      marker = svgElement("g", {
        class: "map__marker" + (many ? " map__marker--group" : ""),
        tabindex: "0",
        role: many ? "button" : "img",
        "aria-label": many
          ? group.members.length + " places: " + listNames(names) + ". Zoom in to separate them"
          : names[0],
      });
      marker.dataset.key = key;
      marker.dataset.members = group.members.join(" ");
      marker.dataset.label = many ? group.members.length + " places: " + listNames(names) : names[0];
      marker.append(svgElement("circle", { class: "map__hit" }), svgElement("circle", { class: "map__pin" }));
      if (many) {
        var count = svgElement("text", { class: "map__count", "text-anchor": "middle", "aria-hidden": "true" });
        count.textContent = String(group.members.length);
        marker.append(count);
      }
      this.markers.set(key, marker);
    }
    var radius = radiusOf(group.members.length);
    this.place(marker, group.x, group.y, radius, scale);
    return marker;
  };

  // Sizes are in screen pixels whatever the zoom: the map's units shrink as it zooms in.
  WorldMap.prototype.place = function (marker, x, y, radius, scale) {
    marker.dataset.x = x;
    marker.dataset.y = y;
    var hit = marker.querySelector(".map__hit");
    var pin = marker.querySelector(".map__pin");
    [hit, pin].forEach(function (circle) {
      circle.setAttribute("cx", round(x));
      circle.setAttribute("cy", round(y));
    });
    hit.setAttribute("r", round(Math.max(TARGET, radius) / scale));
    pin.setAttribute("r", round(radius / scale));
    var count = marker.querySelector(".map__count");
    if (count) {
      count.setAttribute("x", round(x));
      count.setAttribute("y", round(y + 4 / scale));
      count.setAttribute("font-size", round(11 / scale));
    }
  };

  WorldMap.prototype.showLabel = function (marker) {
    this.labelFor = marker && marker.classList && marker.classList.contains("map__marker") ? marker : null;
    if (!this.labelFor) {
      this.label.setAttribute("visibility", "hidden");
      return;
    }
    marker = this.labelFor;
    var scale = this.scale();
    var view = this.view;
    var text = this.labelText;
    var pad = 5 / scale;
    text.textContent = marker.dataset.label;
    text.setAttribute("font-size", round(LABEL_FONT / scale));
    this.label.setAttribute("visibility", "visible");
    var width = text.getComputedTextLength() + 2 * pad;
    var height = (LABEL_FONT + 8) / scale;
    var x = parseFloat(marker.dataset.x);
    var y = parseFloat(marker.dataset.y);
    var radius = parseFloat(marker.querySelector(".map__pin").getAttribute("r"));
    // Above the place, or below it at the top edge; always inside the view.
    var left = Math.min(Math.max(x - width / 2, view.x + 2 / scale), view.x + view.w - width - 2 / scale);
    var top = y - radius - 6 / scale - height;
    if (top < view.y + 2 / scale) top = y + radius + 6 / scale;
    // Clear of the zoom buttons that sit over the map's top right corner.
    var svgBox = this.svg.getBoundingClientRect();
    var buttons = this.controls.getBoundingClientRect();
    var toUnits = function (px, origin, start) { return start + (px - origin) / scale; };
    var bx = toUnits(buttons.left, svgBox.left, view.x) - 4 / scale;
    var by = toUnits(buttons.bottom, svgBox.top, view.y) + 4 / scale;
    if (left + width > bx && top < by) {
      if (y + radius + 6 / scale >= by) top = Math.max(top, y + radius + 6 / scale);
      else left = Math.max(view.x + 2 / scale, bx - width);
    }
    this.labelBox.setAttribute("x", round(left));
    this.labelBox.setAttribute("y", round(top));
    this.labelBox.setAttribute("width", round(width));
    this.labelBox.setAttribute("height", round(height));
    this.labelBox.setAttribute("rx", round(3 / scale));
    text.setAttribute("x", round(left + pad));
    text.setAttribute("y", round(top + height / 2 + (LABEL_FONT * 0.35) / scale));
  };

  WorldMap.prototype.hideLabel = function () {
    var self = this;
    // Focus may be moving to another place: decide once it has landed.
    setTimeout(function () {
      if (!self.layer.contains(document.activeElement)) self.showLabel(null);
    }, 0);
  };

  // A group zooms in until its places part (or as far as the map goes); a place is named.
  WorldMap.prototype.onMarkerClick = function (event) {
    var marker = event.target.closest(".map__marker");
    if (!marker || this.dragged) return;
    if (!marker.classList.contains("map__marker--group")) {
      marker.focus({ preventScroll: true });
      this.showLabel(marker);
      return;
    }
    this.expand(marker);
  };

  WorldMap.prototype.expand = function (marker) {
    var points = this.points;
    var members = marker.dataset.members.split(" ").map(Number);
    var xs = members.map(function (i) { return points[i].x; });
    var ys = members.map(function (i) { return points[i].y; });
    var spanX = Math.max.apply(null, xs) - Math.min.apply(null, xs);
    var spanY = Math.max.apply(null, ys) - Math.min.apply(null, ys);
    var x = (Math.max.apply(null, xs) + Math.min.apply(null, xs)) / 2;
    var y = (Math.max.apply(null, ys) + Math.min.apply(null, ys)) / 2;
    // Enough to show the whole group with room around it, and at least twice as close.
    var fit = Math.min(this.world.w / (spanX * 2.5 || 1e-9), this.world.h / (spanY * 2.5 || 1e-9));
    var zoom = Math.min(Math.max(fit, this.zoom() * 2), MAX_ZOOM);
    marker.focus({ preventScroll: true });
    this.view.w = this.world.w / zoom;
    this.view.h = this.world.h / zoom;
    this.centreOn(x, y);
    this.render(true);
  };

  WorldMap.prototype.onKey = function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    if (!this.svg.contains(target)) return;
    var marker = target.closest && target.closest(".map__marker");
    var view = this.view;
    var step = 0.2;
    var x;
    var y;
    if (marker) {
      x = parseFloat(marker.dataset.x);
      y = parseFloat(marker.dataset.y);
    }
    switch (event.key) {
      case "+":
      case "=":
        this.zoomAt(2, x, y);
        break;
      case "-":
      case "_":
        this.zoomAt(0.5, x, y);
        break;
      case "0":
        this.reset();
        break;
      case "ArrowLeft":
        this.pan(-view.w * step, 0);
        break;
      case "ArrowRight":
        this.pan(view.w * step, 0);
        break;
      case "ArrowUp":
        this.pan(0, -view.h * step);
        break;
      case "ArrowDown":
        this.pan(0, view.h * step);
        break;
      case "Enter":
      case " ":
        if (!marker) return;
        if (marker.classList.contains("map__marker--group")) this.expand(marker);
        else this.showLabel(marker);
        break;
      case "Escape":
        this.showLabel(null);
        break;
      default:
        return;
    }
    event.preventDefault();
  };

  WorldMap.prototype.point = function (event) {
    var rect = this.svg.getBoundingClientRect();
    return {
      x: this.view.x + ((event.clientX - rect.left) / rect.width) * this.view.w,
      y: this.view.y + ((event.clientY - rect.top) / rect.height) * this.view.h,
    };
  };

  WorldMap.prototype.onPointerDown = function (event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (this.pointers.size === 1) {
      this.start = { x: event.clientX, y: event.clientY };
      this.dragged = false;
    }
  };

  WorldMap.prototype.onPointerMove = function (event) {
    var last = this.pointers.get(event.pointerId);
    if (!last) return;
    var scale = this.scale();
    if (this.pointers.size === 2) {
      var ids = Array.from(this.pointers.keys());
      var other = this.pointers.get(ids[0] === event.pointerId ? ids[1] : ids[0]);
      var before = Math.hypot(last.x - other.x, last.y - other.y);
      var after = Math.hypot(event.clientX - other.x, event.clientY - other.y);
      this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (before > 0) {
        var middle = this.point({ clientX: (event.clientX + other.x) / 2, clientY: (event.clientY + other.y) / 2 });
        this.dragged = true;
        this.zoomAt(after / before, middle.x, middle.y);
      }
      return;
    }
    if (!this.dragged && Math.hypot(event.clientX - this.start.x, event.clientY - this.start.y) < 5) return;
    if (!this.dragged) {
      this.dragged = true;
      this.svg.setPointerCapture(event.pointerId);
      this.figure.classList.add("map--dragging");
    }
    this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    this.pan(-(event.clientX - last.x) / scale, -(event.clientY - last.y) / scale);
  };

  WorldMap.prototype.onPointerUp = function (event) {
    this.pointers.delete(event.pointerId);
    this.figure.classList.remove("map--dragging");
    if (this.dragged && this.pointers.size === 0) {
      // The click that ends a drag is not a tap on a place.
      var self = this;
      setTimeout(function () { self.dragged = false; }, 0);
    }
  };

  WorldMap.prototype.onWheel = function (event) {
    // The page scrolls over the map unless the reader chose the map: by Ctrl (a trackpad's
    // pinch sends it too) or by clicking into it first.
    if (!(event.ctrlKey || event.metaKey || this.svg.contains(document.activeElement))) {
      this.showHint();
      return;
    }
    event.preventDefault();
    var at = this.point(event);
    var delta = event.deltaMode === 1 ? event.deltaY * 30 : event.deltaY;
    this.zoomAt(Math.exp(-delta * 0.0025), at.x, at.y);
  };

  WorldMap.prototype.showHint = function () {
    var hint = this.hint;
    hint.hidden = false;
    clearTimeout(this.hintTimer);
    this.hintTimer = setTimeout(function () { hint.hidden = true; }, 1500);
  };

  // The network drawing: a node's ties light up while it is hovered or focused.
  function Network(svg) {
    var lit = [];
    // On a phone the drawing scrolls sideways in its box: start with its middle in view.
    var scroller = svg.closest(".net__scroll");
    if (scroller && scroller.scrollWidth > scroller.clientWidth) {
      scroller.scrollLeft = (scroller.scrollWidth - scroller.clientWidth) / 2;
    }
    function light(node) {
      lit.forEach(function (element) { element.classList.remove("is-lit"); });
      lit = [];
      svg.classList.toggle("net--focus", Boolean(node));
      if (!node) return;
      var id = node.getAttribute("data-node");
      lit = Array.prototype.slice.call(svg.querySelectorAll('[data-ends~="' + id + '"]'));
      lit.forEach(function (edge) {
        edge.getAttribute("data-ends").split(" ").forEach(function (end) {
          var other = svg.querySelector('[data-node="' + end + '"]');
          if (other && lit.indexOf(other) < 0) lit.push(other);
        });
      });
      lit.push(node);
      lit.forEach(function (element) { element.classList.add("is-lit"); });
    }
    function nodeOf(event) {
      return event.target.closest && event.target.closest("[data-node]");
    }
    // On the figure, not the SVG: Chromium makes an SVG element with focus listeners
    // focusable, which would add a stop for Tab.
    var figure = svg.closest("figure") || svg.parentNode;
    figure.addEventListener("focusin", function (event) { light(nodeOf(event)); });
    figure.addEventListener("focusout", function () {
      setTimeout(function () {
        if (!svg.contains(document.activeElement)) light(null);
      }, 0);
    });
    svg.addEventListener("pointerover", function (event) {
      var node = nodeOf(event);
      if (node) light(node);
    });
    svg.addEventListener("pointerleave", function () {
      var active = svg.contains(document.activeElement) ? document.activeElement.closest("[data-node]") : null;
      light(active);
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("figure[data-map]"), function (figure) {
      if (figure.querySelector(".map__svg")) new WorldMap(figure);
    });
    Array.prototype.forEach.call(document.querySelectorAll("svg[data-network]"), function (svg) {
      Network(svg);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
