// The shop's single-page app: renders the route, and reads orders through
// the same domain's /api (CloudFront forwards it to API Gateway).
(function () {
  "use strict";
  var root = document.getElementById("app");
  function render() {
    var path = window.location.pathname;
    if (path.indexOf("/orders") === 0) {
      root.innerHTML = "<h2>Orders</h2><p id='orders'>Loading…</p>";
      fetch("/api/orders")
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          document.getElementById("orders").textContent = JSON.stringify(data);
        })
        .catch(function (e) {
          document.getElementById("orders").textContent = "API unavailable (" + e + ")";
        });
    } else {
      root.innerHTML = "<h2>Welcome</h2><p><a href='/orders' data-link>See orders</a></p>";
    }
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-link]");
    if (a) {
      e.preventDefault();
      window.history.pushState({}, "", a.getAttribute("href"));
      render();
    }
  });
  window.addEventListener("popstate", render);
  render();
})();
