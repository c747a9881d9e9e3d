// The map page: the caller's photos with GPS (GET /api/map/markers) as clustered thumbnails on
// Leaflet; tiles only when the server names a tile URL, else a plain background.
"use strict";
document.addEventListener("DOMContentLoaded", async () => {
  const element = document.getElementById("map");
  const L = window.L;
  if (!element || !L) return;
  // Without a tile layer nothing gives the map a zoom range, which clustering needs.
  const map = L.map(element, { worldCopyJump: true, attributionControl: false, minZoom: 1, maxZoom: 18 });
  const tiles = element.dataset.tileUrl;
  if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
  const response = await fetch(element.dataset.markers, { credentials: "same-origin" });
  const markers = response.ok ? await response.json() : [];
  const cluster = L.markerClusterGroup({ showCoverageOnHover: false });
  for (const m of markers) {
    const img = document.createElement("img");
    img.src = `/api/assets/${encodeURIComponent(m.id)}/thumbnail`;
    img.alt = "";
    const icon = L.divIcon({ html: img, className: "photo-marker", iconSize: [48, 48] });
    const marker = L.marker([m.lat, m.lon], { icon });
    marker.on("click", () => { window.location.href = `/photos/${encodeURIComponent(m.id)}`; });
    cluster.addLayer(marker);
  }
  // Leaflet.markercluster needs the map's view before it is added.
  if (markers.length) {
    const bounds = L.latLngBounds(markers.map((m) => [m.lat, m.lon]));
    map.fitBounds(bounds, { padding: [40, 40], maxZoom: 12 });
  } else {
    map.setView([20, 0], 2);
  }
  map.addLayer(cluster);
  const count = document.querySelector(".map-count");
  if (count) count.textContent = `${markers.length} photo${markers.length === 1 ? "" : "s"} with a place`;
  element.dataset.ready = "true";
});
