// Nearby offers: with the shopper's consent, reload the list sorted from where they are.
(function () {
  "use strict";
  var button = document.getElementById("locate-me");
  if (!button || !navigator.geolocation) {
    return;
  }
  button.addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(function (position) {
      var url = button.getAttribute("data-locate-url");
      window.location.href = url + "?lat=" + position.coords.latitude.toFixed(5) +
        "&lng=" + position.coords.longitude.toFixed(5);
    });
  });
})();
